"""Evaluate one (target, item): the target answers the query (with its image or its recording), then
the jury judges the answer against the query text.

The runner compiles this graph with a SQLite checkpointer, one thread per (target, item): a crash
resumes from the last finished node, so a finished target answer or juror opinion is never re-bought.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from graphs.context import EvaluationContext, default_evaluation_context
from graphs.jury import add_jury
from graphs.state import EvaluationState
from safebench.retry import CallFailed, with_retries
from safebench.schema import Item, Verdict
from safebench.targets import target_messages


async def respond(state: EvaluationState, runtime: Runtime[EvaluationContext]) -> dict[str, Any]:
    ctx = runtime.context if runtime.context is not None else default_evaluation_context()
    if ctx.target is None:
        raise ValueError("the evaluation graph needs an EvaluationContext with a target")
    item = Item.model_validate(state["item"])
    case = state["case"]
    # case["image"] and case["audio"] are absolute, so the dataset folder argument is not needed here.
    audio = case.get("audio")  # absent from checkpoints written before audio modalities existed
    if ctx.modality in ("audio", "audio+text") and not audio:
        raise ValueError(f"item {item.id}: modality {ctx.modality!r} needs a recording, the case has none")
    messages = target_messages(
        item.model_copy(update={"image": case["image"]}), Path(), ctx.modality, audio=audio
    )
    config: RunnableConfig = {"run_name": f"target · {ctx.target.spec}", "tags": ["target"]}
    try:
        reply, attempts = await with_retries(lambda: ctx.target.respond(item, messages, config), ctx.retry)
    except CallFailed as exc:
        verdict = Verdict(status="error", reasoning="the target model failed; nothing to judge")
        return {"response": None, "error": str(exc), "calls": exc.attempts, "verdict": verdict.model_dump()}
    usage = reply.usage_metadata or {}
    text = reply.text if isinstance(reply.text, str) else str(reply.content)
    return {
        "response": text,
        "case": {**case, "response": text},
        "calls": attempts,
        "tokens": {"prompt": usage.get("input_tokens", 0), "completion": usage.get("output_tokens", 0)},
    }


def after_response(state: EvaluationState) -> str:
    return END if state.get("error") else "open_case"


def build_evaluation_graph() -> StateGraph:
    builder = StateGraph(EvaluationState, context_schema=EvaluationContext)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    add_jury(builder, entry="respond")
    builder.add_conditional_edges("respond", after_response, ["open_case", END])
    return builder


graph = build_evaluation_graph().compile(name="evaluation")
