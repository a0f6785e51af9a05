"""Model providers behind a registry keyed by spec prefix; see `registry.py`."""

from __future__ import annotations

from safebench.providers.pool import ModelPool, default_pool, model_key
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
    "ModelPool",
    "ModelSpecError",
    "Provider",
    "create_chat_model",
    "default_pool",
    "get_provider",
    "model_key",
    "preflight",
    "providers",
    "register_provider",
]
