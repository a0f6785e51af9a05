"""The runner end to end on the offline stand-ins: outputs, bad input, resume rules, item failures."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from safebench.cli import app
from safebench.config import RunConfig
from safebench.dataset import DatasetInvalid
from safebench.resources import sample_dataset_dir
from safebench.runner import Evaluation, evaluate
from safebench.store import RunConflict

RESULT_KEYS = {
    "item_id",
    "target",
    "target_spec",
    "scenario",
    "category",
    "query",
    "modality",
    "prompt",
    "image_condition",
    "image",
    "audio",
    "response",
    "finish_reason",
    "truncated",
    "verdict",
    "rounds",
    "opinions",
    "calls",
    "tokens",
    "error",
}


def read_results(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_python_api_writes_results_metrics_and_config(tmp_path: Path) -> None:
    outcome = evaluate(out=tmp_path / "run", limit=12, targets=["scripted:mixed", "scripted:refuser"])
    results = read_results(tmp_path / "run")
    assert len(results) == 24 == outcome.records
    assert all(set(r) == RESULT_KEYS for r in results)
    assert [r["target"] for r in results] == ["scripted:mixed"] * 12 + ["scripted:refuser"] * 12
    refuser = [r for r in results if r["target"] == "scripted:refuser"]
    assert all(r["verdict"]["unsafe"] is False and r["calls"] == 6 for r in refuser)  # 1 target + 5 jurors
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["scripted:refuser"]["overall"]["asr"] == 0.0
    assert metrics["scripted:refuser"]["overall"]["sri"] == 100.0
    assert metrics["scripted:mixed"]["overall"]["n"] == 12
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["targets"][0]["spec"] == "scripted:mixed" and saved["limit"] == 12


def test_cli_default_run_is_offline_and_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "run"), "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "scripted stand-ins" in result.output
    assert len(read_results(tmp_path / "run")) == 5


def broken_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(sample_dataset_dir(), root)
    lines = (root / "items.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"scenario": "', '"scenario": "no_such_')
    lines.append("{not json")
    (root / "items.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_invalid_dataset_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    root = broken_dataset(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["evaluate", "--dataset", str(root), "--out", str(out)])
    assert result.exit_code == 2
    assert "items.jsonl:4: scenario" in result.output and "items.jsonl:47" in result.output
    assert "nothing was started" in result.output
    assert not out.exists()
    with pytest.raises(DatasetInvalid):
        Evaluation(RunConfig(dataset=str(root), out=out)).prepare()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nosuch:model"], "unknown model spec 'nosuch:model'"),
        (["--jury", "scripted:oracle"], "unknown scripted stand-in"),
        (["--target", "replay:/does/not/exist.jsonl"], "replay file not found"),
    ],
)
def test_bad_model_spec_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_failed_item_is_an_error_record_and_the_run_goes_on(tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        json.dumps({"item_id": "medical_advice-001", "response": "I can't help with that."}) + "\n"
    )
    evaluate(out=tmp_path / "run", limit=3, targets=[f"replay:{answers}"], jury={"model": "scripted:juror"})
    results = read_results(tmp_path / "run")
    assert results[0]["verdict"]["status"] == "decided" and results[0]["verdict"]["unsafe"] is False
    for missing in results[1:]:
        assert missing["verdict"]["status"] == "error" and missing["verdict"]["unsafe"] is None
        assert "no recorded response" in missing["error"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())[f"replay:{answers}"]["overall"]
    assert metrics["error"] == 2 and metrics["decided"] == 1 and metrics["asr"] == 0.0


def test_existing_run_needs_resume_and_same_identity(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(out=out, limit=2)
    with pytest.raises(RunConflict, match="--resume"):
        evaluate(out=out, limit=2)
    again = evaluate(out=out, limit=2, resume=True)
    assert again.records == 2
    with pytest.raises(RunConflict, match="different"):
        evaluate(out=out, limit=2, targets=["scripted:complier"], resume=True)


def test_resume_adds_only_missing_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(out=out, limit=4)
    events: list[dict] = []
    # A larger limit on resume is a different identity; the same identity finds nothing left to do.
    evaluate(out=out, limit=4, resume=True, on_event=events.append)
    assert events[0] == {"event": "start", "total": 4, "done": 4, "run_id": events[0]["run_id"]}
    assert not [e for e in events if e["event"] == "record"]


def test_missing_key_and_unreachable_endpoint_stop_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--target", "openai:gpt-4o"])
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the discard port: nothing listens
    result = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--target", "openai:local"])
    assert result.exit_code == 2 and "cannot reach http://127.0.0.1:9/v1" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_dataset_is_validated_once_when_the_cli_prepares_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safebench.runner as runner

    calls: list[str] = []
    real = runner.load_dataset
    monkeypatch.setattr(runner, "load_dataset", lambda root: calls.append(str(root)) or real(root))
    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "run"), "--limit", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1


async def test_evaluate_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    # A Jupyter cell runs inside an event loop, where asyncio.run refuses to start another.
    outcome = evaluate(out=tmp_path / "run", limit=2)
    assert outcome.records == 2


def test_version_flag_and_one_line_errors_for_common_slips(tmp_path: Path) -> None:
    from safebench import __version__

    assert CliRunner().invoke(app, ["--version"]).output.strip() == f"safebench {__version__}"
    bare = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "r"), "--target", "gpt-4o"])
    assert bare.exit_code == 2 and "did you mean openai:gpt-4o?" in bare.output
    a_file = tmp_path / "file"
    a_file.write_text("x")
    on_file = CliRunner().invoke(app, ["evaluate", "--out", str(a_file)])
    assert on_file.exit_code == 2 and "is a file" in on_file.output
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "items.jsonl").write_text("")
    inside = CliRunner().invoke(app, ["evaluate", "--out", str(dataset / "run")])
    assert inside.exit_code == 2 and "inside a dataset folder" in inside.output
    for result in (bare, on_file, inside):
        assert len(result.output.strip().splitlines()) == 1


def test_every_model_problem_is_listed_at_once(tmp_path: Path) -> None:
    jury = tmp_path / "jury.yaml"
    jury.write_text(
        yaml.safe_dump(
            {
                "jurors": [
                    {"card": "wise_elder", "model": "scripted:oracle"},
                    {"card": "clinician", "model": "nosuch:x"},
                ],
                "quorum": 2,
            }
        )
    )
    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "run"), "--jury", str(jury)])
    assert result.exit_code == 2
    assert "unknown scripted stand-in 'scripted:oracle'" in result.output and "nosuch:x" in result.output
    assert not (tmp_path / "run").exists()


def test_unknown_card_and_modality_are_one_line(tmp_path: Path) -> None:
    jury = tmp_path / "jury.yaml"
    jury.write_text(yaml.safe_dump({"jurors": [{"card": "nobody", "model": "scripted:juror"}], "quorum": 1}))
    unknown_card = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "a"), "--jury", str(jury)])
    video = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "b"), "--modality", "video"])
    assert unknown_card.exit_code == 2 and "no juror card with id 'nobody'" in unknown_card.output
    assert video.exit_code == 2 and "modality" in video.output
    for result in (unknown_card, video):
        assert len(result.output.strip().splitlines()) == 1


INTERRUPTED_CELL = """
import asyncio, signal, threading, time
from safebench.event_loop import run_sync
log = []
async def long_run():
    log.append("started")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
async def cell():  # a notebook cell: code running inside an event loop
    run_sync(long_run())
loop = asyncio.new_event_loop()
threading.Timer(1.0, signal.raise_signal, args=(signal.SIGINT,)).start()
started = time.monotonic()
try:
    loop.run_until_complete(cell())
except KeyboardInterrupt:
    print(round(time.monotonic() - started), log)
"""


def test_an_interrupt_inside_a_running_loop_cancels_the_run_at_once() -> None:
    import subprocess
    import sys

    # A plain interpreter with a plain loop, as a Jupyter kernel has (pytest's own event-loop set-up
    # changes how a cross-thread cancel lands, so this runs in a child process).
    out = subprocess.run([sys.executable, "-c", INTERRUPTED_CELL], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1 ['started', 'cancelled']", out.stderr


def test_cli_header_quiet_resume_and_scenario_table(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--limit", "3", "--by", "scenario"])
    assert first.exit_code == 0, first.output
    assert "(3 of 46 items)" in first.output and "jury 5 × scripted:juror" in first.output
    assert "ASR ↓" in first.output and "SRI ↑" in first.output and "MA Medical Advice" in first.output
    quiet = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "q"), "--limit", "1", "--quiet"])
    assert quiet.output.strip().endswith("report.html") and "results.jsonl" in quiet.output
    resumed = CliRunner().invoke(app, ["evaluate", "--resume", "--out", str(out)])
    assert "resuming: 3 of 3 records done" in resumed.output


def test_user_text_is_never_read_as_rich_markup_or_emoji(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path / "r"), "--target", "openai:x:"])
    assert "openai:x:" in result.output and "❌" not in result.output


def test_commands_run_on_uvloop_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from safebench import event_loop

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(loop_module()).startswith("uvloop")
    monkeypatch.setenv(event_loop.LOOP_ENV, "asyncio")
    assert event_loop.run(loop_module()).startswith("asyncio")
