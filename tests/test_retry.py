"""with_retries: Retry-After, and capability errors (never retried) told apart from transient ones."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest
from langchain_openai import ChatOpenAI

from safebench.retry import (
    RETRY_AFTER_CAP,
    CallFailed,
    RetryPolicy,
    is_capability_error,
    is_transient,
    retry_after,
    with_retries,
)
from safebench.testing import OpenAIStub
from safebench.testing.openai_stub import LLAMA_CPP_JSON_SCHEMA_ERROR


def chat_model(stub: OpenAIStub) -> ChatOpenAI:
    return ChatOpenAI(
        model="stub-model", base_url=stub.base_url, api_key="EMPTY", use_responses_api=False, max_retries=0
    )


async def server_error(status: int, message: str) -> Exception:
    """The exception the real ChatOpenAI raises for this HTTP answer."""
    with OpenAIStub() as stub:
        stub.fail_next(status, message=message)
        try:
            await chat_model(stub).ainvoke("hello")
        except Exception as exc:
            return exc
    raise AssertionError("the stub did not fail")


async def test_retry_after_is_honoured() -> None:
    with OpenAIStub(lambda request: "placeholder answer") as stub:
        stub.fail_next(429, headers={"Retry-After": "1"}, message="Rate limit reached; try again in 1s")
        model = chat_model(stub)
        start = time.monotonic()
        reply, attempts = await with_retries(lambda: model.ainvoke("hello"), RetryPolicy(initial_delay=0))
        elapsed = time.monotonic() - start
    assert reply.content == "placeholder answer" and attempts == 2
    assert elapsed >= 0.9  # the backoff alone (initial_delay=0) would not wait at all


def status_error(status: int, headers: dict[str, str], body: str = "") -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, headers=headers, text=body, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


def test_retry_after_forms_and_cap() -> None:
    now = 1_700_000_000.0
    assert retry_after(status_error(429, {"Retry-After": "2.5"})) == 2.5
    assert retry_after(status_error(429, {"retry-after": formatdate(now + 7, usegmt=True)}), now=now) == 7
    assert retry_after(status_error(429, {"Retry-After": formatdate(now - 30, usegmt=True)}), now=now) == 0
    assert retry_after(status_error(503, {"retry-after-ms": "250"})) == 0.25
    assert retry_after(status_error(429, {"Retry-After": "3600"})) == RETRY_AFTER_CAP
    assert retry_after(status_error(429, {"Retry-After": "soon"})) is None
    assert retry_after(status_error(429, {})) is None
    assert retry_after(ValueError("no response")) is None


async def test_capability_error_is_not_retried() -> None:
    with OpenAIStub() as stub:
        stub.fail_next(500, times=4, message=LLAMA_CPP_JSON_SCHEMA_ERROR)
        model = chat_model(stub)
        with pytest.raises(CallFailed) as failed:
            await with_retries(lambda: model.ainvoke("hello"), RetryPolicy(max_attempts=4, initial_delay=0))
    assert (failed.value.attempts, failed.value.capability, failed.value.transient) == (1, True, False)
    assert failed.value.status == 500 and len(stub.requests) == 1


async def test_transient_failure_that_runs_out_is_marked_transient() -> None:
    with OpenAIStub() as stub:
        stub.fail_next(503, times=3, message="model is loading")
        model = chat_model(stub)
        with pytest.raises(CallFailed) as failed:
            await with_retries(lambda: model.ainvoke("hello"), RetryPolicy(max_attempts=3, initial_delay=0))
    assert (failed.value.attempts, failed.value.capability, failed.value.transient) == (3, False, True)


@pytest.mark.parametrize(
    ("status", "message", "capability", "transient"),
    [
        (500, LLAMA_CPP_JSON_SCHEMA_ERROR, True, False),
        (500, "tool_choice 'required' is not supported by this server", True, False),
        (500, "1 validation error: response_format.schema extra_forbidden", True, False),
        (500, "CUDA out of memory while generating", False, True),
        (503, "model is loading", False, True),
        (400, "response_format json_schema is unsupported for this model", True, False),
        (400, "This model's maximum context length is 8192 tokens (context_length_exceeded)", False, False),
        (404, "The model `judge` does not exist", True, False),
        (422, "Unprocessable Entity: unknown field tools", True, False),
        (429, "Rate limit reached", False, True),
        (401, "invalid api key", False, False),
    ],
)
async def test_capability_errors_from_real_sdk_exceptions(
    status: int, message: str, capability: bool, transient: bool
) -> None:
    exc = await server_error(status, message)
    assert (is_capability_error(exc), is_transient(exc)) == (capability, transient)


def test_capability_error_from_httpx_body() -> None:
    body = '{"detail": [{"type": "literal_error", "loc": ["body", "response_format", "type"]}]}'
    assert is_capability_error(status_error(500, {}, body))
    assert not is_capability_error(status_error(502, {}, "<html>Bad Gateway</html>"))
    assert not is_capability_error(TimeoutError())
