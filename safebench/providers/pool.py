"""One memoised model object per model config, shared by targets and jurors (as inspect_ai does).

Five jurors and a target on one config get one chat model: one HTTP client, one rate limiter (so
`requests_per_second` is per model, not per seat) and, for `hf:`, one micro-batcher (their concurrent
calls become one `generate`).

Scope: one pool per run. The runner and the generation pipeline create a `ModelPool` and pass it down;
callers that pass none (LangGraph Studio's default contexts, tests) share `default_pool()`. Per run,
because a run may attach things to its model objects (the pipeline's SQLite call cache) that must not
leak into other runs. Reusing a pool across `asyncio.run` calls is no worse than building new models:
langchain-openai caches its async httpx client per (base_url, timeout) for the whole process, so a new
ChatOpenAI on the same server after `asyncio.run` returned fails the same way ("Event loop is closed")
as a reused one; `hf:` batchers keep their state per event loop, and the rate limiter is loop-free.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel

from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model, get_provider

if TYPE_CHECKING:
    from safebench.targets import Target

# Settings that change how we use a model, not the model object: a target's display name, whether
# jurors are shown images, which structured-output method is tried. Any other field (including ones
# added later) splits objects: sharing too little is only slower, sharing too much would be wrong.
USE_ONLY_FIELDS = frozenset({"label", "multimodal", "output"})


def model_key(config: ModelConfig) -> str:
    """The memo key of `config`: every field that changes the model object."""
    fields = config.model_dump(mode="json", exclude=set(USE_ONLY_FIELDS))
    if config.api_key is not None:
        # model_dump masks every key as "***": two keys must still be two clients.
        secret = config.api_key.get_secret_value().encode("utf-8")
        fields["api_key"] = hashlib.sha256(secret).hexdigest()
    return json.dumps(fields, sort_keys=True, default=str)


class ModelPool:
    """Chat models built once per `model_key` (thread-safe), and targets around them.

    `cache`, if given, is attached to every chat model the pool builds (the pipeline's SQLite cache).
    """

    def __init__(self, *, cache: BaseCache | None = None) -> None:
        self.cache = cache
        self._chat: dict[str, BaseChatModel] = {}
        self._lock = threading.Lock()

    def chat(self, config: ModelConfig) -> BaseChatModel:
        key = model_key(config)
        with self._lock:
            model = self._chat.get(key)
            if model is None:
                # Building is cheap (hf loads weights on first use), so holding the lock is fine.
                model = create_chat_model(config)  # attaches the rate limiter: once per pooled object
                if self.cache is not None:
                    model.cache = self.cache
                self._chat[key] = model
            return model

    def target(self, config: ModelConfig) -> Target:
        """A new target around the pooled chat model. The wrapper itself is not memoised: it is cheap,
        carries the target's label, and a `replay:` target re-reads its file each time, as before."""
        from safebench.targets import ChatTarget  # targets imports this module

        provider = get_provider(config)
        if provider.target is not None:
            return provider.target(config)
        return ChatTarget(config, self.chat(config))

    def models(self) -> list[BaseChatModel]:
        """The distinct chat models built so far. (No `__len__`: an empty pool must not be falsy, or
        `pool or default_pool()` would drop it.)"""
        with self._lock:
            return list(self._chat.values())


_DEFAULT = ModelPool()


def default_pool() -> ModelPool:
    """The process-wide pool of callers that pass none (Studio's default contexts, tests)."""
    return _DEFAULT
