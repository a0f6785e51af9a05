"""Get one well-formed, schema-valid answer out of any chat model.

Order ("auto"): JSON schema, then JSON object mode (schema in the request and in the prompt), then tool
calling, then free text read by a parser of the caller's (JSON, or a markdown format) with a bounded
re-ask. Model failures never raise: the outcome carries the error and how many calls were spent, so
callers record abstentions honestly.

Which methods a model can do is remembered per model object, and only a capability error (the server
rejected the method itself) demotes one: an unreadable reply is bad luck for this call, not evidence
about the server, so results never depend on which item happened to run first.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ValidationError

from safebench.json_extract import ParseError, describe, extract_json
from safebench.prompts import render
from safebench.providers.openai import bind_response_format
from safebench.retry import CallFailed, RetryPolicy, with_retries
from safebench.schema import Usage

__all__ = [
    "AUTO_ORDER",
    "Method",
    "Outcome",
    "OutputFormat",
    "ParseError",
    "ask_structured",
    "demoted_methods",
    "methods_for",
    "parse_json_object",
]

Method = Literal["json_schema", "json_object", "function_calling", "text"]
AUTO_ORDER: tuple[Method, ...] = ("json_schema", "json_object", "function_calling", "text")
# What the prompt should ask for: "structured" when the schema travels with the request,
# "markdown" (or a caller-defined text format) when the reply is free text we parse ourselves.
OutputFormat = Literal["structured", "markdown"]
T = TypeVar("T", bound=BaseModel)


def parse_json_object(text: str, schema: type[T]) -> T:
    """The last JSON object in `text` that fits `schema` (see safebench.json_extract)."""
    return extract_json(text, schema)


@dataclass
class Outcome(Generic[T]):
    value: T | None = None
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    method: Method | None = None
    error: str | None = None


def message_text(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def usage_of(message: Any) -> Usage:
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(prompt=meta.get("input_tokens", 0), completion=meta.get("output_tokens", 0))


@dataclass
class _Memory:
    """What we know about one model object: built runnables (building converts the schema each time) and
    the (schema, method) pairs its server rejected. Per schema, since a server may reject one schema
    (e.g. OpenAI's "Invalid schema for response_format") and accept another."""

    runnables: dict[tuple[type, Method], Any] = field(default_factory=dict)
    demoted: set[tuple[type, Method]] = field(default_factory=set)


# Keyed by id: chat models are unhashable pydantic objects; the finalizer drops the entry with the model.
_MEMORY: dict[int, _Memory] = {}


def _memory(model: BaseChatModel) -> _Memory:
    memory = _MEMORY.get(id(model))
    if memory is None:
        memory = _MEMORY[id(model)] = _Memory()
        weakref.finalize(model, _MEMORY.pop, id(model), None)
    return memory


def demoted_methods(model: BaseChatModel, schema: type[BaseModel]) -> set[Method]:
    """The methods this model object's server rejected for `schema` (a capability error)."""
    return {method for s, method in _memory(model).demoted if s is schema}


def methods_for(model: BaseChatModel, schema: type[BaseModel], output: str) -> list[Method]:
    """The methods to try, in order: the configured one, or for "auto" every method not demoted for this
    model object. "text" is never demoted: there is nothing after it."""
    if output != "auto":
        return [output]  # type: ignore[list-item]
    demoted = demoted_methods(model, schema)
    return [m for m in AUTO_ORDER if m == "text" or m not in demoted]


async def ask_structured(
    model: BaseChatModel,
    schema: type[T],
    build_messages: Callable[[OutputFormat], list[BaseMessage]],
    *,
    parse_text: Callable[[str], T] | None = None,
    output: str = "auto",
    retry: RetryPolicy,
    reasks: int = 1,
    config: RunnableConfig | None = None,
) -> Outcome[T]:
    """Ask `model` for a `schema` instance, falling back across methods; never raises for model failures.

    What a model can do is remembered per model object (not per spec).
    Fallback to the next method happens on a capability error (remembered for this model object) or an
    unreadable reply (this call only). A transient failure that used up its retries, or any other
    error, ends the call: another method would meet the same."""
    parse = parse_text or (lambda text: parse_json_object(text, schema))
    outcome: Outcome[T] = Outcome()
    errors: list[str] = []
    for method in methods_for(model, schema, output):
        try:
            if method == "text":
                value = await _ask_text(
                    model, build_messages("markdown"), parse, retry, reasks, config, outcome
                )
            else:
                messages = build_messages("structured")
                if method == "json_object":
                    messages = _with_schema_instruction(messages, schema)
                value = await _ask_structured(model, schema, method, messages, parse, retry, config, outcome)
        except NotImplementedError:
            _memory(model).demoted.add((schema, method))
            continue  # the model class cannot do this method at all: no call was made
        except CallFailed as exc:
            finish = _CUT_OFF.get(type(exc.__cause__).__name__)
            if finish is not None:  # a reply, only cut short: unreadable, like a parse miss
                outcome.usage = outcome.usage + _cut_off_usage(exc.__cause__)
                errors.append(f"{method}: reply cut off (finish_reason={finish})")
                continue
            errors.append(f"{method}: {exc}")
            if exc.capability and method != "text":
                _memory(model).demoted.add((schema, method))
                continue
            break
        except ParseError as exc:  # an unreadable reply: next method for this call only, nothing remembered
            errors.append(f"{method}: {exc}")
            continue
        if value is not None:
            outcome.value, outcome.method = value, method
            return outcome
        errors.append(f"{method}: no parsable output")
    outcome.error = "; ".join(errors) or "no output method available"
    return outcome


# The openai SDK's `parse` (used for any response_format) raises these instead of returning the reply.
_CUT_OFF = {"LengthFinishReasonError": "length", "ContentFilterFinishReasonError": "content_filter"}


def _cut_off_usage(exc: BaseException | None) -> Usage:
    usage = getattr(getattr(exc, "completion", None), "usage", None)
    if usage is None:
        return Usage()
    return Usage(prompt=usage.prompt_tokens or 0, completion=usage.completion_tokens or 0)


def _with_schema_instruction(messages: list[BaseMessage], schema: type[BaseModel]) -> list[BaseMessage]:
    """`messages` plus the JSON schema in words: json_object mode does not tell every server the schema,
    and prompt templates only know "structured" (schema travels with the request) and "markdown".
    Appended to the last user message when it is plain text (some chat templates insist on alternating
    roles), else as a message of its own; always plain string content (llama-cpp rejects lists)."""
    instruction = render("common/json_object.j2", schema=json.dumps(_json_schema(schema)))
    last = messages[-1] if messages else None
    if isinstance(last, HumanMessage) and isinstance(last.content, str):
        return [*messages[:-1], HumanMessage(content=f"{last.content}\n\n{instruction}")]
    return [*messages, HumanMessage(content=instruction)]


async def _invoke(
    model: Any,
    messages: list[BaseMessage],
    retry: RetryPolicy,
    config: RunnableConfig | None,
    outcome: Outcome,
) -> Any:
    try:
        result, attempts = await with_retries(lambda: model.ainvoke(messages, config=config), retry)
    except CallFailed as exc:
        outcome.calls += exc.attempts
        raise
    outcome.calls += attempts
    return result


def _json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    json_schema = schema.model_json_schema()
    json_schema.setdefault("description", f"The {schema.__name__} to return.")
    return json_schema


def _response_format(schema: type[BaseModel], method: Method) -> dict[str, Any]:
    if method == "json_object":
        return {"type": "json_object", "schema": _json_schema(schema)}
    json_schema = _json_schema(schema)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema.__name__,
            "description": json_schema["description"],
            "strict": False,
            "schema": {k: v for k, v in json_schema.items() if k not in ("title", "description")},
        },
    }


def _structured_runnable(model: BaseChatModel, schema: type[BaseModel], method: Method) -> Any:
    """Built once per model object and schema. The schema travels as plain JSON schema and the reply is
    validated here: OpenAI-compatible models get the request parameter sent as is (see
    `bind_response_format`: about 4 ms less CPU per juror call than `with_structured_output`, see
    benchmarks/README.md); other chat models use their own `with_structured_output`."""
    per_model = _memory(model).runnables
    if (schema, method) not in per_model:
        bound = None
        if method in ("json_schema", "json_object"):
            bound = bind_response_format(model, _response_format(schema, method))
        if bound is not None:
            per_model[(schema, method)] = bound
        elif method == "json_object":
            # langchain-openai passes a bound response_format dict through untouched (the SDK's `parse`
            # leaves `parsed` empty for it), so the reply text is ours to extract and validate. Only
            # models with native structured output take the parameter; others would silently ignore it.
            if type(model).with_structured_output is BaseChatModel.with_structured_output:
                raise NotImplementedError("json_object needs a model with native structured output")
            per_model[(schema, method)] = model.bind(response_format=_response_format(schema, method))
        else:
            per_model[(schema, method)] = model.with_structured_output(
                _json_schema(schema), method=method, include_raw=True
            )
    return per_model[(schema, method)]


async def _ask_structured(
    model: BaseChatModel,
    schema: type[T],
    method: Method,
    messages: list[BaseMessage],
    parse: Callable[[str], T],
    retry: RetryPolicy,
    config: RunnableConfig | None,
    outcome: Outcome[T],
) -> T:
    """One call with `method`; ParseError (with the reason) when the reply cannot be read."""
    structured = _structured_runnable(model, schema, method)
    result = await _invoke(structured, messages, retry, config, outcome)
    # A bound request returns the reply itself; with_structured_output(include_raw=True) a dict.
    raw = result.get("raw") if isinstance(result, dict) else result
    outcome.usage = outcome.usage + usage_of(raw)
    parsed = result.get("parsed") if isinstance(result, dict) else None
    problem = "no parsable output"
    if isinstance(parsed, dict):
        try:
            return schema.model_validate(parsed)
        except ValidationError as exc:
            # e.g. a rating out of range: the text readers below, then the next method
            problem = f"reply does not fit the schema: {describe(exc)}"
    text = message_text(raw) if isinstance(raw, AIMessage) else ""
    if text.strip():
        # json_object replies, and servers that ignore the schema and answer in prose, may still be
        # readable: our extractor first, then the caller's (possibly more lenient) reader.
        for reader in (lambda t: extract_json(t, schema), parse):
            try:
                return reader(text)
            except ParseError as exc:
                problem = str(exc)
    finish = (getattr(raw, "response_metadata", None) or {}).get("finish_reason")
    if finish in ("length", "content_filter"):
        problem = f"{problem} (finish_reason={finish})"
    raise ParseError(problem)


async def _ask_text(
    model: BaseChatModel,
    messages: list[BaseMessage],
    parse: Callable[[str], T],
    retry: RetryPolicy,
    reasks: int,
    config: RunnableConfig | None,
    outcome: Outcome[T],
) -> T | None:
    history = list(messages)
    for attempt in range(reasks + 1):
        reply = await _invoke(model, history, retry, config, outcome)
        outcome.usage = outcome.usage + usage_of(reply)
        try:
            return parse(message_text(reply))
        except ParseError as exc:
            if attempt == reasks:
                raise
            # Only the reply's text goes back, as plain strings: metadata (usage, ids) differs between a
            # live and a cached reply and would change the re-ask's cache key, and llama-cpp's chat
            # templates reject list content.
            reask = HumanMessage(content=render("common/reask.j2", problem=str(exc)))
            history += [AIMessage(content=message_text(reply)), reask]
    return None
