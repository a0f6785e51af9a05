"""Agent cards (`agents/**.yaml`): name, persona and default model of each juror and the foreperson,
kept as data so users add or edit an agent without touching code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safebench.resources import bundled_dir

Role = Literal[
    "juror", "foreperson", "taxonomist", "moderator", "generator", "scorer", "interpreter", "critic"
]


class AgentCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    role: Role
    name: str = Field(min_length=1)
    persona: str = Field(min_length=1)
    model: str = "scripted:juror"


class AgentCardError(ValueError):
    pass


def load_card(path: Path) -> AgentCard:
    try:
        return AgentCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise AgentCardError(f"{path}: invalid agent card: {exc}") from exc


def jury_dir(agents_dir: Path | None = None) -> Path:
    return (agents_dir or bundled_dir("agents")) / "jury"


def load_jurors(agents_dir: Path | None = None) -> list[AgentCard]:
    """The juror cards in `agents/jury/jurors/`, in file-name order (a stable panel order)."""
    folder = jury_dir(agents_dir) / "jurors"
    cards = [load_card(p) for p in sorted(folder.glob("*.yaml"))]
    if not cards:
        raise AgentCardError(f"{folder}: no juror cards")
    return cards


def load_juror(card_id: str, agents_dir: Path | None = None) -> AgentCard:
    for card in load_jurors(agents_dir):
        if card.id == card_id:
            return card
    raise AgentCardError(f"no juror card with id {card_id!r} in {jury_dir(agents_dir) / 'jurors'}")


def load_foreperson(agents_dir: Path | None = None) -> AgentCard:
    return load_card(jury_dir(agents_dir) / "foreperson.yaml")


def load_stage_cards(stage: str, agents_dir: Path | None = None) -> list[AgentCard]:
    """Every card in `agents/<stage>/` (e.g. "taxonomy", "generation", "image"), in file-name order."""
    folder = (agents_dir or bundled_dir("agents")) / stage
    cards = [load_card(p) for p in sorted(folder.glob("*.yaml"))]
    if not cards:
        raise AgentCardError(f"{folder}: no agent cards")
    return cards


def load_stage_card(stage: str, card_id: str, agents_dir: Path | None = None) -> AgentCard:
    for card in load_stage_cards(stage, agents_dir):
        if card.id == card_id:
            return card
    raise AgentCardError(f"no card with id {card_id!r} in {(agents_dir or bundled_dir('agents')) / stage}")
