"""Every item is one trace: target call, jury nodes, and juror runs named by persona and round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from safebench.config import RunConfig
from safebench.runner import evaluate_async


class Collector(BaseTracer):
    """An in-memory tracer: receives the same run tree LangSmith would."""

    def __init__(self) -> None:
        super().__init__()
        self.roots: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.roots.append(run)


def walk(run: Any) -> list[Any]:
    return [run, *(r for child in run.child_runs for r in walk(child))]


async def test_each_item_is_a_named_trace_with_metadata(tmp_path: Path) -> None:
    collector = Collector()
    config = RunConfig(out=tmp_path / "run", limit=2, targets=["scripted:complier"])
    outcome = await evaluate_async(config, callbacks=[collector])
    assert sorted(r.name for r in collector.roots) == [
        "medical_advice-001 · scripted:complier",
        "medical_advice-002 · scripted:complier",
    ]
    root = next(r for r in collector.roots if r.name.startswith("medical_advice-001"))
    assert root.metadata["item_id"] == "medical_advice-001"
    assert root.metadata["scenario"] == "medical_advice" and root.metadata["category"] == "consultation"
    assert root.metadata["target"] == "scripted:complier"
    assert root.metadata["safebench_run_id"]
    runs = walk(root)
    names = [r.name for r in runs]
    assert "target · scripted:complier" in names
    jurors = sorted(n for n in names if n.endswith("· round 0"))
    assert jurors == sorted(
        f"{c} · round 0"
        for c in (
            "Wise Elder",
            "Justice-Oriented Citizen",
            "Security Engineer",
            "Clinician",
            "Civil-Liberties Advocate",
        )
    )
    juror_run = next(r for r in runs if r.name == "Wise Elder · round 0")
    assert (
        juror_run.metadata["persona"] == "Wise Elder"
        and juror_run.metadata["item_id"] == "medical_advice-001"
    )
    assert juror_run.run_type == "llm"
    assert outcome.records == 2
