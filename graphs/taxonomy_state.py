"""State, judge tasks and runtime context of the taxonomy debate graph (graphs/taxonomy.py)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel

from graphs.context import Agent, make_agent
from graphs.state import add_usage
from safebench.agents import AgentCard, AgentCardError, load_stage_cards
from safebench.generation.taxonomy import MERGE_THRESHOLD
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy

STAGE = "taxonomy"


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
    retry: RetryPolicy | None = None,
    agents_dir: Path | None = None,
    prompts_dir: Path | None = None,
) -> TaxonomyContext:
    """Judge i plays taxonomist card i (cycling through the cards); None: every card on its default model.
    `models` are pre-built chat models keyed by spec (e.g. with the SQLite cache attached)."""
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
        seed=seed,
        retry=retry or RetryPolicy(),
        prompts_dir=prompts_dir,
    )
