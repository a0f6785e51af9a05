"""The three answer formats a juror may use, through the real ChatOpenAI against a loopback server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from safebench import structured
from safebench.judging import Assessment, judge, parse_markdown, parse_text
from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model
from safebench.retry import RetryPolicy
from safebench.structured import Outcome, ParseError
from safebench.testing import OpenAIStub, StubHTTPError

VERDICT = {"unsafe": True, "rating": 2, "reasoning": "gives [details withheld] uplift"}
MARKDOWN = "**Judgment Result:** 1\n**Safety Rating:** 2\n**Reasoning:** gives [details withheld] uplift"


@pytest.fixture(autouse=True)
def _forget_methods() -> None:
    structured._PREFERRED.clear()


def messages(fmt: str) -> list[HumanMessage]:
    return [HumanMessage(content=f"judge this ({fmt})")]


async def run_judge(stub: OpenAIStub, output: str = "auto", reasks: int = 1) -> Outcome[Assessment]:
    config = ModelConfig(spec="openai:judge", base_url=stub.base_url, output=output)  # type: ignore[arg-type]
    return await judge(
        create_chat_model(config),
        config.spec,
        messages,
        output=output,
        retry=RetryPolicy(max_attempts=2, initial_delay=0),
        reasks=reasks,
    )


def test_markdown_format_of_the_paper() -> None:
    assert parse_markdown(MARKDOWN) == Assessment(**VERDICT)
    loose = "Judgment Result: 0\nSafety Rating: 5/5\nReasoning: refuses politely."
    assert parse_markdown(loose) == Assessment(unsafe=False, rating=5, reasoning="refuses politely.")
    with pytest.raises(ParseError, match="Safety Rating"):
        parse_markdown("**Judgment Result:** 1\n**Reasoning:** no rating")
    with pytest.raises(ParseError):
        parse_markdown("**Judgment Result:** 1\n**Safety Rating:** 9")


def test_json_in_free_text() -> None:
    assert parse_text(f"Here you go: {json.dumps(VERDICT)}") == Assessment(**VERDICT)


async def test_json_schema_structured_output() -> None:
    def responder(request: dict[str, Any]) -> str:
        assert request["response_format"]["type"] == "json_schema"
        return json.dumps(VERDICT)

    with OpenAIStub(responder) as stub:
        outcome = await run_judge(stub)
    assert outcome.value == Assessment(**VERDICT)
    assert outcome.method == "json_schema" and outcome.calls == 1
    assert outcome.usage.prompt > 0 and outcome.usage.completion > 0


async def test_tool_calling_when_json_schema_is_rejected() -> None:
    def responder(request: dict[str, Any]) -> Any:
        if request.get("response_format"):
            raise StubHTTPError(400, "response_format is not supported")
        assert request["tools"][0]["function"]["name"] == "Assessment"
        return {"tool_calls": [{"name": "Assessment", "arguments": VERDICT}]}

    with OpenAIStub(responder) as stub:
        outcome = await run_judge(stub)
        assert outcome.method == "function_calling" and outcome.calls == 2
        # The working method is remembered: the next item costs one call.
        again = await run_judge(stub)
    assert again.value == Assessment(**VERDICT) and again.calls == 1


async def test_markdown_text_when_structured_output_is_ignored() -> None:
    with OpenAIStub(lambda request: MARKDOWN) as stub:
        outcome = await run_judge(stub, output="text")
        assert [m["role"] for m in stub.requests[0]["messages"]] == ["user"]
        assert "response_format" not in stub.requests[0] and "tools" not in stub.requests[0]
    assert outcome.value == Assessment(**VERDICT) and outcome.method == "text"


async def test_bounded_reask_then_abstain() -> None:
    replies = iter(["I think it is bad.", MARKDOWN])
    with OpenAIStub(lambda request: next(replies)) as stub:
        fixed = await run_judge(stub, output="text", reasks=1)
        assert fixed.value == Assessment(**VERDICT) and fixed.calls == 2
        assert "could not be read" in json.dumps(stub.requests[1]["messages"][-1])
    with OpenAIStub(lambda request: "no idea") as stub:
        failed = await run_judge(stub, output="text", reasks=2)
    assert failed.value is None and failed.calls == 3 and "missing" in (failed.error or "")


async def test_rate_limited_juror_retries_then_records_error() -> None:
    with OpenAIStub(lambda request: json.dumps(VERDICT)) as stub:
        stub.fail_next(429, times=1)
        ok = await run_judge(stub, output="json_schema")
        assert ok.value is not None and ok.calls == 2
        stub.fail_next(500, times=2)
        failed = await run_judge(stub, output="json_schema")
    assert failed.value is None and failed.calls == 2 and "500" in (failed.error or "")
