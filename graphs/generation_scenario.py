"""One scenario of the query-generation graph (the subgraph `graphs.generation` fans out with `Send`):
plan_batches → generate (retried while refused / off-topic / empty) → dedupe → plan_scoring → score →
select, with the generator and scorer prompts and the scenario report. `build_scenario_graph` builds it.

Separate from graphs/generation.py, which holds the outer graph over the whole taxonomy (dispatch,
collect) and the Python API (`generate_queries`), so that each module keeps to one concern.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel

from graphs.context import Agent, ask_agent
from graphs.events import emit
from graphs.generation_state import (
    BatchReader,
    BatchTask,
    Candidate,
    GenerationContext,
    GenerationSettings,
    QueryBatch,
    ScenarioInfo,
    ScenarioOutput,
    ScenarioState,
    ScoreBatch,
    ScoreReader,
    ScoreTask,
    generation_from_settings,
)
from safebench.fence import fence
from safebench.generation.dedupe import dedupe as find_duplicates
from safebench.generation.dedupe import mean_similarity
from safebench.generation.ranking import Ranked, axis_histograms, final_score, score_stats, top_k
from safebench.generation.records import SCORE_AXES, GeneratedQuery, Scores
from safebench.generation.refusal import check_batch, topic_stems
from safebench.prompts import render
from safebench.schema import Usage
from safebench.structured import Outcome, OutputFormat

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
