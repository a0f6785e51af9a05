"""Model providers behind a registry keyed by spec prefix; see `registry.py`."""

from __future__ import annotations

from safebench.providers.registry import (
    ModelSpecError,
    Provider,
    create_chat_model,
    get_provider,
    preflight,
    providers,
    register_provider,
)

__all__ = [
    "ModelSpecError",
    "Provider",
    "create_chat_model",
    "get_provider",
    "preflight",
    "providers",
    "register_provider",
]
