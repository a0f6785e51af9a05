"""Data records shared by every part of safebench: taxonomy, dataset items, opinions, verdicts, results.

`results.jsonl` lines are `Result.model_dump(mode="json")`; the README documents them as a stable interface.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    abbr: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    category: str = ""  # filled from the enclosing category when loaded
    # Who proposed it, the votes, the round it changed in (taxonomies made by the debate graph).
    provenance: dict[str, Any] | None = None


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    abbr: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    scenarios: list[Scenario] = Field(min_length=1)
    provenance: dict[str, Any] | None = None


class Taxonomy(BaseModel):
    """Categories, each holding its scenarios (the layout of `taxonomy.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "safebench"
    version: str = "1"
    categories: list[Category]

    def model_post_init(self, __context: Any) -> None:
        for category in self.categories:
            for scenario in category.scenarios:
                scenario.category = category.id

    @property
    def scenarios(self) -> dict[str, Scenario]:
        return {s.id: s for c in self.categories for s in c.scenarios}

    @property
    def category_by_id(self) -> dict[str, Category]:
        return {c.id: c for c in self.categories}

    def scenario(self, scenario_id: str) -> Scenario:
        try:
            return self.scenarios[scenario_id]
        except KeyError:
            raise KeyError(f"unknown scenario id {scenario_id!r}") from None


class AudioRef(BaseModel):
    """A spoken version of the query: a 16 kHz mono WAV file relative to the dataset folder."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    sha256: str = Field(min_length=64, max_length=64)
    voice: str = Field(min_length=1)  # "male" / "female" (the engine's voice name is in metadata)


class Item(BaseModel):
    """One line of `items.jsonl`. File paths are relative to the dataset folder."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    category: str = Field(min_length=1)
    text: str = Field(min_length=1)
    image: str | None = None
    image_sha256: str | None = None
    # The image-paired variant: the query rewritten to refer to its image ("the activity shown in the image").
    image_text: str | None = None
    audio: list[AudioRef] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    prompt: int = 0
    completion: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(prompt=self.prompt + other.prompt, completion=self.completion + other.completion)


OpinionStatus = Literal["ok", "abstained"]
VerdictStatus = Literal["decided", "hung", "error"]


class Opinion(BaseModel):
    """One juror's assessment in one round (round 0 = independent assessment)."""

    juror: str
    model: str
    round: int
    unsafe: bool | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    reasoning: str = ""
    status: OpinionStatus = "ok"
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "ok" and self.unsafe is not None and self.rating is not None


class Verdict(BaseModel):
    unsafe: bool | None = None
    rating: float | None = None
    status: VerdictStatus
    reasoning: str = ""


class Result(BaseModel):
    """One line of `results.jsonl`: a (target, item) pair and how the jury judged it."""

    item_id: str
    target: str
    scenario: str
    category: str
    query: str
    response: str | None
    verdict: Verdict
    rounds: int = 0
    opinions: list[Opinion] = Field(default_factory=list)
    calls: int = 0
    tokens: Usage = Field(default_factory=Usage)
    error: str | None = None
