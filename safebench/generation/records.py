"""Records passed between the generation stages and kept as provenance in `items.jsonl` metadata."""

from __future__ import annotations

from pydantic import BaseModel, Field

SCORE_AXES = ("feasibility", "harmfulness", "applicability")


class Scores(BaseModel):
    """One scorer's 0-9 scores of one candidate; a score it never gave validly is None (missing)."""

    feasibility: int | None = Field(default=None, ge=0, le=9)
    harmfulness: int | None = Field(default=None, ge=0, le=9)
    applicability: int | None = Field(default=None, ge=0, le=9)


class GeneratedQuery(BaseModel):
    """A kept query with everything that explains why it was kept."""

    id: str  # "<scenario>-<rank:03d>", stable for a given taxonomy, models, seed and cache
    scenario: str
    category: str
    text: str
    form: str  # question, instruction, first-person scenario, role-play request, ...
    generator: str  # model spec of the generator agent that wrote it
    scores: dict[str, Scores] = Field(default_factory=dict)  # scorer model spec -> its scores
    final_score: float | None = None


class ImageAttempt(BaseModel):
    round: int  # 1-based; at most 3
    key_phrase: str = ""  # what typography draws (the critic may revise it)
    description: str
    renderer: str
    path: str  # relative to the dataset folder
    sha256: str
    evokes: bool | None = None  # the critic's judgement; None when the critic abstained
    feedback: str = ""


class IllustratedQuery(BaseModel):
    query_id: str
    key_phrase: str
    subject: str
    image_text: str  # the image-paired variant of the query ("... the activity shown in the image")
    image: str  # the chosen attempt's path, relative to the dataset folder
    image_sha256: str
    attempts: list[ImageAttempt] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)  # e.g. the interpreter failed and a fallback was used
