"""Scripted stand-ins of the generation stage (registered into safebench.providers.scripted)."""

from __future__ import annotations
