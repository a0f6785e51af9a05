"""The one way JSON is pulled out of model text: every reader (judges, generators, scorers, taxonomy
debate) goes through here, so they agree on what a reply holding JSON means.

Models wrap JSON in prose and ```json fences, echo an example or the schema before answering, and
put braces inside strings. We decode every top-level JSON value with the real JSON decoder (so braces
inside strings never confuse us) and, like the markdown reader, let the LAST value that fits win.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

# Failed decode attempts before giving up: each costs up to a scan of the rest of the text, and a
# reply with hundreds of stray braces is not going to hold a readable answer further on.
_MAX_FAILED_STARTS = 200


class ParseError(ValueError):
    """A reply that could not be read; the message is fit to show the model in a re-ask."""


def json_values(text: str, *, arrays: bool = False) -> tuple[list[Any], str | None]:
    """Every top-level JSON object (and array, if `arrays`) in `text`, in order of appearance, and the
    first decode error met (for a helpful message when nothing decodes)."""
    decoder = json.JSONDecoder()
    opening = "{[" if arrays else "{"
    values: list[Any] = []
    first_error: str | None = None
    failed = 0
    i = 0
    while i < len(text) and failed < _MAX_FAILED_STARTS:
        if text[i] not in opening:
            i += 1
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc.msg
            failed += 1
            i += 1
            continue
        values.append(value)
        i = end  # skip the value's inside: nested objects are not top-level answers
    return values, first_error


def last_json(text: str, accept: Callable[[Any], bool] | None = None, *, arrays: bool = False) -> Any:
    """The last top-level JSON object (or array, if `arrays`) in `text` that `accept` takes (any, if
    None); ParseError if there is none."""
    values, error = json_values(text, arrays=arrays)
    for value in reversed(values):
        if accept is None or accept(value):
            return value
    if values:
        raise ParseError("no JSON value of the expected shape")
    raise ParseError(f"invalid JSON: {error}" if error else "no JSON object")


def _nested_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Objects inside `value`, last first (e.g. {"name": "Assessment", "arguments": {...}})."""
    children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in reversed(children):
        yield from _nested_objects(child)
        if isinstance(child, dict):
            yield child


def extract_json(text: str, schema: type[T]) -> T:
    """The last JSON object in `text` that validates against `schema`. When no top-level object fits,
    objects nested in them are tried (small models wrap answers as {"name": ..., "arguments": {...}})."""
    values, error = json_values(text)
    objects = [v for v in values if isinstance(v, dict)]
    if not objects:
        raise ParseError(f"invalid JSON: {error}" if error else "no JSON object")
    first_miss: ValidationError | None = None
    for candidate in [*reversed(objects), *(n for o in reversed(objects) for n in _nested_objects(o))]:
        try:
            return schema.model_validate(candidate)
        except ValidationError as exc:
            # Report the last top-level object's problem: it is the one meant as the answer.
            first_miss = first_miss or exc
    assert first_miss is not None
    raise ParseError(f"JSON does not fit the schema: {describe(first_miss)}") from first_miss


def describe(exc: ValidationError) -> str:
    """A short, model-readable account of what is wrong, e.g. "rating: must be a whole number"."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
