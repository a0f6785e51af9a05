"""Scripted stand-ins of the taxonomy stage (registered into safebench.providers.scripted)."""

from __future__ import annotations
