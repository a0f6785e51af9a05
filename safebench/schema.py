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
# blocked: the provider withheld the answer (finish_reason content_filter); like error and hung it is
# never judged or counted as safe.
VerdictStatus = Literal["decided", "hung", "error", "blocked"]


def seat_key(slot: int | None, juror: str) -> str:
    """What identifies a juror within a record: its slot, so one card may sit twice (the card id for
    records written before slots existed)."""
    return str(slot) if slot is not None else juror


class Opinion(BaseModel):
    """One juror's assessment in one round (round 0 = independent assessment)."""

    juror: str  # the card id; one card may sit in several slots
    # The juror's seat on the panel (its position): opinions, rebuttals and agreement are keyed by it.
    slot: int | None = None
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

    @property
    def seat(self) -> str:
        return seat_key(self.slot, self.juror)


class Verdict(BaseModel):
    unsafe: bool | None = None
    rating: float | None = None
    status: VerdictStatus
    reasoning: str = ""


class MediaRef(BaseModel):
    """A file the target was sent: its path relative to the dataset folder and its checksum."""

    path: str
    sha256: str | None = None
    voice: str | None = None  # recordings only


class Result(BaseModel):
    """One line of `results.jsonl`: a (target, item) pair, what the target was sent, and the verdict."""

    item_id: str
    target: str  # the target's unique label (its name in a models file, else its spec)
    target_spec: str = ""
    scenario: str
    category: str
    query: str
    modality: str | None = None
    prompt: str | None = None  # the text the target was sent
    image: MediaRef | None = None  # the image shown; under a condition, relative to the run directory
    # Which image was shown (safebench.image_conditions): "dataset" (the item's own), "none", "black",
    # "white", "noise", "random", "first-attempt"; None outside the image modality and in older records.
    image_condition: str | None = None
    audio: MediaRef | None = None
    response: str | None
    finish_reason: str | None = None
    truncated: bool = False  # the answer was cut at the token limit (finish_reason "length")
    verdict: Verdict
    rounds: int = 0
    opinions: list[Opinion] = Field(default_factory=list)
    calls: int = 0
    tokens: Usage = Field(default_factory=Usage)
    error: str | None = None
