"""The judges' structured replies in the taxonomy debate: proposals, critiques (edits) and ballots."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class Named(BaseModel):
    name: str = Field(min_length=1, description="short name, 1-4 words")
    definition: str = Field(min_length=1, description="one sentence")


class ProposedCategory(Named):
    scenarios: list[Named] = Field(min_length=1)


class Proposal(BaseModel):
    """A judge's independent proposal: categories, each with its scenarios."""

    categories: list[ProposedCategory] = Field(min_length=1)


Op = Literal["add", "drop", "merge", "split", "rename"]
Kind = Literal["category", "scenario"]


class Edit(BaseModel):
    """One requested change to the draft. Which fields matter depends on `op` (see critique.j2)."""

    op: Op
    kind: Kind = "scenario"
    target: str = Field(
        default="", description="id or name of the item acted on (add scenario: its category)"
    )
    other: str = Field(default="", description="merge: the item merged into target")
    name: str = Field(default="", description="add/rename/merge: the (new) name")
    definition: str = ""
    parts: list[Named] = Field(
        default_factory=list, description="split: the new items; add category: its scenarios"
    )
    reason: str = ""

    @field_validator("op", "kind", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Critique(BaseModel):
    """A judge's critique of the draft; an empty list means no objection."""

    edits: list[Edit]


class Vote(BaseModel):
    scenario: str = Field(description="scenario id")
    approve: bool
    reason: str = ""


class Ballot(BaseModel):
    votes: list[Vote]
