"""Every number a run reports is right, or says why not: stand-ins are never silent, targets keep
their identity, what the target was sent is recorded, and answers that are not answers are not judged.
The CLI runs in-process against loopback OpenAI-compatible stubs (the real ChatOpenAI over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from safebench.cli import app
from safebench.dataset import load_dataset
from safebench.resources import sample_dataset_dir
from safebench.testing import OpenAIStub, structured_responder
from safebench.testing.openai_stub import message_text

JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses."}
REFUSAL = "I can't help with that."


def is_juror(request: dict[str, Any]) -> bool:
    return any(m.get("role") == "system" for m in request["messages"])


def responder(answer: Callable[[dict[str, Any]], Any] | str | dict[str, Any] = REFUSAL) -> Any:
    def respond(request: dict[str, Any]) -> Any:
        if is_juror(request):
            return structured_responder(JUDGMENT)(request)
        return answer(request) if callable(answer) else answer

    return respond


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", "--quiet", *args])


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Any:
    with OpenAIStub(responder()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def test_real_target_without_a_jury_stops_before_any_call(stub: OpenAIStub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("--out", str(out), "--target", "openai:stub-target", "--limit", "2")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "--jury SPEC" in result.output and "--jury scripted:juror" in result.output
    assert stub.requests == [] and not out.exists()


def test_stand_ins_on_purpose_are_named_in_header_config_and_metrics(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--out",
            str(out),
            "--target",
            "openai:stub-target",
            "--jury",
            "scripted:juror",
            "--limit",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Scripted stand-ins (not language models) in this run" in result.output
    assert "juror 0 (civil_liberties): scripted:juror" in result.output.replace("\n", " ")
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (
        len(saved["resolved"]["stand_ins"]) == 5 and saved["resolved"]["jury"][0]["spec"] == "scripted:juror"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["openai:stub-target"]["stand_ins"][0] == "juror 0 (civil_liberties): scripted:juror"


def test_two_named_targets_with_one_spec_are_two_targets(tmp_path: Path) -> None:
    with OpenAIStub(responder("Answer from A.")) as a, OpenAIStub(responder("Answer from B.")) as b:
        models = tmp_path / "models.yaml"
        models.write_text(
            yaml.safe_dump(
                {
                    "alpha": {"spec": "openai:same-model", "base_url": a.base_url},
                    "beta": {"spec": "openai:same-model", "base_url": b.base_url},
                    "judge": {"spec": "openai:judge", "base_url": a.base_url},
                }
            )
        )
        out = tmp_path / "run"
        args = ["--out", str(out), "--models", str(models), "--jury", "judge", "--limit", "3"]
        result = run(*args, "--target", "alpha", "--target", "beta")
        assert result.exit_code == 0, result.output
        duplicate = run("--out", str(tmp_path / "dup"), *args[2:], "--target", "alpha", "--target", "alpha")
    rows = results(out)
    assert [(r["target"], r["target_spec"]) for r in rows] == [("alpha", "openai:same-model")] * 3 + [
        ("beta", "openai:same-model")
    ] * 3
    assert {r["response"] for r in rows if r["target"] == "alpha"} == {"Answer from A."}
    assert {r["response"] for r in rows if r["target"] == "beta"} == {"Answer from B."}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["alpha"]["overall"]["n"] == 3 == metrics["beta"]["overall"]["n"]
    assert metrics["alpha"]["target_spec"] == "openai:same-model"
    assert duplicate.exit_code == 2 and "'alpha' is given twice" in duplicate.output


def test_jurors_get_no_image_the_target_never_received(stub: OpenAIStub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "--out", str(out), "--target", "openai:t", "--jury", "openai:j", "--modality", "text", "--limit", "2"
    )
    assert result.exit_code == 0, result.output
    for request in stub.requests:
        for message in request["messages"]:
            assert isinstance(message["content"], str)  # no parts, so no image_url
        if is_juror(request):
            assert "image" not in message_text(request["messages"][-1]).lower()
    rows = results(out)
    assert all(r["image"] is None and r["modality"] == "text" for r in rows)


def test_with_the_image_modality_multimodal_jurors_see_the_image_and_records_name_it(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run("--out", str(out), "--target", "openai:t", "--jury", "openai:j", "--limit", "1")
    assert result.exit_code == 0, result.output
    sent_images = [r for r in stub.requests if any(isinstance(m["content"], list) for m in r["messages"])]
    assert len(sent_images) == 1 + 5  # the target and the five (multimodal) jurors
    [row] = results(out)
    item = load_dataset(sample_dataset_dir()).items[0]
    assert row["image"] == {"path": item.image, "sha256": item.image_sha256, "voice": None}
    assert row["prompt"] == (item.image_text or item.text) and row["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("answer", "status", "truncated", "judged"),
    [
        ({"content": "", "finish_reason": "stop"}, "error", False, False),
        ({"content": "", "finish_reason": "length"}, "error", True, False),
        (
            {"content": "[withheld by the provider]", "finish_reason": "content_filter"},
            "blocked",
            False,
            False,
        ),
        ({"content": "I can't help with that, because", "finish_reason": "length"}, "decided", True, True),
    ],
)
def test_answers_that_are_not_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: dict, status: str, truncated: bool, judged: bool
) -> None:
    with OpenAIStub(responder(answer)) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        out = tmp_path / "run"
        result = run("--out", str(out), "--target", "openai:t", "--jury", "openai:j", "--limit", "2")
        juror_calls = sum(1 for r in stub.requests if is_juror(r))
    assert result.exit_code == (3 if status == "error" else 0), result.output
    rows = results(out)
    assert all(r["verdict"]["status"] == status and r["truncated"] is truncated for r in rows)
    assert all(r["finish_reason"] == answer["finish_reason"] for r in rows)
    assert all(r["verdict"]["unsafe"] is None for r in rows) or judged  # never counted as safe
    assert juror_calls == (10 if judged else 0)
    overall = json.loads((out / "metrics.json").read_text())["openai:t"]["overall"]
    assert overall[status] == 2 and overall["truncated"] == (2 if truncated else 0)
    if not judged:
        assert overall["asr"] is None and overall["sri"] is None


def test_config_and_run_json_say_what_ran(
    stub: OpenAIStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-saved-12345678")
    out = tmp_path / "run"
    result = run("--out", str(out), "--target", "openai:t", "--jury", "openai:j", "--limit", "2")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    jury = saved["resolved"]["jury"]
    assert [s["slot"] for s in jury] == [0, 1, 2, 3, 4]
    assert {s["base_url"] for s in jury} == {stub.base_url}  # set by OPENAI_BASE_URL, not null
    assert jury[0]["card"] == "civil_liberties" and jury[0]["persona"]
    info = json.loads((out / "run.json").read_text())
    assert info["safebench_version"] and info["started"] and info["finished"]
    assert info["dataset"]["items"] == 46 and len(info["dataset"]["sha256"]) == 64
    assert info["counts"] == {"decided": 2} and "langgraph" in info["packages"]
    assert info["sessions"][0]["command"] is not None
    for path in out.iterdir():
        if path.is_file():
            assert b"sk-test-never-saved" not in path.read_bytes(), path.name


def test_replay_of_several_targets_needs_a_label(tmp_path: Path) -> None:
    recorded = tmp_path / "results.jsonl"
    rows = [
        {"item_id": "medical_advice-001", "target": "a", "response": "Answer of a."},
        {"item_id": "medical_advice-001", "target": "b", "response": "Answer of b."},
    ]
    recorded.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["--jury", "scripted:juror", "--limit", "1"]
    ambiguous = run("--out", str(tmp_path / "x"), "--target", f"replay:{recorded}", *base)
    assert ambiguous.exit_code == 2 and "a, b" in ambiguous.output and "#LABEL" in ambiguous.output
    assert len(ambiguous.output.strip().splitlines()) == 1
    chosen = run("--out", str(tmp_path / "y"), "--target", f"replay:{recorded}#b", *base)
    assert chosen.exit_code == 0, chosen.output
    assert results(tmp_path / "y")[0]["response"] == "Answer of b."
