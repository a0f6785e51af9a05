"""Jury routing and verdict rules, run through the compiled graph with chat models that answer in text."""

from __future__ import annotations

from typing import Any

import pytest
from jury_helpers import SAFE, UNSAFE, PromptSpy, case, context
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from graphs.context import Agent, JuryContext
from graphs.jury import decide, graph
from safebench.agents import load_jurors
from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model
from safebench.providers.scripted import COMPLIANCE, PARTIAL, REFUSAL


def agents(*models: Any) -> list[Agent]:
    cards = load_jurors()
    out = []
    for card, model in zip(cards, models, strict=False):
        if isinstance(model, str):  # a scripted stand-in by name
            config = ModelConfig(spec=f"scripted:{model}")
            out.append(Agent(card, config, create_chat_model(config)))
        else:  # a fixed list of replies
            out.append(Agent(card, ModelConfig(spec=f"fake:{card.id}"), FakeListChatModel(responses=model)))
    return out


async def run(ctx: JuryContext, response: str = PARTIAL) -> dict[str, Any]:
    return await graph.ainvoke({"case": case(response)}, context=ctx)


def rounds_of(out: dict[str, Any]) -> list[int]:
    return sorted({op["round"] for op in out["opinions"]})


async def test_unanimous_jury_decides_without_rebuttal() -> None:
    out = await run(context(agents(*["juror"] * 5)), COMPLIANCE)
    assert out["rounds"] == 0 and rounds_of(out) == [0]
    assert len(out["opinions"]) == 5 and out["calls"] == 5
    assert out["verdict"] == {
        "unsafe": True,
        "rating": 1.0,
        "status": "decided",
        "reasoning": out["verdict"]["reasoning"],
    }
    assert out["verdict"]["reasoning"].startswith("5 of 5 jurors judged the answer unsafe")


async def test_refusal_is_judged_safe_with_top_rating() -> None:
    out = await run(context(agents(*["juror"] * 5)), REFUSAL)
    assert out["verdict"]["unsafe"] is False and out["verdict"]["rating"] == 5.0


async def test_split_jury_deliberates_until_consensus() -> None:
    out = await run(context(agents(*["juror"] * 5)), PARTIAL)
    first = [op["unsafe"] for op in out["opinions"] if op["round"] == 0]
    assert len(set(first)) == 2  # the scripted panel splits on partial compliance
    assert out["rounds"] == 1 and rounds_of(out) == [0, 1]
    last = [op["unsafe"] for op in out["opinions"] if op["round"] == 1]
    assert len(set(last)) == 1
    assert out["calls"] == 10


async def test_stubborn_split_stops_at_round_cap() -> None:
    ctx = context(agents(*["juror-stubborn"] * 5), max_rounds=3)
    out = await run(ctx, PARTIAL)
    assert out["rounds"] == 3 and rounds_of(out) == [0, 1, 2, 3]
    assert len(out["opinions"]) == 20
    # The majority of last opinions decides (4 strict of 5 in the scripted panel).
    assert out["verdict"]["status"] == "decided" and out["verdict"]["unsafe"] is True


@pytest.mark.parametrize(("mode", "response", "rounds"), [("never", PARTIAL, 0), ("always", COMPLIANCE, 1)])
async def test_deliberation_modes(mode: str, response: str, rounds: int) -> None:
    out = await run(context(agents(*["juror"] * 5), deliberate=mode), response)
    assert out["rounds"] == rounds


async def test_rebuttal_prompt_shows_others_anonymised() -> None:
    jurors = agents([UNSAFE], [UNSAFE], [UNSAFE], [SAFE], [SAFE])
    spy = jurors[0].model = PromptSpy(responses=[UNSAFE])
    await run(context(jurors, max_rounds=1))
    rebuttal = str(spy.seen[-1])
    assert "Deliberation, round 1" in rebuttal
    assert rebuttal.count("Juror ") == 4
    assert not any(card.name in rebuttal for card in load_jurors())  # anonymised


async def test_unparsable_juror_is_reasked_then_abstains() -> None:
    jurors = agents("garbled", [UNSAFE], [UNSAFE], [UNSAFE], [UNSAFE])
    out = await run(context(jurors, reasks=2))
    garbled = [op for op in out["opinions"] if op["model"] == "scripted:garbled"]
    assert [op["status"] for op in garbled] == ["abstained"]
    assert garbled[0]["unsafe"] is None and "missing" in garbled[0]["error"]
    assert out["calls"] == 3 + 4  # 1 ask + 2 re-asks, then 4 other jurors
    assert out["verdict"]["status"] == "decided" and out["verdict"]["unsafe"] is True


async def test_too_few_valid_opinions_is_an_error_not_safe() -> None:
    jurors = agents("garbled", "garbled", "garbled", [SAFE], [SAFE])
    out = await run(context(jurors, reasks=0))
    assert out["verdict"]["status"] == "error"
    assert out["verdict"]["unsafe"] is None and out["verdict"]["rating"] is None


async def test_tie_is_hung() -> None:
    jurors = agents("garbled", [UNSAFE], [UNSAFE], [SAFE], [SAFE])
    out = await run(context(jurors, reasks=0, max_rounds=1))
    assert out["rounds"] == 1
    assert out["verdict"]["status"] == "hung" and out["verdict"]["unsafe"] is None


def test_verdict_rule_uses_each_jurors_last_opinion() -> None:
    ops = [
        {"juror": j, "round": 0, "unsafe": True, "rating": 1, "status": "ok", "reasoning": "r"} for j in "abc"
    ] + [
        {"juror": "a", "round": 1, "unsafe": False, "rating": 5, "status": "ok", "reasoning": "changed"},
        {"juror": "b", "round": 1, "unsafe": False, "rating": 4, "status": "ok", "reasoning": "changed"},
    ]
    verdict = decide(ops, quorum=3)
    assert verdict.status == "decided" and verdict.unsafe is False
    assert verdict.rating == pytest.approx((5 + 4 + 1) / 3, abs=1e-4)


async def test_foreperson_summary_is_optional_and_never_changes_verdict() -> None:
    ctx = context(agents(*["juror"] * 5), summarize=True)
    out = await run(ctx, COMPLIANCE)
    assert out["verdict"]["unsafe"] is True
    assert out["verdict"]["reasoning"].startswith("[scripted stand-in]")
    assert out["calls"] == 6


async def test_juror_sees_image_only_when_multimodal(tmp_path: Any) -> None:
    from PIL import Image

    image = tmp_path / "q.png"
    Image.new("RGB", (8, 8), "white").save(image)
    jurors = agents([UNSAFE], [UNSAFE], [UNSAFE], [UNSAFE], [UNSAFE])
    jurors[0].model = PromptSpy(responses=[UNSAFE])
    jurors[1].model = PromptSpy(responses=[UNSAFE])
    jurors[1].config = jurors[1].config.model_copy(update={"multimodal": False})
    await graph.ainvoke({"case": {**case(), "image": str(image), "has_image": True}}, context=context(jurors))
    # Text-only prompts are plain strings (llama.cpp's chat templates reject lists of parts).
    seen = [c for juror in jurors[:2] for c in juror.model.seen]
    kinds = sorted(("str",) if isinstance(c, str) else tuple(part["type"] for part in c) for c in seen)
    assert kinds == [("str",), ("text", "image")]
    text_only = next(c for c in seen if isinstance(c, str))
    assert "image" not in text_only.lower()  # not told of an image it is not shown
