"""ask_structured's method choice and the one JSON extractor, through the real ChatOpenAI over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from graphs.generation_state import load_json
from safebench.json_extract import extract_json, json_values, last_json
from safebench.judging import Assessment, parse_text
from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model
from safebench.providers.scripted_taxonomy import _tagged_json
from safebench.retry import RetryPolicy
from safebench.structured import (
    Outcome,
    OutputFormat,
    ParseError,
    ask_structured,
    demoted_methods,
    methods_for,
    parse_json_object,
)
from safebench.testing import OpenAIStub, StubHTTPError
from safebench.testing.openai_stub import LLAMA_CPP_JSON_SCHEMA_ERROR

VERDICT = {"unsafe": True, "rating": 2, "reasoning": "gives [details withheld] uplift"}
SAFE = {"unsafe": False, "rating": 5, "reasoning": "refuses and points to a professional"}
NO_RETRY_WAIT = RetryPolicy(max_attempts=3, initial_delay=0)


def build(fmt: OutputFormat) -> list[Any]:
    return [
        SystemMessage(content="You are a careful safety juror."),
        HumanMessage(content=f"Assess ({fmt})."),
    ]


def model_for(stub: OpenAIStub) -> BaseChatModel:
    return create_chat_model(ModelConfig(spec="openai:judge", base_url=stub.base_url))


async def ask(model: BaseChatModel, output: str = "auto", retry: RetryPolicy = NO_RETRY_WAIT) -> Outcome:
    return await ask_structured(model, Assessment, build, parse_text=parse_text, output=output, retry=retry)


def kind(request: dict[str, Any]) -> str:
    if request.get("tools"):
        return "function_calling"
    return (request.get("response_format") or {}).get("type", "text")


# ---- the one JSON extractor ----------------------------------------------------------------------


def test_two_objects_the_last_fitting_one_wins() -> None:
    text = f"Example: {json.dumps(SAFE)}\nMy verdict: {json.dumps(VERDICT)}"
    assert parse_json_object(text, Assessment) == Assessment(**VERDICT)
    # An echoed schema, or a trailing remark in braces, does not fit and does not win.
    schema_echo = json.dumps(Assessment.model_json_schema())
    assert extract_json(f"{schema_echo}\n{json.dumps(VERDICT)}", Assessment) == Assessment(**VERDICT)
    assert extract_json(f'{json.dumps(VERDICT)} {{"note": "done"}}', Assessment) == Assessment(**VERDICT)


def test_fences_prose_and_braces_inside_strings() -> None:
    tricky = {**VERDICT, "reasoning": 'quotes "{not json}" and a } brace'}
    fenced = f"Sure, here it is:\n```json\n{json.dumps(tricky, indent=2)}\n```\nHope that helps {{:"
    assert extract_json(fenced, Assessment) == Assessment(**tricky)
    # Small models wrap a tool-call-like answer around the object.
    wrapped = json.dumps({"name": "Assessment", "arguments": VERDICT})
    assert extract_json(wrapped, Assessment) == Assessment(**VERDICT)


def test_extractor_errors_say_why() -> None:
    with pytest.raises(ParseError, match="no JSON object"):
        extract_json("I think the answer is fine.", Assessment)
    with pytest.raises(ParseError, match="invalid JSON"):
        extract_json('{"unsafe": true, "rating": 2,', Assessment)
    with pytest.raises(ParseError, match="rating"):
        extract_json('{"unsafe": true, "rating": 7, "reasoning": "x"}', Assessment)
    assert json_values('[1] and {"a": [2]}', arrays=True) == ([[1], {"a": [2]}], None)
    assert last_json('{"a": 1} {"b": 2}', lambda v: "a" in v) == {"a": 1}


def test_generation_and_taxonomy_readers_use_the_same_extractor() -> None:
    text = (
        'For example {"queries": ["[example]"]}; my batch:\n```json\n{"queries": ["[request withheld]"]}\n```'
    )
    assert load_json(text) == {"queries": ["[request withheld]"]}
    prompt = 'Draft: <draft>\n{"categories": [{"name": "A {b}"}]}\n</draft>'
    assert _tagged_json(prompt, "draft") == {"categories": [{"name": "A {b}"}]}


# ---- method choice: per model object, demoted only by capability errors ---------------------------


def llama_like(request: dict[str, Any]) -> str:
    """llama-cpp-python: json_schema is a 500 with a pydantic body; json_object + schema is honoured."""
    if kind(request) == "json_schema":
        raise StubHTTPError(500, LLAMA_CPP_JSON_SCHEMA_ERROR)
    assert kind(request) == "json_object"
    return json.dumps(VERDICT)


async def test_json_object_after_a_llama_cpp_json_schema_error_per_model_object() -> None:
    with OpenAIStub(llama_like) as stub:
        first, second = model_for(stub), model_for(stub)
        a1 = await ask(first, retry=RetryPolicy(max_attempts=4, initial_delay=0))
        # The capability error is not retried and is paid once: json_schema, then json_object.
        assert (a1.value, a1.method, a1.calls) == (Assessment(**VERDICT), "json_object", 2)
        assert [kind(r) for r in stub.requests] == ["json_schema", "json_object"]
        a2 = await ask(first)
        assert (a2.method, a2.calls) == ("json_object", 1)
        assert demoted_methods(first, Assessment) == {"json_schema"}
        # Same spec, another object: it has not seen the error, so it pays it itself.
        assert demoted_methods(second, Assessment) == set()
        b1 = await ask(second)
        assert (b1.method, b1.calls) == ("json_object", 2)
    request = stub.requests[1]
    assert request["response_format"] == {"type": "json_object", "schema": Assessment.model_json_schema()}
    # The schema is in the prompt too, in the last user message, as plain string content.
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert all(isinstance(m["content"], str) for m in request["messages"])
    assert '"rating"' in request["messages"][-1]["content"]
    assert "JSON schema" in request["messages"][-1]["content"]


async def test_an_unreadable_reply_falls_back_for_this_call_only() -> None:
    replies = iter(["I would rather explain in words: the answer is harmful."])

    def responder(request: dict[str, Any]) -> Any:
        text = next(replies, None)
        if text is not None:
            return text
        if request.get("tools"):
            return {"tool_calls": [{"name": "Assessment", "arguments": VERDICT}]}
        return json.dumps(VERDICT)

    with OpenAIStub(responder) as stub:
        model = model_for(stub)
        first = await ask(model)
        assert (first.method, first.calls) == ("json_object", 2)
        again = await ask(model)
    # The parse miss taught nothing about the server: the next item starts at json_schema again.
    assert (again.method, again.calls) == ("json_schema", 1)
    assert methods_for(model, Assessment, "auto") == [
        "json_schema",
        "json_object",
        "function_calling",
        "text",
    ]


async def test_a_server_that_stays_down_costs_max_attempts_requests() -> None:
    with OpenAIStub(lambda request: json.dumps(VERDICT)) as stub:
        stub.fail_next(503, times=100, message="upstream model is overloaded")
        model = model_for(stub)
        outcome = await ask(model)
        assert len(stub.requests) == NO_RETRY_WAIT.max_attempts
        assert outcome.value is None and outcome.calls == NO_RETRY_WAIT.max_attempts
        assert "503" in (outcome.error or "") and "json_schema" in (outcome.error or "")
        # An outage is not a capability: nothing is demoted.
        assert demoted_methods(model, Assessment) == set()


@pytest.mark.parametrize("finish", ["length", "content_filter"])
async def test_a_cut_off_reply_is_unreadable_not_fatal(finish: str) -> None:
    cut = {"content": '{"unsafe": true, "rating": 2, "reasoning": "gives', "finish_reason": finish}

    def responder(request: dict[str, Any]) -> Any:
        if request.get("tools"):
            return {"tool_calls": [{"name": "Assessment", "arguments": VERDICT}]}
        return cut

    with OpenAIStub(responder) as stub:
        model = model_for(stub)
        only = await ask(model, output="json_schema")
        assert only.value is None and f"finish_reason={finish}" in (only.error or "")
        assert only.calls == 1 and only.usage.completion > 0  # the cut reply's tokens were paid for
        # Under "auto" it is a miss for this call: the next methods are tried, nothing is demoted.
        auto = await ask(model)
    assert (auto.value, auto.method, auto.calls) == (Assessment(**VERDICT), "function_calling", 3)
    assert demoted_methods(model, Assessment) == set()


class Note(BaseModel):
    text: str


async def test_json_object_skipped_for_models_without_structured_output() -> None:
    # The scripted provider's class has no native structured output: json_object is never sent to it.
    model = create_chat_model(ModelConfig(spec="scripted:juror"))
    outcome = await ask_structured(model, Note, build, retry=NO_RETRY_WAIT, output="auto")
    assert "json_object" in demoted_methods(model, Note)
    assert outcome.method in (None, "text")
