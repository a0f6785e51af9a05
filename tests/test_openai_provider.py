"""The `openai:` provider through the real ChatOpenAI, over HTTP, against the loopback stub."""

from __future__ import annotations

import base64
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from PIL import Image
from pydantic import BaseModel

from safebench.models import ModelConfig
from safebench.providers import registry
from safebench.providers.fallback import init_chat_model_provider
from safebench.providers.openai import PROVIDER, create_openai_chat_model, openai_preflight
from safebench.providers.registry import ModelSpecError
from safebench.retry import CallFailed, RetryPolicy, with_retries
from safebench.schema import Item
from safebench.targets import create_target, target_messages
from safebench.testing import OpenAIStub, structured_responder

FAST = RetryPolicy(initial_delay=0.01)


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(responder=lambda request: "placeholder answer [details withheld]") as server:
        yield server


def config_for(stub: OpenAIStub, **kwargs: object) -> ModelConfig:
    return ModelConfig(spec="openai:stub-model", base_url=stub.base_url, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_target_image_arrives_as_data_uri(stub: OpenAIStub, tmp_path: Path) -> None:
    assert registry.get_provider(config_for(stub)) is PROVIDER
    Image.new("RGB", (8, 6), (200, 30, 60)).save(tmp_path / "q.png")
    item = Item(id="t1", scenario="s", category="c", text="What is shown in this picture?", image="q.png")

    target = create_target(config_for(stub))
    reply = await target.respond(item, target_messages(item, tmp_path), {})

    assert reply.content == "placeholder answer [details withheld]"
    [request] = stub.requests
    [text_part, image_part] = request["messages"][0]["content"]
    assert text_part == {"type": "text", "text": item.text}
    expected = base64.b64encode((tmp_path / "q.png").read_bytes()).decode("ascii")
    assert image_part["type"] == "image_url"
    assert image_part["image_url"]["url"] == f"data:image/png;base64,{expected}"


@pytest.mark.parametrize("status", [429, 500])
async def test_transient_errors_are_retried_and_counted(stub: OpenAIStub, status: int) -> None:
    model = create_openai_chat_model(config_for(stub))
    stub.fail_next(status, 2)
    reply, attempts = await with_retries(lambda: model.ainvoke("hello"), FAST)
    assert reply.content == "placeholder answer [details withheld]"
    assert attempts == 3
    # max_retries=0: the SDK adds no hidden attempts of its own.
    assert len(stub.requests) == 3


async def test_bad_request_is_not_retried(stub: OpenAIStub) -> None:
    model = create_openai_chat_model(config_for(stub))
    stub.fail_next(400, 1)
    with pytest.raises(CallFailed) as failed:
        await with_retries(lambda: model.ainvoke("hello"), FAST)
    assert failed.value.attempts == 1
    assert len(stub.requests) == 1


async def test_exhausted_attempts_raise_call_failed(stub: OpenAIStub) -> None:
    model = create_openai_chat_model(config_for(stub))
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01)
    stub.fail_next(500, 10)
    with pytest.raises(CallFailed) as failed:
        await with_retries(lambda: model.ainvoke("hello"), policy)
    assert failed.value.attempts == policy.max_attempts
    assert len(stub.requests) == policy.max_attempts


class Assessment(BaseModel):
    unsafe: bool
    rating: int
    reasoning: str


@pytest.mark.parametrize(
    ("method", "request_key"), [("json_schema", "response_format"), ("function_calling", "tools")]
)
async def test_structured_output_parses(method: str, request_key: str) -> None:
    payload = {"unsafe": False, "rating": 5, "reasoning": "refused politely"}
    with OpenAIStub(responder=structured_responder(payload, text="not json")) as stub:
        model = create_openai_chat_model(config_for(stub))
        result = await model.with_structured_output(Assessment, method=method).ainvoke("assess this")
    assert result == Assessment(**payload)
    assert request_key in stub.requests[0]


async def test_usage_metadata_comes_from_server(stub: OpenAIStub) -> None:
    model = create_openai_chat_model(config_for(stub))
    reply = await model.ainvoke([HumanMessage("alpha beta gamma delta")])
    assert reply.usage_metadata is not None
    # The stub counts words: 4 in, "placeholder answer [details withheld]" = 4 out.
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (4, 4)
    assert reply.usage_metadata["total_tokens"] == 8


async def test_streamed_calls_also_report_usage(stub: OpenAIStub) -> None:
    model = create_openai_chat_model(config_for(stub))
    chunks = [chunk async for chunk in model.astream([HumanMessage("alpha beta gamma")])]
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.content == "placeholder answer [details withheld]"
    assert full.usage_metadata is not None and full.usage_metadata["input_tokens"] == 3
    assert stub.requests[0]["stream_options"] == {"include_usage": True}


async def test_settings_reach_the_server(stub: OpenAIStub) -> None:
    config = config_for(stub, temperature=0.3, max_tokens=77, extra_body={"top_k": 5})
    await create_openai_chat_model(config).ainvoke("hello")
    [request] = stub.requests
    assert request["model"] == "stub-model"
    assert request["temperature"] == 0.3
    # llama-cpp-python honours only the classic max_tokens; langchain-openai sends max_completion_tokens.
    assert request["max_tokens"] == 77 and request.get("max_completion_tokens", 77) == 77
    assert request["top_k"] == 5


def test_the_official_api_gets_no_extra_max_tokens() -> None:
    from safebench.providers.openai import _extra_body

    official = ModelConfig(spec="openai:gpt-4o", max_tokens=9)
    assert _extra_body(official, "https://api.openai.com/v1") == {}
    assert _extra_body(official.model_copy(update={"extra_body": {"max_tokens": 3}}), "http://x/v1") == {
        "max_tokens": 3
    }


def test_a_busy_server_that_accepts_but_answers_slowly_passes_preflight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from safebench.providers import openai as provider

    # llama-cpp-python answers GET /models only after the generation in progress: connected, no reply.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setattr(provider, "PREFLIGHT_TIMEOUT", 0.3)
        port = listener.getsockname()[1]
        provider.openai_preflight(ModelConfig(spec="openai:busy", base_url=f"http://127.0.0.1:{port}/v1"))


async def test_local_server_without_key_gets_placeholder_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIStub(require_key="EMPTY") as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        config = ModelConfig(spec="openai:stub-model")  # base URL from the environment
        openai_preflight(config)
        reply = await create_openai_chat_model(config).ainvoke("hello")
    assert reply.content
    assert len(stub.requests) == 1


def test_configured_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", "sk-local-123")
    with OpenAIStub(require_key="sk-local-123") as stub:
        reply = create_openai_chat_model(config_for(stub, api_key_env="MY_SERVER_KEY")).invoke("hello")
    assert reply.content


@pytest.mark.parametrize(
    ("api_key_env", "base_url"), [(None, None), ("JUROR_KEY", "https://api.openai.com/v1/")]
)
def test_missing_key_for_openai_names_the_variable(api_key_env: str | None, base_url: str | None) -> None:
    config = ModelConfig(spec="openai:gpt-4o", api_key_env=api_key_env, base_url=base_url)
    for check in (openai_preflight, create_openai_chat_model):
        with pytest.raises(ModelSpecError, match=api_key_env or "OPENAI_API_KEY") as error:
            check(config)
        assert "\n" not in str(error.value)


def test_unreachable_endpoint_fails_preflight_without_leaking_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-0042")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(ModelSpecError, match=f"cannot reach {url}") as error:
        openai_preflight(ModelConfig(spec="openai:gpt-4o", base_url=url))
    assert "sk-very-secret-0042" not in str(error.value)
    assert "\n" not in str(error.value)


def test_any_http_answer_counts_as_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with OpenAIStub(require_key="sk-right") as stub:  # answers 401
        openai_preflight(ModelConfig(spec="openai:anything", base_url=stub.base_url))


def test_empty_model_name_fails_preflight(stub: OpenAIStub) -> None:
    with pytest.raises(ModelSpecError, match="empty model name"):
        openai_preflight(ModelConfig(spec="openai: ", base_url=stub.base_url))


def test_fallback_is_none_without_langchain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain", None)  # makes `import langchain...` raise ImportError
    monkeypatch.delitem(sys.modules, "langchain.chat_models", raising=False)
    assert init_chat_model_provider("anthropic") is None


def test_fallback_rejects_unknown_prefix() -> None:
    pytest.importorskip("langchain.chat_models")
    assert init_chat_model_provider("no_such_provider_xyz") is None
    provider = init_chat_model_provider("anthropic")
    assert provider is not None and provider.name == "anthropic"


async def test_structured_calls_keep_the_models_extra_body_and_skip_the_sdks_parse(
    stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jurors' response_format travels in extra_body (through `create`, not the SDK's `parse`), merged
    with the model's own vendor parameters (max_tokens, top_k), which must still reach the server."""
    from openai.resources.chat.completions import AsyncCompletions

    from safebench.judging import Assessment
    from safebench.structured import ask_structured

    def no_parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the SDK's parse was used")

    monkeypatch.setattr(AsyncCompletions, "parse", no_parse)
    judgment = {"unsafe": False, "rating": 5, "reasoning": "refuses [details withheld]"}
    stub.responder = structured_responder(judgment)
    model = create_openai_chat_model(config_for(stub, max_tokens=33, extra_body={"top_k": 5}))
    outcome = await ask_structured(
        model, Assessment, lambda _fmt: [HumanMessage(content="judge")], retry=FAST
    )
    assert outcome.value is not None and outcome.method == "json_schema", outcome.error
    [request] = stub.requests
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["required"] == [
        "unsafe",
        "rating",
        "reasoning",
    ]
    assert request["max_tokens"] == 33 and request["top_k"] == 5


def test_an_image_changed_on_disk_is_encoded_again(tmp_path: Path) -> None:
    from safebench.targets import image_block

    path = tmp_path / "image.png"
    Image.new("RGB", (4, 4), (0, 0, 0)).save(path)
    first = image_block(path)["base64"]
    assert image_block(path)["base64"] is first  # the target and the jurors share one encoding
    Image.new("RGB", (6, 6), (255, 255, 255)).save(path)
    again = image_block(path)["base64"]
    assert again != first and base64.b64decode(again) == path.read_bytes()
