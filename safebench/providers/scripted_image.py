"""Scripted stand-ins of the image stage (registered into safebench.providers.scripted)."""

from __future__ import annotations
