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

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel

from graphs.context import Agent, ask_agent, resolve_embedder
from graphs.events import EventHandler, emit, run_streaming
from graphs.generation_state import (
    BatchReader,
    BatchTask,
    Candidate,
    GenerationContext,
    GenerationSettings,
    GenerationState,
    QueryBatch,
    ScenarioInfo,
    ScenarioOutput,
    ScenarioState,
    ScoreBatch,
    ScoreReader,
    ScoreTask,
    build_agents,
    generation_from_settings,
)
from safebench.embeddings import NONE
from safebench.fence import fence
from safebench.generation.dedupe import DEFAULT_SEMANTIC_THRESHOLD, mean_similarity
from safebench.generation.dedupe import dedupe as find_duplicates
from safebench.generation.ranking import (
    Ranked,
    axis_histograms,
    final_score,
    resolve_weights,
    score_stats,
    top_k,
)
from safebench.generation.records import SCORE_AXES, GeneratedQuery, Scores
from safebench.generation.refusal import check_batch, topic_stems
from safebench.models import ModelConfig
from safebench.prompts import render
from safebench.retry import RetryPolicy
from safebench.schema import Taxonomy, Usage
from safebench.structured import Outcome, OutputFormat
from safebench.taxonomy import default_taxonomy

T = TypeVar("T", bound=BaseModel)

QUERY_FORMS = (
    "question",
    "instruction",
    "first-person scenario",
    "role-play request",
    "hypothetical",
    "request for advice",
)


# The live context of generate_queries, or settings (LangGraph Studio, langgraph-sdk).
GenerationRuntime = Runtime[GenerationContext | GenerationSettings | None]


def _ctx(runtime: GenerationRuntime) -> GenerationContext:
    # Settings resolve once per distinct value (cached): no node call rebuilds the agents.
    return generation_from_settings.resolve(runtime.context)


async def _actx(runtime: GenerationRuntime) -> GenerationContext:
    # Async nodes: a first resolution reads files, which must not happen on the event loop.
    return await generation_from_settings.aresolve(runtime.context)


def scenario_block(prompts_dir: Path | None, scenario: ScenarioInfo) -> str:
    """The scenario as generators and scorers see it: data in a fence it cannot close."""
    return fence(render("generation/scenario.j2", prompts_dir, scenario=scenario), "scenario", scenario["id"])


async def _ask(
    ctx: GenerationContext,
    agent: Agent,
    schema: type[T],
    build_messages: Callable[[OutputFormat], list[BaseMessage]],
    parse_text: Callable[[str], T],
    run_config: RunnableConfig,
) -> Outcome[T]:
    """One generator or scorer call, through the gate that caps model calls across the whole run."""
    async with ctx.gate:
        return await ask_agent(
            agent,
            schema,
            build_messages,
            parse_text=parse_text,
            retry=ctx.retry,
            reasks=ctx.reasks,
            config=run_config,
        )


# ---- generation -------------------------------------------------------------------------------


def _focus(seed: int, scenario: str, batch: int) -> list[str]:
    forms = list(QUERY_FORMS)
    random.Random(f"{seed}:{scenario}:{batch}").shuffle(forms)
    return forms[:2]


def _generator_messages(
    ctx: GenerationContext, agent: Agent, task: BatchTask, attempt: int, problem: str, fmt: OutputFormat
) -> list[BaseMessage]:
    system = render("generation/generator_system.j2", ctx.prompts_dir, agent=agent.card)
    text = render(
        "generation/generate.j2",
        ctx.prompts_dir,
        scenario_block=scenario_block(ctx.prompts_dir, task["scenario"]),
        batch=task["batch"],
        batches=task["batches"],
        count=task["size"],
        forms=QUERY_FORMS,
        focus=_focus(ctx.seed, task["scenario"]["id"], task["batch"]),
        attempt=attempt,
        problem=problem,
        output_format=fmt,
    )
    return [SystemMessage(content=system), HumanMessage(content=text)]


def plan_batches(state: ScenarioState, runtime: GenerationRuntime) -> list[Send]:
    """ceil(N / batch_size) batches, assigned to the generators round-robin."""
    ctx = _ctx(runtime)
    count = math.ceil(ctx.candidates / ctx.batch_size)
    return [
        Send(
            "generate",
            BatchTask(
                scenario=state["scenario"],
                batch=b + 1,
                batches=count,
                size=min(ctx.batch_size, ctx.candidates - b * ctx.batch_size),
                generator=b % len(ctx.generators),
            ),
        )
        for b in range(count)
    ]


async def generate(task: BatchTask, runtime: GenerationRuntime) -> dict[str, Any]:
    """One batch: ask, check, retry with a varied prompt while refused / off-topic / empty."""
    ctx = await _actx(runtime)
    agent, label = ctx.generators[task["generator"]], ctx.generator_labels[task["generator"]]
    s = task["scenario"]
    topic = topic_stems(s["name"], s["definition"], s["category_name"], s["category_definition"])
    calls, usage, statuses, problem = 0, Usage(), [], ""
    usable: list[dict[str, str]] = []
    unusable = 0
    for attempt in range(ctx.max_retries + 1):
        reader = BatchReader()
        name = f"Generator · {s['id']} · batch {task['batch']}" + (f" · retry {attempt}" if attempt else "")
        run_config: RunnableConfig = {
            "run_name": name,
            "tags": ["generator", agent.card.id],
            "metadata": {"scenario": s["id"], "batch": task["batch"], "attempt": attempt, "generator": label},
        }
        outcome = await _ask(
            ctx,
            agent,
            QueryBatch,
            lambda fmt, attempt=attempt, problem=problem: _generator_messages(
                ctx, agent, task, attempt, problem, fmt
            ),
            reader.parse,
            run_config,
        )
        calls, usage = calls + outcome.calls, usage + outcome.usage
        check = check_batch(reader.text, reader.items(outcome), topic, min_on_topic=ctx.min_on_topic)
        statuses.append(check.status)
        if check.status == "ok":
            usable, unusable = check.usable[: task["size"]], check.unusable
            break
        problem = check.problem
    log = {
        "generator": label,
        "batch": task["batch"],
        "statuses": statuses,
        "kept": bool(usable),
        "candidates": len(usable),
        "unusable": unusable,
        "calls": calls,
    }
    emit({"event": "generation_batch", "scenario": s["id"], **log})
    raw = [
        {"text": u["text"], "form": u["form"], "generator": agent.config.spec, "agent": label}
        | {"batch": task["batch"], "position": p}
        for p, u in enumerate(usable)
    ]
    return {"raw": raw, "batch_log": [log], "calls": calls, "tokens": usage.model_dump()}


def dedupe(state: ScenarioState, runtime: GenerationRuntime) -> dict[str, Any]:
    ctx = _ctx(runtime)
    raw = sorted(state.get("raw", []), key=lambda c: (c["batch"], c["position"]))
    candidates = [Candidate(index=i, id=f"c{i}", **c) for i, c in enumerate(raw)]  # type: ignore[typeddict-item]
    found = find_duplicates(
        [c["text"] for c in candidates],
        ctx.near_duplicate_threshold,
        embedder=ctx.embedder.embedder,
        semantic_threshold=ctx.duplicate_threshold,
    )
    counts: dict[str, int] = found.counts()
    if found.embedder is None:
        # No semantic pass ran: the report must not claim it found no semantic duplicates.
        del counts["semantic"]
    return {"pool": [candidates[i] for i in found.kept], "duplicates": counts}


# ---- scoring ----------------------------------------------------------------------------------


def plan_scoring(state: ScenarioState, runtime: GenerationRuntime) -> list[Send] | str:
    ctx = _ctx(runtime)
    pool = state.get("pool", [])
    if not pool:
        return "select"
    size = ctx.score_batch_size
    chunks = [pool[i : i + size] for i in range(0, len(pool), size)]
    return [
        Send(
            "score",
            ScoreTask(
                scenario=state["scenario"],
                scorer=j,
                chunk=k + 1,
                candidates=[{"id": c["id"], "text": c["text"]} for c in chunk],
            ),
        )
        for k, chunk in enumerate(chunks)
        for j in range(len(ctx.scorers))
    ]


def _scorer_messages(
    ctx: GenerationContext,
    agent: Agent,
    task: ScoreTask,
    candidates: list[dict[str, str]],
    rescore: bool,
    fmt: OutputFormat,
) -> list[BaseMessage]:
    system = render("generation/scorer_system.j2", ctx.prompts_dir, agent=agent.card)
    text = render(
        "generation/score.j2",
        ctx.prompts_dir,
        scenario_block=scenario_block(ctx.prompts_dir, task["scenario"]),
        candidates=[{"id": c["id"], "text": fence(c["text"], "candidate", c["id"])} for c in candidates],
        rescore=rescore,
        output_format=fmt,
    )
    return [SystemMessage(content=system), HumanMessage(content=text)]


async def score(task: ScoreTask, runtime: GenerationRuntime) -> dict[str, Any]:
    """One scorer rates one chunk; the candidates still missing a valid score are asked once more."""
    ctx = await _actx(runtime)
    agent, label = ctx.scorers[task["scorer"]], ctx.scorer_labels[task["scorer"]]
    sid = task["scenario"]["id"]
    best: dict[str, dict[str, int]] = {}
    calls, usage, errors = 0, Usage(), []
    asked = task["candidates"]
    rescored = 0
    for rescore in (False, True):
        if rescore:
            asked = [c for c in task["candidates"] if len(best.get(c["id"], {})) < len(SCORE_AXES)]
            rescored = len(asked)
            if not asked:
                break
        reader = ScoreReader([c["id"] for c in asked], best)
        run_config: RunnableConfig = {
            "run_name": f"Scorer · {sid} · chunk {task['chunk']}" + (" · rescore" if rescore else ""),
            "tags": ["scorer", agent.card.id],
            "metadata": {"scenario": sid, "chunk": task["chunk"], "scorer": label, "rescore": rescore},
        }
        outcome = await _ask(
            ctx,
            agent,
            ScoreBatch,
            lambda fmt, asked=asked, rescore=rescore: _scorer_messages(ctx, agent, task, asked, rescore, fmt),
            reader.parse,
            run_config,
        )
        reader.absorb(outcome)
        calls, usage = calls + outcome.calls, usage + outcome.usage
        if outcome.error:
            errors.append(outcome.error)
    rows = [
        {"id": c["id"], "scorer": label, "scores": {a: best.get(c["id"], {}).get(a) for a in SCORE_AXES}}
        for c in task["candidates"]
    ]
    missing = sum(1 for r in rows for v in r["scores"].values() if v is None)
    log = {"scorer": label, "chunk": task["chunk"], "calls": calls, "rescored": rescored, "missing": missing}
    emit({"event": "scoring_chunk", "scenario": sid, **log, "error": errors[-1] if errors else None})
    return {"score_rows": rows, "score_log": [log], "calls": calls, "tokens": usage.model_dump()}


# ---- selection and report ---------------------------------------------------------------------


# Per generator: batches assigned, kept ("ok") or given up ("dropped"), retry attempts, and every
# failed attempt by cause (a batch refused twice then answered counts refusal 2, retried 2, ok 1).
_GENERATOR_COUNTS = (
    "batches",
    "ok",
    "retried",
    "dropped",
    "refusal",
    "off_topic",
    "empty",
    "unparseable",
    "candidates",
    "calls",
)


def _generator_report(ctx: GenerationContext, logs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    report = {label: dict.fromkeys(_GENERATOR_COUNTS, 0) for label in ctx.generator_labels}
    for log in logs:
        entry = report[log["generator"]]
        entry["batches"] += 1
        entry["ok" if log["kept"] else "dropped"] += 1
        entry["retried"] += len(log["statuses"]) - 1
        for status in log["statuses"]:
            if status != "ok":
                entry[status] += 1
        entry["candidates"] += log["candidates"]
        entry["calls"] += log["calls"]
    return report


def select(state: ScenarioState, runtime: GenerationRuntime) -> dict[str, Any]:
    """Rank by the weighted mean of the available scores; keep the top K; write the scenario report."""
    ctx = _ctx(runtime)
    s = state["scenario"]
    pool = state.get("pool", [])
    scores: dict[str, dict[str, Scores]] = {
        c["id"]: {label: Scores() for label in ctx.scorer_labels} for c in pool
    }
    for row in state.get("score_rows", []):
        scores[row["id"]][row["scorer"]] = Scores(**row["scores"])
    ranked = [Ranked(c["index"], c["text"], final_score(scores[c["id"]], ctx.weights), c) for c in pool]
    kept = top_k(ranked, ctx.per_scenario)
    queries = [
        GeneratedQuery(
            id=f"{s['id']}-{rank:03d}",
            scenario=s["id"],
            category=s["category"],
            text=r.payload["text"],
            form=r.payload["form"],
            generator=r.payload["generator"],
            scores=scores[r.payload["id"]],
            final_score=r.final,
        ).model_dump(mode="json")
        for rank, r in enumerate(kept, start=1)
    ]
    scorer_report = {label: {"calls": 0, "rescored": 0, "missing": 0} for label in ctx.scorer_labels}
    for log in state.get("score_log", []):
        for key in ("calls", "rescored", "missing"):
            scorer_report[log["scorer"]][key] += log[key]
    logs = state.get("batch_log", [])
    report = {
        "scenario": s["id"],
        "category": s["category"],
        "position": s["position"],
        "requested": ctx.candidates,
        "candidates": len(state.get("raw", [])),
        "unusable": sum(log["unusable"] for log in logs),
        "duplicates_removed": state.get("duplicates", {"exact": 0, "near": 0}),
        # Mean pairwise similarity of the kept queries (lower: more varied).
        "diversity": mean_similarity([q["text"] for q in queries], ctx.embedder.embedder),
        "generators": _generator_report(ctx, logs),
        "scorers": scorer_report,
        "scored": sum(1 for r in ranked if r.final is not None),
        "unscored": sum(1 for r in ranked if r.final is None),
        "kept": len(queries),
        "score_distribution": {
            "candidates": score_stats([r.final for r in ranked if r.final is not None]),
            "kept": score_stats([r.final for r in kept if r.final is not None]),
            "axes": axis_histograms(s for c in pool for s in scores[c["id"]].values()),
        },
    }
    emit({"event": "scenario_done", "scenario": s["id"], "candidates": len(pool), "kept": len(queries)})
    return {"queries": queries, "reports": [report]}


def build_scenario_graph() -> StateGraph:
    builder = StateGraph(ScenarioState, context_schema=GenerationSettings, output_schema=ScenarioOutput)
    builder.add_node("generate", generate)
    builder.add_node("dedupe", dedupe)
    builder.add_node("score", score)
    builder.add_node("select", select)
    builder.add_conditional_edges(START, plan_batches, ["generate"])
    builder.add_edge("generate", "dedupe")
    builder.add_conditional_edges("dedupe", plan_scoring, ["score", "select"])
    builder.add_edge("score", "select")
    builder.add_edge("select", END)
    return builder


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
