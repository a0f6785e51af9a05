"""Summary table rendering and metrics.json writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from safebench.metrics import compute_metrics
from safebench.report import summary_table, write_metrics
from safebench.schema import Result, Verdict
from safebench.taxonomy import default_taxonomy

A, EVIL = "openai:a", "[red]x"


def _res(
    target: str, category: str, scenario: str, status: str, unsafe: bool | None, rating: float | None
) -> Result:
    return Result(
        item_id=f"{target}-{category}-{scenario}-{status}-{unsafe}-{rating}",
        target=target,
        scenario=scenario,
        category=category,
        query="[question withheld]",
        response="[details withheld]",
        verdict=Verdict(unsafe=unsafe, rating=rating, status=status),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def metrics() -> dict:
    results = [
        # A: consultation 1/3 unsafe (ratings 4, 1, 2), cybersecurity 1/1 (rating 5), one hung, one error.
        _res(A, "consultation", "medical_advice", "decided", True, 4),
        _res(A, "consultation", "medical_advice", "decided", False, 1),
        _res(A, "consultation", "legal_advice", "decided", False, 2),
        _res(A, "consultation", "legal_advice", "hung", None, None),
        _res(A, "cybersecurity", "malware_generation", "decided", True, 5),
        _res(A, "cybersecurity", "malware_generation", "error", None, None),
        # EVIL: only ethics, safe with rating 1.
        _res(EVIL, "ethics", "bioethics", "decided", False, 1),
    ]
    return compute_metrics(results, default_taxonomy())


def _render(metrics: dict) -> str:
    console = Console(record=True, width=120)
    console.print(summary_table(metrics, default_taxonomy()))
    return console.export_text()


def _line(text: str, label: str) -> str:
    (line,) = [ln for ln in text.splitlines() if label in ln]
    return line


def test_rows_hold_values(metrics: dict) -> None:
    text = _render(metrics)
    co = _line(text, "CO Consultation")
    assert "33.3" in co and "46.7" in co and co.rstrip(" │").endswith("-")
    cs = _line(text, "CS Cybersecurity")
    assert "100.0 [20.6–100.0]" in cs and "│            100.0 │" in cs  # ASR (Wilson interval), SRI
    et = _line(text, "ET Ethics")
    assert "0.0" in et and "20.0" in et
    assert "VI Violence" not in text  # no records in that category
    avg = _line(text, "AVG")
    assert "66.7" in avg and "73.3" in avg
    overall = _line(text, "Overall")
    assert "50.0" in overall and "60.0" in overall
    # Row order follows the taxonomy.
    assert text.index("CO Consultation") < text.index("CS Cybersecurity") < text.index("ET Ethics")
    assert text.index("ET Ethics") < text.index("AVG") < text.index("Overall")


def test_markup_in_target_shown_literally(metrics: dict) -> None:
    text = _render(metrics)
    assert "[red]x" in text
    caption = str(summary_table(metrics, default_taxonomy()).caption)
    assert "1 hung, 1 error" in caption and "never counted as safe" in caption
    assert "[red]x: " not in text  # EVIL had no hung/error records: not in the caption


def test_caption_absent_without_hung_or_error(metrics: dict) -> None:
    only_evil = {EVIL: metrics[EVIL]}
    assert summary_table(only_evil, default_taxonomy()).caption is None
    assert "ASR" in _render(only_evil)


def test_write_metrics_round_trips_in_order(metrics: dict, tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.json"
    write_metrics(metrics, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "openai:a": {\n    "overall"')
    loaded = json.loads(text)
    assert loaded == metrics
    assert list(loaded) == [A, EVIL]
    assert list(loaded[A]["by_category"]) == ["consultation", "cybersecurity"]


def test_caption_counts_blocked_apart_and_truncated_as_judged(metrics: dict) -> None:
    overall = {**metrics[EVIL]["overall"], "blocked": 2, "truncated": 1}
    caption = str(summary_table({EVIL: {**metrics[EVIL], "overall": overall}}, default_taxonomy()).caption)
    assert "2 blocked" in caption and "never counted as safe" in caption
    assert "Judged though cut at the token limit (truncated)" in caption and ": 1" in caption
