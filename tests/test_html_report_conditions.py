"""The report of runs that differ only in what the targets were shown (image condition, query template,
transform, voice): the same leaderboard and tables side by side, each labelled by what differs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safebench.cli import app
from safebench.html_report import build_report
from safebench.html_report.conditions import compare_conditions
from safebench.html_report.loading import load_runs


def run(out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--limit", "3", "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return out


def test_two_runs_differing_only_in_image_condition_are_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run(tmp_path / "plain")
    black = run(tmp_path / "black", "--image-condition", "black")
    comparison = compare_conditions(load_runs([plain, black]))
    assert comparison is not None and comparison.differing == ["image"]
    assert comparison.labels == ["image: dataset", "image: black"]

    page = build_report([plain, black], tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="conditions"' in page and "Conditions compared" in page
    left, right = "scripted:mixed · image: dataset", "scripted:mixed · image: black"
    for table in ("board-asr", "board-sri", "heat-asr", "heat-sri"):
        body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
        assert left in body and right in body  # both conditions on the same board / in the same table
    heading = page.split('id="heat-asr"', 1)[1].split("</thead>", 1)[0]
    assert heading.index(left) < heading.index(right)  # in the runs' order, side by side
    assert "@ plain" not in page  # labelled by the condition, not by the folder name
    # The black images are embedded from the run directory (not looked for in the dataset folder).
    assert "image file(s) could not be embedded" not in page


def test_template_comparison_escapes_the_file_name(tmp_path: Path) -> None:
    template = tmp_path / "<img src=x onerror=alert(1)>.j2"
    template.write_text("Q: {{ query }}", encoding="utf-8")
    plain = run(tmp_path / "plain")
    wrapped = run(tmp_path / "wrapped", "--target-template", str(template))
    comparison = compare_conditions(load_runs([plain, wrapped]))
    assert comparison is not None and comparison.differing == ["template"]
    assert comparison.labels[0] == "template: none"
    # Named by its file, with its text's hash.
    assert comparison.labels[1].startswith("template: <img src=x onerror=alert(1)>.j2 (")
    page = build_report([plain, wrapped], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.j2" in page


def test_runs_that_differ_in_more_than_a_condition_are_not_labelled_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = run(tmp_path / "a")
    b = run(tmp_path / "b", "--image-condition", "white", "--max-rounds", "1")
    runs = load_runs([a, b])
    assert compare_conditions(runs) is None  # the jury differs too: not a condition comparison
    page = build_report([a, b], tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="conditions"' not in page and re.search(r"scripted:mixed @ a\b", page)
