"""Any other `prefix:` that langchain's `init_chat_model` knows (anthropic, google_genai, ollama, ...)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from safebench.models import ModelConfig
from safebench.providers.registry import Provider


def init_chat_model_provider(prefix: str) -> Provider | None:
    """A Provider backed by `init_chat_model`, or None if langchain is absent or the prefix is unknown."""
    try:
        from langchain.chat_models import base, init_chat_model
    except ImportError:
        return None
    # The registry is private and was renamed across langchain 1.x; if neither name exists, let
    # init_chat_model itself reject an unknown prefix when the model is built.
    known = getattr(base, "_BUILTIN_PROVIDERS", None) or getattr(base, "_SUPPORTED_PROVIDERS", None)
    if known is not None and prefix not in known:
        return None

    def chat(config: ModelConfig) -> BaseChatModel:
        kwargs: dict[str, Any] = {
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "timeout": config.timeout,
        }
        if config.base_url:
            kwargs["base_url"] = config.base_url
        return init_chat_model(f"{prefix}:{config.name}", **kwargs)

    return Provider(name=prefix, chat=chat, description=f"langchain init_chat_model({prefix!r})")
