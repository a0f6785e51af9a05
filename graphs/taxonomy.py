"""The taxonomy debate graph: K judges propose in parallel → the moderator merges a draft → rebuttal
rounds (judges critique in parallel, the moderator revises) while any judge objects, at most
`max_rounds` → judges vote in parallel → the voted taxonomy.

The moderator is deterministic code (safebench.generation.taxonomy documents its rules); every
judge call goes through `ask_structured` and never raises: a judge that fails to propose is left
out of the merge, a failed critique counts as no objection, a failed ballot casts no vote, and every
failure is in the transcript. The judges still take part in the later phases.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel

from graphs.context import ask_agent
from graphs.events import EventHandler, emit, run_streaming
from graphs.taxonomy_state import (
    JudgeTask,
    TaxonomyContext,
    TaxonomySettings,
    TaxonomyState,
    taxonomy_context,
    taxonomy_from_settings,
)
from safebench.embeddings import DEFAULT_EMBEDDER
from safebench.fence import neutralise_control_tokens
from safebench.generation.taxonomy import (
    SYNONYM_THRESHOLD,
    Ballot,
    Critique,
    Proposal,
    apply_edits,
    draft_scenarios,
    draft_view,
    finalize,
    merge_with_log,
    tally_votes,
)
from safebench.models import ModelConfig
from safebench.prompts import render
from safebench.retry import RetryPolicy
from safebench.schema import Taxonomy
from safebench.structured import OutputFormat

# The live context of debate_taxonomy, or settings (LangGraph Studio, langgraph-sdk).
TaxonomyRuntime = Runtime[TaxonomyContext | TaxonomySettings | None]


def _ctx(runtime: TaxonomyRuntime) -> TaxonomyContext:
    # Settings resolve once per distinct value (cached): no node call rebuilds the judges.
    return taxonomy_from_settings.resolve(runtime.context)


async def _actx(runtime: TaxonomyRuntime) -> TaxonomyContext:
    # Async nodes: a first resolution reads files, which must not happen on the event loop.
    return await taxonomy_from_settings.aresolve(runtime.context)


def _fenced(value: Any) -> str:
    """JSON for a prompt; "</" is escaped (valid JSON) so the text cannot close the tag fencing it."""
    return neutralise_control_tokens(json.dumps(value, indent=1, ensure_ascii=False).replace("</", "<\\/"))


def _base_view(base: dict[str, Any] | None) -> dict[str, Any] | None:
    if not base:
        return None
    return {
        "categories": [
            {
                "id": c["id"],
                "name": c["name"],
                "definition": c["definition"],
                "scenarios": [
                    {"id": s["id"], "name": s["name"], "definition": s["definition"]} for s in c["scenarios"]
                ],
            }
            for c in base["categories"]
        ]
    }


def _task(state: TaxonomyState, judge: int, round_: int, last_changes: list[str]) -> JudgeTask:
    return {
        "judge": judge,
        "round": round_,
        "max_rounds": state.get("max_rounds", 3),
        "base": state.get("base"),
        "draft": state.get("draft"),
        "last_changes": last_changes,
    }


def open_debate(state: TaxonomyState, runtime: TaxonomyRuntime) -> list[Send]:
    return [Send("propose", _task(state, i, 0, [])) for i in range(len(_ctx(runtime).judges))]


async def _ask(
    ctx: TaxonomyContext, task: JudgeTask, phase: str, schema: type[BaseModel], **variables: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One judge's structured reply: (transcript entry, state update for calls and tokens)."""
    index = task["judge"]
    judge, judge_id = ctx.judges[index], ctx.judge_ids[index]

    def messages(fmt: OutputFormat) -> list[BaseMessage]:
        system = render(
            "taxonomy/judge_system.j2",
            ctx.prompts_dir,
            judge=judge.card,
            index=index + 1,
            total=len(ctx.judges),
        )
        text = render(f"taxonomy/{phase}.j2", ctx.prompts_dir, output_format=fmt, **variables)
        return [SystemMessage(content=system), HumanMessage(content=text)]

    label = f"round {task['round']}" if phase == "critique" else phase
    run_config: RunnableConfig = {
        "run_name": f"{judge.card.name} · {label}",
        "tags": ["taxonomy", "taxonomist", judge_id],
        "metadata": {"judge": judge_id, "model": judge.config.spec, "phase": phase, "round": task["round"]},
    }
    outcome = await ask_agent(judge, schema, messages, retry=ctx.retry, reasks=ctx.reasks, config=run_config)
    entry: dict[str, Any] = {
        "phase": phase,
        "judge": judge_id,
        "index": index,
        "model": judge.config.spec,
        "round": task["round"],
        "status": "ok" if outcome.value is not None else "failed",
        "error": outcome.error if outcome.value is None else None,
    }
    update = {"calls": outcome.calls, "tokens": outcome.usage.model_dump()}
    return {**entry, "reply": outcome.value.model_dump() if outcome.value else None}, update


async def propose(task: JudgeTask, runtime: TaxonomyRuntime) -> dict[str, Any]:
    ctx = await _actx(runtime)
    base = _base_view(task["base"])
    entry, update = await _ask(ctx, task, "propose", Proposal, base=_fenced(base) if base else None)
    emit({"event": "proposal", "judge": entry["judge"], "status": entry["status"]})
    return {"proposals": [entry], **update}


def merge(state: TaxonomyState, runtime: TaxonomyRuntime) -> dict[str, Any]:
    """The moderator's draft from the proposals that parsed, in panel order."""
    ctx = _ctx(runtime)
    ok = sorted((p for p in state.get("proposals", []) if p["status"] == "ok"), key=lambda p: p["index"])
    draft, joins = merge_with_log(
        [(p["judge"], p["reply"]) for p in ok],
        state.get("base"),
        ctx.threshold,
        embedder=ctx.embedder.embedder,
        synonym_threshold=ctx.synonym_threshold,
    )
    matching = {
        "embedder": ctx.embedder.embedder.name if ctx.embedder.embedder is not None else None,
        "note": ctx.embedder.describe(),  # says "lexical matching only" and why, when there is no model
        "threshold": ctx.threshold,
        "synonym_threshold": ctx.synonym_threshold if ctx.embedder.available else None,
        "joins": joins,
    }
    emit(
        {
            "event": "draft",
            "categories": len(draft["categories"]),
            "scenarios": len(draft_scenarios(draft)),
            "matching": matching["note"],
            "semantic_joins": sum(1 for j in joins if j["method"] == "semantic"),
        }
    )
    return {"draft": draft, "merged": draft_view(draft), "matching": matching, "round": 0}


async def critique(task: JudgeTask, runtime: TaxonomyRuntime) -> dict[str, Any]:
    ctx = await _actx(runtime)
    assert task["draft"] is not None
    entry, update = await _ask(
        ctx,
        task,
        "critique",
        Critique,
        draft=_fenced(draft_view(task["draft"])),
        round=task["round"],
        max_rounds=task["max_rounds"],
        last_changes=task["last_changes"],
    )
    edits = entry["reply"]["edits"] if entry["reply"] else []
    emit({"event": "critique", "judge": entry["judge"], "round": task["round"], "edits": len(edits)})
    return {"critiques": [entry], **update}


def revise(state: TaxonomyState) -> dict[str, Any]:
    """The moderator applies this round's edits (a failed critique counts as no objection)."""
    round_ = state.get("round", 0) + 1
    this_round = sorted(
        (c for c in state.get("critiques", []) if c["round"] == round_), key=lambda c: c["index"]
    )
    edits = [(c["judge"], c["reply"]["edits"]) for c in this_round if c["status"] == "ok"]
    draft, log = apply_edits(state["draft"], edits, round_)
    log["objections"] = [judge for judge, judge_edits in edits if judge_edits]
    log["failed"] = [c["judge"] for c in this_round if c["status"] != "ok"]
    emit(
        {
            "event": "revision",
            "round": round_,
            "applied": len(log["applied"]),
            "rejected": len(log["rejected"]),
        }
    )
    return {"draft": draft, "round": round_, "revisions": [log]}


def _changes(log: dict[str, Any]) -> list[str]:
    """The last revision in words, for the judges' next rebuttal round."""
    lines = []
    for status, entries in (("applied", log["applied"]), ("rejected", log["rejected"])):
        for e in entries:
            what = f"{e['op']} {e['kind']} {e['target'] or e.get('name', '')}".strip()
            extra = f" -> {e['name']}" if e["op"] in ("rename", "merge") and e.get("name") else ""
            why = f" ({e['why']})" if status == "rejected" else ""
            lines.append(f"{status}: {what}{extra}, asked by {', '.join(e['judges'])}{why}")
    return lines


def next_step(state: TaxonomyState, runtime: TaxonomyRuntime) -> list[Send] | str:
    """Objections → another critique round until the cap; none (or the cap) → vote."""
    ctx = _ctx(runtime)
    round_, cap = state.get("round", 0), state.get("max_rounds", 3)
    if not draft_scenarios(state["draft"]):
        return "finalize"
    revisions = [r for r in state.get("revisions", []) if r["round"] == round_]
    objections = round_ == 0 or any(r["objections"] for r in revisions)
    if objections and round_ < cap:
        changes = _changes(revisions[0]) if revisions else []
        return [Send("critique", _task(state, i, round_ + 1, changes)) for i in range(len(ctx.judges))]
    return [Send("vote", _task(state, i, 0, [])) for i in range(len(ctx.judges))]


async def vote(task: JudgeTask, runtime: TaxonomyRuntime) -> dict[str, Any]:
    ctx = await _actx(runtime)
    assert task["draft"] is not None
    ballot = [
        {"id": s["id"], "name": s["name"], "category": c["name"], "definition": s["definition"]}
        for c in task["draft"]["categories"]
        for s in c["scenarios"]
    ]
    # A per-judge order (seeded, so reproducible): no judge always sees the same scenarios first.
    random.Random(f"{ctx.seed}:vote:{task['judge']}").shuffle(ballot)
    entry, update = await _ask(ctx, task, "vote", Ballot, ballot=_fenced(ballot))
    emit({"event": "vote", "judge": entry["judge"], "status": entry["status"]})
    return {"votes": [entry], **update}


def finish(state: TaxonomyState, runtime: TaxonomyRuntime) -> dict[str, Any]:
    ctx = _ctx(runtime)
    ballots = sorted((v for v in state.get("votes", []) if v["status"] == "ok"), key=lambda v: v["index"])
    draft = state["draft"]
    tally = tally_votes(draft, [(v["judge"], v["reply"]["votes"]) for v in ballots])
    labels = {judge_id: ctx.label(i) for i, judge_id in enumerate(ctx.judge_ids)}
    base = state.get("base") or {}
    taxonomy = finalize(
        draft, tally, labels, name=base.get("name", "safebench-debate"), version=str(base.get("version", "1"))
    )
    if taxonomy is None:
        error = (
            "no scenario survived the vote"
            if draft_scenarios(draft)
            else "no judge proposed a usable taxonomy"
        )
        emit({"event": "taxonomy", "error": error})
        return {"taxonomy": None, "error": error}
    emit({"event": "taxonomy", "categories": len(taxonomy.categories), "scenarios": len(taxonomy.scenarios)})
    return {"taxonomy": taxonomy.model_dump(mode="json"), "error": None}


def build_taxonomy_graph() -> StateGraph:
    builder = StateGraph(TaxonomyState, context_schema=TaxonomySettings)
    builder.add_node("propose", propose)
    builder.add_node("merge", merge)
    builder.add_node("critique", critique)
    builder.add_node("revise", revise)
    builder.add_node("vote", vote)
    builder.add_node("finalize", finish)
    builder.add_conditional_edges(START, open_debate, ["propose"])
    builder.add_edge("propose", "merge")
    builder.add_conditional_edges("merge", next_step, ["critique", "vote", "finalize"])
    builder.add_edge("critique", "revise")
    builder.add_conditional_edges("revise", next_step, ["critique", "vote", "finalize"])
    builder.add_edge("vote", "finalize")
    builder.add_edge("finalize", END)
    return builder


graph = build_taxonomy_graph().compile(name="taxonomy")


# ---------------------------------------------------------------------------------------------- Python API


@dataclass
class DebateOutcome:
    taxonomy: Taxonomy
    rounds: int  # critique rounds run
    transcript: list[dict[str, Any]]  # proposals, the merge, critiques and revisions per round, votes
    calls: int  # model calls, re-asks and retries included
    tokens: dict[str, int]
    matching: str = (
        ""  # how proposals were matched: "semantic matching with ..." or "lexical matching only: ..."
    )


class DebateError(RuntimeError):
    """The debate produced no taxonomy (every judge failed, or the vote kept nothing)."""

    def __init__(self, message: str, transcript: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.transcript = transcript


def build_transcript(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The debate in order; parallel entries sorted by panel index, so it is reproducible."""

    def by_judge(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(entries, key=lambda e: e["index"])

    transcript = by_judge(state.get("proposals", []))
    if "merged" in state:
        ok = [p["judge"] for p in transcript if p["status"] == "ok"]
        transcript.append(
            {
                "phase": "merge",
                "from": (["base"] if state.get("base") else []) + ok,
                "matching": state.get("matching"),
                "draft": state["merged"],
            }
        )
    for log in sorted(state.get("revisions", []), key=lambda r: r["round"]):
        transcript += by_judge([c for c in state.get("critiques", []) if c["round"] == log["round"]])
        transcript.append({"phase": "revise", **log})
    transcript += by_judge(state.get("votes", []))
    return transcript


def _run_config(config: RunnableConfig | None) -> RunnableConfig:
    run_config: RunnableConfig = {"run_name": "Taxonomy debate", "tags": ["safebench", "taxonomy"]}
    if config:
        run_config = {**run_config, **config, "tags": [*run_config["tags"], *(config.get("tags") or [])]}
    return run_config


async def debate_taxonomy(
    judges: list[ModelConfig],
    *,
    base: Taxonomy | None = None,
    max_rounds: int = 3,
    seed: int = 0,
    retry: RetryPolicy | None = None,
    models: dict[str, BaseChatModel] | None = None,
    on_event: EventHandler | None = None,
    config: RunnableConfig | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    synonym_threshold: float = SYNONYM_THRESHOLD,
) -> DebateOutcome:
    """Run the debate; raises DebateError (with the transcript) when it yields no taxonomy. `embedder`
    (a spec, see safebench.embeddings) joins synonyms by meaning; lexical only when it is unavailable."""
    if not judges:
        raise ValueError("the taxonomy debate needs at least one judge")
    if max_rounds < 0:
        raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
    if not 0 < synonym_threshold <= 1:
        raise ValueError(f"synonym_threshold must be in (0, 1], got {synonym_threshold}")
    ctx = taxonomy_context(
        judges, models=models, seed=seed, retry=retry, embedder=embedder, synonym_threshold=synonym_threshold
    )
    payload: TaxonomyState = {
        "base": base.model_dump(mode="json") if base else None,
        "max_rounds": max_rounds,
    }
    state = await run_streaming(graph, payload, context=ctx, config=_run_config(config), on_event=on_event)
    transcript = build_transcript(state)
    if not state.get("taxonomy"):
        raise DebateError(f"the taxonomy debate produced no taxonomy: {state.get('error')}", transcript)
    return DebateOutcome(
        taxonomy=Taxonomy.model_validate(state["taxonomy"]),
        rounds=state.get("round", 0),
        transcript=transcript,
        calls=state.get("calls", 0),
        tokens=dict(state.get("tokens") or {"prompt": 0, "completion": 0}),
        matching=ctx.embedder.describe(),
    )
