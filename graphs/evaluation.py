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

from graphs.context import EvaluationContext, EvaluationSettings, evaluation_from_settings
from graphs.jury import add_jury
from graphs.state import EvaluationState
from safebench.retry import CallFailed, with_retries
from safebench.schema import Item, Verdict
from safebench.structured import message_text
from safebench.targets import target_messages


async def respond(
    state: EvaluationState, runtime: Runtime[EvaluationContext | EvaluationSettings | None]
) -> dict[str, Any]:
    # The runner's live context as is; settings (Studio, langgraph-sdk) through the cached resolver.
    ctx = await evaluation_from_settings.aresolve(runtime.context)
    if ctx.target is None:
        raise ValueError("the evaluation graph needs an EvaluationContext with a target")
    item = Item.model_validate(state["item"])
    case = state["case"]
    # case["image"] and case["audio"] are absolute, so the dataset folder argument is not needed here.
    audio = case.get("audio")  # absent from checkpoints written before audio modalities existed
    if ctx.modality in ("audio", "audio+text") and not audio:
        raise ValueError(f"item {item.id}: modality {ctx.modality!r} needs a recording, the case has none")
    messages = target_messages(
        item.model_copy(update={"image": case["image"]}),
        Path(),
        ctx.modality,
        audio=audio,
        template=ctx.target.config.prompt_template,
        names={"scenario": case["scenario_name"], "category": case["category_name"]},
    )
    sent = {"prompt": message_text(messages[-1])}
    config: RunnableConfig = {"run_name": f"target · {ctx.target.label}", "tags": ["target"]}
    try:
        reply, attempts = await with_retries(lambda: ctx.target.respond(item, messages, config), ctx.retry)
    except CallFailed as exc:
        verdict = Verdict(status="error", reasoning="the target model failed; nothing to judge")
        error = str(exc)
        media = _media(messages)
        if media:
            # Text-only servers often fail such requests with an opaque 500: say what was different.
            error += (
                f" (the request carried {media}; if the model or server is text-only, use --modality text)"
            )
        return {
            **sent,
            "response": None,
            "error": error,
            "calls": exc.attempts,
            "verdict": verdict.model_dump(),
        }
    usage = reply.usage_metadata or {}
    text = message_text(reply)
    finish = reply.response_metadata.get("finish_reason")
    answered = {
        **sent,
        "response": text,
        "finish_reason": finish,
        "truncated": finish == "length",
        "calls": attempts,
        "tokens": {"prompt": usage.get("input_tokens", 0), "completion": usage.get("output_tokens", 0)},
    }
    unjudged = _not_an_answer(text, finish)
    if unjudged is not None:
        return {**answered, "verdict": unjudged.model_dump(), "error": unjudged.reasoning}
    return {**answered, "case": {**case, "response": text}}


def _media(messages: list[Any]) -> str | None:
    kinds = {
        p.get("type")
        for m in messages
        if isinstance(m.content, list)
        for p in m.content
        if isinstance(p, dict)
    }
    if "image" in kinds:
        return "an image"
    return "a recording" if "audio" in kinds else None


def _not_an_answer(text: str, finish: str | None) -> Verdict | None:
    """A provider block or an empty reply is not an answer: never judged, never counted as safe."""
    if finish == "content_filter":
        return Verdict(
            status="blocked", reasoning="the provider withheld the answer (finish_reason content_filter)"
        )
    if not text.strip():
        # E.g. a reasoning model that spent its whole token budget thinking.
        return Verdict(
            status="error", reasoning=f"the target returned an empty answer (finish_reason {finish})"
        )
    return None


def after_response(state: EvaluationState) -> str:
    return END if state.get("verdict") else "open_case"


def build_evaluation_graph() -> StateGraph:
    builder = StateGraph(EvaluationState, context_schema=EvaluationSettings)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    add_jury(builder, entry="respond")
    builder.add_conditional_edges("respond", after_response, ["open_case", END])
    return builder


graph = build_evaluation_graph().compile(name="evaluation")
