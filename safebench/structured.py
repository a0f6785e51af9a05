"""Get one well-formed, schema-valid answer out of any chat model.

Order: structured output (JSON schema, then tool calling), then free text read by a parser of the
caller's (JSON, or a markdown format), then a bounded re-ask. Model failures never raise: the
outcome carries the error and how many calls were spent, so callers record abstentions honestly.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ValidationError

from safebench.prompts import render
from safebench.retry import CallFailed, RetryPolicy, with_retries
from safebench.schema import Usage

Method = Literal["json_schema", "function_calling", "text"]
# What the prompt should ask for: "structured" when the schema travels with the request,
# "markdown" (or a caller-defined text format) when the reply is free text we parse ourselves.
OutputFormat = Literal["structured", "markdown"]
T = TypeVar("T", bound=BaseModel)


class ParseError(ValueError):
    pass


def parse_json_object(text: str, schema: type[T]) -> T:
    """The first {...} in `text`, validated against `schema`."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        raise ParseError("no JSON object")
    try:
        return schema.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors())
        raise ParseError(f"JSON does not fit the schema at {fields}") from exc


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


# The method that last worked per (model spec, schema): a server without JSON schema pays once.
_PREFERRED: dict[tuple[str, str], Method] = {}


def methods_for(spec: str, schema: type[BaseModel], output: str) -> list[Method]:
    if output != "auto":
        return [output]  # type: ignore[list-item]
    order: list[Method] = ["json_schema", "function_calling", "text"]
    preferred = _PREFERRED.get((spec, schema.__name__))
    return order[order.index(preferred) :] if preferred else order


async def ask_structured(
    model: BaseChatModel,
    spec: str,
    schema: type[T],
    build_messages: Callable[[OutputFormat], list[BaseMessage]],
    *,
    parse_text: Callable[[str], T] | None = None,
    output: str = "auto",
    retry: RetryPolicy,
    reasks: int = 1,
    config: RunnableConfig | None = None,
) -> Outcome[T]:
    """Ask `model` for a `schema` instance, falling back across methods; never raises for model failures."""
    parse = parse_text or (lambda text: parse_json_object(text, schema))
    outcome: Outcome[T] = Outcome()
    errors: list[str] = []
    for method in methods_for(spec, schema, output):
        try:
            if method == "text":
                value = await _ask_text(
                    model, build_messages("markdown"), parse, retry, reasks, config, outcome
                )
            else:
                value = await _ask_structured(
                    model, schema, method, build_messages("structured"), parse, retry, config, outcome
                )
        except NotImplementedError:
            continue  # the model class cannot do this method at all: no call was made
        except (CallFailed, ParseError) as exc:
            errors.append(f"{method}: {exc}")
            continue
        if value is not None:
            outcome.value, outcome.method = value, method
            if output == "auto":
                _PREFERRED[(spec, schema.__name__)] = method
            return outcome
        errors.append(f"{method}: no parsable output")
    outcome.error = "; ".join(errors) or "no output method available"
    return outcome


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


# Built once per (model, schema, method), since building converts the schema each time. Keyed by id:
# chat models are unhashable pydantic objects; the finalizer drops the entry with the model.
_RUNNABLES: dict[int, dict[tuple[type, str], Any]] = {}


def _structured_runnable(model: BaseChatModel, schema: type[BaseModel], method: Method) -> Any:
    """The schema travels as plain JSON schema and we validate the reply ourselves, and the runnable is
    built once: together about 2 ms less CPU per juror call (benchmarks/throughput.py). langchain-openai
    still sends any `response_format` request through the SDK's `parse`; see benchmarks/README.md."""
    if id(model) not in _RUNNABLES:
        _RUNNABLES[id(model)] = {}
        weakref.finalize(model, _RUNNABLES.pop, id(model), None)
    per_model = _RUNNABLES[id(model)]
    if (schema, method) not in per_model:
        json_schema = schema.model_json_schema()
        json_schema.setdefault("description", f"The {schema.__name__} to return.")
        runnable = model.with_structured_output(json_schema, method=method, include_raw=True)
        per_model[(schema, method)] = runnable
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
) -> T | None:
    structured = _structured_runnable(model, schema, method)
    result = await _invoke(structured, messages, retry, config, outcome)
    raw = result.get("raw")
    outcome.usage = outcome.usage + usage_of(raw)
    parsed = result.get("parsed")
    if isinstance(parsed, dict):
        try:
            return schema.model_validate(parsed)
        except ValidationError:
            pass  # e.g. a rating out of range: the prose fallback below, then the next method
    # Some servers ignore the schema and answer in prose: that prose may still be readable.
    if isinstance(raw, AIMessage) and message_text(raw).strip():
        try:
            return parse(message_text(raw))
        except ParseError:
            return None
    return None


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
            # Only the reply's text goes back: metadata (usage, ids) differs between a live and a cached
            # reply and would change the re-ask's cache key, so a rerun would buy the call again.
            reask = HumanMessage(content=render("common/reask.j2", problem=str(exc)))
            history += [AIMessage(content=message_text(reply)), reask]
    return None
