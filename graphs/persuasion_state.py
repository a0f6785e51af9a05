"""State and runtime context of the persuasion graph (graphs/persuasion.py), one run per dataset item.

The settings class and its cached resolver live here, next to the context they build, as for the
image, generation and taxonomy graphs (graphs/context.py holds the shared `Resolver` machinery).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict  # see graphs/state.py

from graphs import examples
from graphs.context import Agent, check_spec, make_agent, resolver
from graphs.state import add_usage, studio_example
from safebench.agents import load_stage_card
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy
from safebench.transforms.techniques import DEFAULT_TECHNIQUE, get_technique

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "PersuasionContext",
    "PersuasionSettings",
    "PersuasionState",
    "default_persuasion_context",
    "persuasion_context",
    "persuasion_from_settings",
]

STAGE = "persuasion"
CARD = "persuader"
# Rewrites asked for at most: a refusal or an unchanged query gets one more try with the reason.
DEFAULT_MAX_ROUNDS = 2


@with_config(studio_example(examples.persuasion_example))
class PersuasionState(TypedDict, total=False):
    item: dict[str, Any]  # Item.model_dump()
    round: int  # the rewrite being asked for, 1-based
    problem: str  # why the last draft was rejected ("" for none)
    drafts: Annotated[list[dict[str, Any]], operator.add]  # {"round", "text", "problem"} per attempt
    done: bool
    errors: Annotated[list[str], operator.add]
    calls: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_usage]
    # {"item_id", "text" (None on failure), "technique", "attacker", "rounds", "error"}
    result: dict[str, Any]


@dataclass
class PersuasionContext:
    attacker: Agent
    technique: str = DEFAULT_TECHNIQUE
    max_rounds: int = DEFAULT_MAX_ROUNDS
    reasks: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prompts_dir: Path | None = None

    def __post_init__(self) -> None:
        get_technique(self.technique)  # an unknown technique fails before any model is called
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1 (got {self.max_rounds})")


def persuasion_context(
    attacker: ModelConfig | None = None,
    *,
    technique: str = DEFAULT_TECHNIQUE,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    reasks: int = 1,
    retry: RetryPolicy | None = None,
    models: dict[str, Any] | None = None,
    agents_dir: Path | None = None,
    prompts_dir: Path | None = None,
) -> PersuasionContext:
    """The card `agents/persuasion/persuader.yaml` played by `attacker` (default: the card's model, the
    scripted stand-in); `models` as in `graphs.context.make_agent`."""
    card = load_stage_card(STAGE, CARD, agents_dir)
    return PersuasionContext(
        attacker=make_agent(card, attacker, models),
        technique=technique,
        max_rounds=max_rounds,
        reasks=reasks,
        retry=retry or RetryPolicy(),
        prompts_dir=prompts_dir,
    )


class PersuasionSettings(BaseModel):
    """The persuasion graph's context as plain data (LangGraph Studio, langgraph-sdk); see
    graphs/context.py."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # frozen: the resolver's cache key

    attacker_model: str | None = Field(default=None, description="Model spec; None: the card's default.")
    technique: str = Field(default=DEFAULT_TECHNIQUE, description="Persuasion technique id.")
    max_rounds: int = Field(default=DEFAULT_MAX_ROUNDS, ge=1, le=5, description="Rewrites asked for at most.")
    reasks: int = Field(default=1, ge=0, le=5)

    _spec = field_validator("attacker_model")(classmethod(lambda cls, v: check_spec(v)))

    @field_validator("technique")
    @classmethod
    def _known(cls, value: str) -> str:
        get_technique(value)
        return value


@resolver(PersuasionSettings, PersuasionContext)
def persuasion_from_settings(settings: PersuasionSettings) -> PersuasionContext:
    attacker = ModelConfig(spec=settings.attacker_model) if settings.attacker_model else None
    return persuasion_context(
        attacker, technique=settings.technique, max_rounds=settings.max_rounds, reasks=settings.reasks
    )


def default_persuasion_context() -> PersuasionContext:
    """The bundled card with its default model (the cached default settings)."""
    return persuasion_from_settings.resolve(None)
