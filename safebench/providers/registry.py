"""Model providers behind a registry keyed by the spec prefix (`openai:`, `hf:`, `replay:`, `scripted:`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import InMemoryRateLimiter

from safebench.models import ModelConfig

if TYPE_CHECKING:
    from safebench.targets import Target


class ModelSpecError(ValueError):
    """A model spec or its settings cannot work; the message is one line a user can act on."""


ChatFactory = Callable[[ModelConfig], BaseChatModel]
TargetFactory = Callable[[ModelConfig], "Target"]
Preflight = Callable[[ModelConfig], None]
# Raises ModelSpecError when the model cannot take these media ({"image", "audio"}) at all.
InputCheck = Callable[[ModelConfig, frozenset[str]], None]


@dataclass(frozen=True)
class Provider:
    name: str
    chat: ChatFactory | None
    preflight: Preflight | None = None
    # Providers that are not chat models (replay) build their target directly.
    target: TargetFactory | None = None
    description: str = ""
    # Providers that can tell a text-only model from its files (hf:) say so before any item runs.
    check_inputs: InputCheck | None = None


_PROVIDERS: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    _PROVIDERS[provider.name] = provider


def get_provider(config: ModelConfig) -> Provider:
    _ensure_builtin()
    provider = _PROVIDERS.get(config.provider)
    if provider is None:
        from safebench.providers.fallback import init_chat_model_provider

        provider = init_chat_model_provider(config.provider)
    if provider is None:
        known = ", ".join(sorted(_PROVIDERS))
        raise ModelSpecError(
            f"unknown model spec {config.spec!r}: provider {config.provider!r} is not one of {known}"
        )
    return provider


def preflight(config: ModelConfig) -> None:
    """Fail fast, before any item runs: unknown spec, missing key, unreachable endpoint, missing files."""
    provider = get_provider(config)
    if provider.preflight is not None:
        provider.preflight(config)


def check_inputs(config: ModelConfig, media: frozenset[str]) -> None:
    """ModelSpecError (one line) when the run would send `media` to a model that cannot take them."""
    provider = get_provider(config)
    if media and provider.check_inputs is not None:
        provider.check_inputs(config, media)


def create_chat_model(config: ModelConfig) -> BaseChatModel:
    """A new model object with its own client and rate limiter. Runs share one per config through
    `safebench.providers.pool.ModelPool` instead, so that limits and batching are per model."""
    provider = get_provider(config)
    if provider.chat is None:
        raise ModelSpecError(f"{config.spec!r} can only be a target, not a juror or foreperson")
    model = provider.chat(config)
    if config.requests_per_second:
        model.rate_limiter = InMemoryRateLimiter(requests_per_second=config.requests_per_second)
    return model


def providers() -> dict[str, Provider]:
    _ensure_builtin()
    return dict(_PROVIDERS)


_BUILTIN = ("openai", "hf", "replay", "scripted")


def _ensure_builtin() -> None:
    # Provider modules import their heavy dependencies (torch) lazily, inside their factories.
    for name in _BUILTIN:
        if name not in _PROVIDERS:
            module = importlib.import_module(f"safebench.providers.{name}")
            _PROVIDERS.setdefault(name, module.PROVIDER)
