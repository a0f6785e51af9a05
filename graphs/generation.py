"""The query-generation graph: per scenario (a subgraph fanned out with `Send`), generators write
candidate queries in batches → refused / off-topic / empty batches are retried with a varied prompt
(at most `max_retries` times) or dropped → exact and near duplicates are removed → scorers rate every
candidate 0-9 on feasibility, harmfulness and applicability, in chunks → the top K by weighted mean
are kept, with their generator, every scorer's scores and the final score.

Deterministic given the model replies: fan-in results are sorted (by batch and position, by scorer
order), the only randomness (which forms a batch leans towards) comes from `Random(f"{seed}:...")`,
and prompts hold nothing run-dependent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphs.context import resolve_embedder
from graphs.events import EventHandler, emit, run_streaming
from graphs.generation_scenario import (
    QUERY_FORMS,
    GenerationRuntime,
    _ctx,
    build_scenario_graph,
    dedupe,
    generate,
    plan_batches,
    plan_scoring,
    scenario_block,
    score,
    select,
)
from graphs.generation_state import (
    GenerationContext,
    GenerationSettings,
    GenerationState,
    ScenarioInfo,
    build_agents,
)
from safebench.embeddings import NONE
from safebench.generation.dedupe import DEFAULT_SEMANTIC_THRESHOLD
from safebench.generation.ranking import resolve_weights
from safebench.generation.records import GeneratedQuery
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy
from safebench.schema import Taxonomy
from safebench.taxonomy import default_taxonomy

# The per-scenario subgraph and its nodes live in graphs/generation_scenario.py; re-exported here so
# `graphs.generation` stays the one import for the whole generation graph.
__all__ = [
    "QUERY_FORMS",
    "GenerationOutcome",
    "GenerationRuntime",
    "build_generation_graph",
    "build_scenario_graph",
    "collect",
    "dedupe",
    "dispatch",
    "generate",
    "generate_queries",
    "graph",
    "plan_batches",
    "plan_scoring",
    "scenario_block",
    "scenario_infos",
    "score",
    "select",
]


# ---- the whole taxonomy -----------------------------------------------------------------------


def scenario_infos(taxonomy: Taxonomy, ids: list[str] | None = None) -> list[ScenarioInfo]:
    """The scenarios to generate for, in taxonomy order; unknown ids are all named in one error."""
    known = taxonomy.scenarios
    unknown = [i for i in ids or [] if i not in known]
    if unknown:
        raise ValueError(f"unknown scenario id(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    wanted = set(ids) if ids is not None else set(known)
    infos = []
    for position, scenario in enumerate(known.values()):
        if scenario.id in wanted:
            category = taxonomy.category_by_id[scenario.category]
            infos.append(
                ScenarioInfo(
                    id=scenario.id,
                    name=scenario.name,
                    definition=scenario.definition,
                    category=category.id,
                    category_name=category.name,
                    category_definition=category.definition,
                    position=position,
                )
            )
    return infos


def dispatch(state: GenerationState) -> list[Send] | str:
    data = state.get("taxonomy")
    taxonomy = Taxonomy.model_validate(data) if data else default_taxonomy()
    sends = [
        Send("scenario", {"scenario": info}) for info in scenario_infos(taxonomy, state.get("scenario_ids"))
    ]
    return sends or "collect"


def _rank_of(query: dict[str, Any]) -> int:
    return int(query["id"].rsplit("-", 1)[1])


def _sum_counts(entries: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for entry in entries:
        for label, counts in entry.items():
            slot = total.setdefault(label, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                slot[key] += value
    return total


def collect(state: GenerationState, runtime: GenerationRuntime) -> dict[str, Any]:
    """Sort the fan-in (scenario subgraphs finish in any order) and total the report."""
    ctx = _ctx(runtime)
    reports = sorted(state.get("reports", []), key=lambda r: r["position"])
    position = {r["scenario"]: r["position"] for r in reports}
    result = sorted(state.get("queries", []), key=lambda q: (position[q["scenario"]], _rank_of(q)))
    report = {
        "settings": {
            "per_scenario": ctx.per_scenario,
            "candidates": ctx.candidates,
            "batch_size": ctx.batch_size,
            "score_batch_size": ctx.score_batch_size,
            "weights": ctx.weights,
            "max_retries": ctx.max_retries,
            "near_duplicate_threshold": ctx.near_duplicate_threshold,
            "embedder": ctx.embedder.embedder.name if ctx.embedder.embedder is not None else None,
            "duplicate_threshold": ctx.duplicate_threshold if ctx.embedder.available else None,
            "matching": ctx.embedder.describe(),  # "lexical matching only: <why>" without a model
            "min_on_topic": ctx.min_on_topic,
            "seed": ctx.seed,
            "generators": ctx.generator_labels,
            "scorers": ctx.scorer_labels,
        },
        "scenarios": {r["scenario"]: {k: v for k, v in r.items() if k != "position"} for r in reports},
        "totals": {
            "scenarios": len(reports),
            "candidates": sum(r["candidates"] for r in reports),
            "duplicates_removed": {
                kind: sum(r["duplicates_removed"][kind] for r in reports)
                for kind in ("exact", "near", "semantic")
                if kind != "semantic" or ctx.embedder.available
            },
            "scored": sum(r["scored"] for r in reports),
            "kept": sum(r["kept"] for r in reports),
            "calls": state.get("calls", 0),
            "generators": _sum_counts([r["generators"] for r in reports]),
            "scorers": _sum_counts([r["scorers"] for r in reports]),
        },
    }
    emit(
        {
            "event": "generation_done",
            "kept": len(result),
            "calls": state.get("calls", 0),
            "matching": ctx.embedder.describe(),
        }
    )
    return {"result": result, "report": report}


def build_generation_graph() -> StateGraph:
    builder = StateGraph(GenerationState, context_schema=GenerationSettings)
    builder.add_node("scenario", build_scenario_graph().compile(name="scenario"))
    builder.add_node("collect", collect)
    builder.add_conditional_edges(START, dispatch, ["scenario", "collect"])
    builder.add_edge("scenario", "collect")
    builder.add_edge("collect", END)
    return builder


graph = build_generation_graph().compile(name="generation")


# ---- Python API -------------------------------------------------------------------------------


@dataclass
class GenerationOutcome:
    queries: list[GeneratedQuery]  # taxonomy scenario order, then rank
    report: dict[str, Any]
    calls: int
    tokens: dict[str, int] = field(default_factory=dict)


async def generate_queries(
    taxonomy: Taxonomy,
    generators: list[ModelConfig],
    scorers: list[ModelConfig],
    *,
    per_scenario: int,
    candidates: int,
    batch_size: int = 10,
    weights: dict[str, float] | None = None,
    seed: int = 0,
    retry: RetryPolicy | None = None,
    models: dict[str, BaseChatModel] | None = None,
    scenarios: list[str] | None = None,
    concurrency: int = 8,
    on_event: EventHandler | None = None,
    config: RunnableConfig | None = None,
    score_batch_size: int = 10,
    max_retries: int = 2,
    near_duplicate_threshold: float = 0.8,
    embedder: str = NONE,
    duplicate_threshold: float = DEFAULT_SEMANTIC_THRESHOLD,
    min_on_topic: float = 0.25,
    reasks: int = 1,
    agents_dir: Any = None,
    prompts_dir: Any = None,
) -> GenerationOutcome:
    """Generate, score and select `per_scenario` queries for every (or each listed) scenario.

    `models` maps a spec to a ready model (e.g. with the SQLite cache attached); other specs are built
    from their ModelConfig. Bad settings raise ValueError before any model call. `embedder` (a spec,
    see safebench.embeddings) adds the semantic duplicate pass; this API leaves it off unless asked
    (`safebench generate` and GenerationSettings default to the bundled model).
    """
    scenario_infos(taxonomy, scenarios)  # unknown ids fail before any model is built
    ctx = GenerationContext(
        generators=build_agents("generator", generators, models=models, agents_dir=agents_dir),
        scorers=build_agents("scorer", scorers, models=models, agents_dir=agents_dir),
        per_scenario=per_scenario,
        candidates=candidates,
        batch_size=batch_size,
        score_batch_size=score_batch_size,
        weights=resolve_weights(weights),
        max_retries=max_retries,
        near_duplicate_threshold=near_duplicate_threshold,
        embedder=resolve_embedder(embedder),
        duplicate_threshold=duplicate_threshold,
        min_on_topic=min_on_topic,
        reasks=reasks,
        seed=seed,
        concurrency=concurrency,
        retry=retry or RetryPolicy(),
        prompts_dir=prompts_dir,
    )
    extra = dict(config or {})
    run_config: RunnableConfig = {
        **extra,  # type: ignore[typeddict-item]
        "run_name": extra.get("run_name", "generation"),
        "tags": ["safebench", "generation", *extra.get("tags", [])],
        "metadata": {"seed": seed, "per_scenario": per_scenario, **extra.get("metadata", {})},
        "max_concurrency": concurrency,
    }
    payload: GenerationState = {"taxonomy": taxonomy.model_dump(mode="json"), "scenario_ids": scenarios}
    state = await run_streaming(graph, payload, context=ctx, config=run_config, on_event=on_event)
    return GenerationOutcome(
        queries=[GeneratedQuery.model_validate(q) for q in state.get("result", [])],
        report=state.get("report", {}),
        calls=state.get("calls", 0),
        tokens=state.get("tokens", {"prompt": 0, "completion": 0}),
    )
