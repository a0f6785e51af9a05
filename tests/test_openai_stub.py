"""The loopback OpenAI-compatible stub: wire format, failures, auth, concurrency, silence."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI

from safebench.testing import OpenAIStub, StubHTTPError, default_responder
from safebench.testing.openai_stub import LLAMA_CPP_JSON_SCHEMA_ERROR

CHAT = {"model": "stub-model", "messages": [{"role": "user", "content": "one two three"}]}


def chat_model(stub: OpenAIStub) -> ChatOpenAI:
    return ChatOpenAI(
        model="stub-model", base_url=stub.base_url, api_key="EMPTY", use_responses_api=False, max_retries=0
    )


def test_completion_shape_and_usage() -> None:
    with OpenAIStub(responder=lambda request: "four words right here") as stub:
        body = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "four words right here"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert stub.requests == [CHAT]


def test_default_responder_echoes_the_question() -> None:
    with OpenAIStub() as stub:
        body = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT).json()
    assert (
        body["choices"][0]["message"]["content"] == default_responder(CHAT) == "stub reply to: one two three"
    )


def test_models_listing_and_unknown_route() -> None:
    with OpenAIStub(models=["a", "b"]) as stub:
        models = httpx.get(f"{stub.base_url}/models")
        missing = httpx.post(f"{stub.base_url}/embeddings", json={})
    assert [m["id"] for m in models.json()["data"]] == ["a", "b"]
    assert missing.status_code == 404
    assert stub.requests == []


def test_injected_failures_then_success() -> None:
    with OpenAIStub() as stub:
        stub.fail_next(429, 1)
        stub.fail_next(503, 1)
        limited = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
        down = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
        ok = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "0")
    assert "error" in limited.json()
    assert down.status_code == 503 and "Retry-After" not in down.headers
    assert ok.status_code == 200
    assert len(stub.requests) == 3


def test_require_key() -> None:
    with OpenAIStub(require_key=True) as stub:
        url = f"{stub.base_url}/chat/completions"
        assert httpx.post(url, json=CHAT).status_code == 401
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Basic abc"}).status_code == 401
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer anything"}).status_code == 200
    with OpenAIStub(require_key="sk-exact") as stub:
        url = f"{stub.base_url}/chat/completions"
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer other"}).status_code == 401
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer sk-exact"}).status_code == 200
    assert len(stub.requests) == 1  # refused requests are not recorded


def test_logs_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with OpenAIStub(require_key="sk-never-printed") as stub:
        headers = {"Authorization": "Bearer sk-never-printed"}
        httpx.post(f"{stub.base_url}/chat/completions", json=CHAT, headers=headers)
        httpx.get(f"{stub.base_url}/nowhere", headers=headers)
        httpx.get(f"{stub.base_url}/models")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_responder_errors_become_500() -> None:
    def broken(request: dict) -> str:
        raise RuntimeError("boom")

    with OpenAIStub(responder=broken) as stub:
        response = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
    assert response.status_code == 500
    assert "boom" in response.json()["error"]["message"]


async def test_concurrent_calls_overlap_their_latency() -> None:
    with OpenAIStub(latency=0.1) as stub:
        model = chat_model(stub)
        start = time.perf_counter()
        replies = await asyncio.gather(*(model.ainvoke(f"question {i}") for i in range(32)))
        elapsed = time.perf_counter() - start
    # Serialised, 32 x 100 ms would take 3.2 s.
    assert elapsed < 1.5
    assert sorted(r.content for r in replies) == sorted(f"stub reply to: question {i}" for i in range(32))
    assert len(stub.requests) == 32


async def test_streaming_text_and_usage() -> None:
    with OpenAIStub(responder=lambda request: "a  streamed\nreply ") as stub:
        model = chat_model(stub)
        chunks = [c async for c in model.astream("one two", stream_usage=True)]
    assert len(chunks) > 3  # really streamed, word by word
    full = sum(chunks[1:], chunks[0])
    assert full.content == "a  streamed\nreply "
    assert full.usage_metadata is not None
    assert (full.usage_metadata["input_tokens"], full.usage_metadata["output_tokens"]) == (2, 3)


async def test_tool_calls_plain_and_streamed() -> None:
    def tool_call(request: dict) -> dict:
        assert request["tools"][0]["function"]["name"] == "record"
        return {"tool_calls": [{"name": "record", "arguments": {"value": 7}}]}

    def record(value: int) -> None:
        """Record a value."""

    with OpenAIStub(responder=tool_call) as stub:
        model = chat_model(stub).bind_tools([record])
        reply = await model.ainvoke("call it")
        chunks = [c async for c in model.astream("call it")]
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("record", {"value": 7})]
    full = sum(chunks[1:], chunks[0])
    assert isinstance(full, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("record", {"value": 7})]
    assert [r.get("stream") for r in stub.requests] == [False, True]


def test_requires_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = OpenAIStub().base_url


def test_fail_next_with_headers_and_message() -> None:
    with OpenAIStub() as stub:
        stub.fail_next(429, 1, headers={"Retry-After": "7"}, message="rate limit reached, slow down")
        stub.fail_next(500, 1, message=LLAMA_CPP_JSON_SCHEMA_ERROR)
        stub.fail_next(429, 1, headers={})
        limited = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
        rejected = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
        bare = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.json()["error"]["message"] == "rate limit reached, slow down"
    assert rejected.status_code == 500 and "literal_error" in rejected.json()["error"]["message"]
    assert bare.status_code == 429 and "Retry-After" not in bare.headers


def test_responder_http_error_with_headers() -> None:
    def busy(request: dict) -> str:
        raise StubHTTPError(503, "model is loading", headers={"Retry-After": "2"})

    with OpenAIStub(responder=busy) as stub:
        response = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.json()["error"]["message"] == "model is loading"


async def test_finish_reason_plain_and_streamed() -> None:
    def truncated(request: dict) -> dict:
        return {"content": "The answer was cut", "finish_reason": "length"}

    with OpenAIStub(responder=truncated) as stub:
        body = httpx.post(f"{stub.base_url}/chat/completions", json=CHAT).json()
        model = chat_model(stub)
        reply = await model.ainvoke("go on")
        chunks = [c async for c in model.astream("go on")]
    assert body["choices"][0]["finish_reason"] == "length"
    assert reply.response_metadata["finish_reason"] == "length"
    full = sum(chunks[1:], chunks[0])
    assert full.content == "The answer was cut"
    assert full.response_metadata["finish_reason"] == "length"
