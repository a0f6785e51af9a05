"""Test helpers that ship with safebench (a loopback OpenAI-compatible server)."""

from __future__ import annotations

from safebench.testing.openai_stub import (
    OpenAIStub,
    Responder,
    StubHTTPError,
    default_responder,
    structured_responder,
)

__all__ = ["OpenAIStub", "Responder", "StubHTTPError", "default_responder", "structured_responder"]
