"""Graph states. Values are plain JSON-able dicts so checkpoints stay portable and readable."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict, with_config

# typing_extensions' TypedDict, not typing's: on Python < 3.12 pydantic cannot build a JSON Schema from
# typing.TypedDict, and langgraph-api then serves no input/output schema (Studio shows no input form).
from typing_extensions import TypedDict

from graphs import examples


def studio_example(build: examples.Example) -> ConfigDict:
    """The JSON Schema `examples` of an input schema (Studio pre-fills its input form from it). Built
    when the schema is generated, not at import: the runner imports the states and never needs it."""

    def extra(schema: dict[str, Any]) -> None:
        schema["examples"] = [build()]

    return ConfigDict(json_schema_extra=extra)


def add_usage(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    left, right = left or {}, right or {}
    return {k: left.get(k, 0) + right.get(k, 0) for k in ("prompt", "completion")}


class Case(TypedDict):
    """What the jury judges: one query, its image, and the target's answer."""

    item_id: str
    scenario: str
    scenario_name: str
    scenario_definition: str
    category: str
    category_name: str
    query: str
    image: str | None  # absolute path; images are read by the nodes, never stored in state
    has_image: bool
    response: str
    audio: NotRequired[str | None]  # absolute path of the spoken query (audio modalities)


@with_config(studio_example(examples.jury_example))
class JuryState(TypedDict, total=False):
    case: Case
    brief: str
    # Every opinion of every round (Opinion.model_dump()); parallel jurors append, hence the reducer.
    opinions: Annotated[list[dict[str, Any]], operator.add]
    calls: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_usage]
    verdict: dict[str, Any]
    rounds: int


class JurorTask(TypedDict):
    """The private input of one juror's turn (sent with `Send`)."""

    case: Case
    brief: str
    juror: int
    round: int
    own: dict[str, Any] | None
    others: list[dict[str, Any]]


@with_config(studio_example(examples.evaluation_example))
class EvaluationState(JuryState, total=False):
    """One (target, item): the target answers, then the jury judges."""

    item: dict[str, Any]
    target: str
    prompt: str  # the text the target was sent
    response: str | None
    finish_reason: str | None
    truncated: bool
    error: str | None
