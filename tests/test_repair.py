"""Errors can be repaired and nothing is lost: --retry-errors reruns exactly the errors, --resume reads
the run's own saved settings, the record is saved before its checkpoint goes, one process per run dir."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from typer.testing import CliRunner

from safebench.checkpoint_sqlite import CHECKPOINTS_FILE
from safebench.cli import app
from safebench.config import JuryConfig, RunConfig
from safebench.runner import Evaluation, evaluate
from safebench.store import RunStore
from safebench.testing import OpenAIStub, structured_responder
from safebench.testing.openai_stub import StubHTTPError

JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses."}


class Flaky:
    """Target requests fail with 503 while `down`; jurors always answer."""

    def __init__(self) -> None:
        self.down = True
        self.target_calls = 0

    def __call__(self, request: dict[str, Any]) -> Any:
        if any(m.get("role") == "system" for m in request["messages"]):
            return structured_responder(JUDGMENT)(request)
        self.target_calls += 1
        if self.down:
            raise StubHTTPError(503, "overloaded")
        return "I can't help with that."


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", "--quiet", *args])


def statuses(out: Path) -> list[str]:
    return [
        json.loads(line)["verdict"]["status"] for line in (out / "results.jsonl").read_text().splitlines()
    ]


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Any:
    responder = Flaky()
    with OpenAIStub(responder) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        yield responder


def test_outage_errors_exit_3_then_retry_errors_reruns_exactly_them(flaky: Flaky, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--target", "openai:t", "--jury", "openai:j", "--limit", "4", "--max-attempts", "1"]
    first = run("--out", str(out), *args)
    assert first.exit_code == 3 and "--retry-errors" in first.output
    assert statuses(out) == ["error"] * 4

    flaky.target_calls = 0
    resumed = run("--resume", "--out", str(out))  # plain resume leaves errors as they are
    assert resumed.exit_code == 3 and flaky.target_calls == 0

    flaky.down = False
    repaired = run("--retry-errors", "--out", str(out))  # no option retyped: the saved config is used
    assert repaired.exit_code == 0, repaired.output
    assert flaky.target_calls == 4 and statuses(out) == ["decided"] * 4

    flaky.target_calls = 0
    again = run("--retry-errors", "--out", str(out))
    assert again.exit_code == 0 and flaky.target_calls == 0  # nothing left to repair


def test_allow_errors_exits_0(flaky: Flaky, tmp_path: Path) -> None:
    args = ["--target", "openai:t", "--jury", "openai:j", "--limit", "1", "--max-attempts", "1"]
    assert run("--out", str(tmp_path / "run"), *args, "--allow-errors").exit_code == 0


def test_resume_names_the_option_that_differs(flaky: Flaky, tmp_path: Path) -> None:
    flaky.down = False
    out = tmp_path / "run"
    assert run("--out", str(out), "--target", "openai:t", "--jury", "openai:j", "--limit", "2").exit_code == 0
    changed = run("--resume", "--out", str(out), "--modality", "text")
    assert changed.exit_code == 2 and "modality differs" in changed.output and "image" in changed.output
    assert len(changed.output.strip().splitlines()) == 1
    # Settings that do not change what the run is may differ.
    assert run("--resume", "--out", str(out), "--concurrency", "2").exit_code == 0


def test_python_resume_with_only_out(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(out=out, limit=2)
    events: list[dict] = []
    outcome = evaluate(out=out, resume=True, on_event=events.append)
    assert outcome.records == 2 and not [e for e in events if e["event"] == "record"]


def test_the_records_are_saved_before_the_checkpoints_are_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Killed(Exception):
        pass

    def killed(run_dir: Path) -> None:
        assert (run_dir / CHECKPOINTS_FILE).exists()
        raise Killed(run_dir)  # the process dies right after the last record was saved

    monkeypatch.setattr("safebench.runner.discard_checkpoints", killed)
    config = RunConfig(out=tmp_path / "run", limit=3, concurrency=2)
    with pytest.raises(Killed):
        asyncio.run(Evaluation(config).run())
    store = RunStore(tmp_path / "run")
    try:
        assert store.count() == 3
    finally:
        store.close()
    # The resume finds every record and leaves nothing to run; the stale checkpoints go then.
    monkeypatch.undo()
    events: list[dict] = []
    outcome = evaluate(RunConfig(out=tmp_path / "run", limit=3), resume=True, on_event=events.append)
    assert outcome.records == 3 and not [e for e in events if e["event"] == "record"]
    assert not (tmp_path / "run" / CHECKPOINTS_FILE).exists()


def test_a_finished_run_keeps_no_checkpoints(tmp_path: Path) -> None:
    evaluate(out=tmp_path / "run", limit=2)
    assert not list((tmp_path / "run").glob(f"{CHECKPOINTS_FILE}*"))


def test_a_second_process_on_the_same_run_dir_stops(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = RunStore(out)
    holder.lock()
    try:
        result = run("--out", str(out), "--limit", "1")
    finally:
        holder.close()
    assert result.exit_code == 2 and "in use by another safebench process" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert run("--out", str(out), "--limit", "1").exit_code == 0  # released with its holder


def test_ctrl_c_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(self: Evaluation) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Evaluation, "run", interrupted)
    result = run("--out", str(tmp_path / "run"), "--limit", "1")
    assert result.exit_code == 130
    assert f"safebench evaluate --resume --out {tmp_path / 'run'}" in result.output


def test_quorum_larger_than_the_jury_is_exit_2(tmp_path: Path) -> None:
    jury = tmp_path / "jury.yaml"
    jury.write_text(JuryConfig(model="scripted:juror", quorum=6).model_dump_json())  # JSON is YAML
    result = run("--out", str(tmp_path / "run"), "--jury", str(jury), "--limit", "1")
    assert result.exit_code == 2 and "quorum 6" in result.output and "5" in result.output
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_left_with_nothing_to_run_and_no_verdict_is_started_over(tmp_path: Path) -> None:
    """kill -9 can lose the writes of a step: the thread then has values, no next node and no verdict."""
    from graphs.evaluation import build_evaluation_graph
    from safebench.dataset import load_dataset
    from safebench.resources import sample_dataset_dir
    from safebench.runner import build_case

    out = tmp_path / "run"
    evaluate(out=out, limit=2)
    item = load_dataset(sample_dataset_dir()).items[1]
    store = RunStore(out)
    store._db.execute("DELETE FROM records")  # as if the run died before its record was saved
    store.close()

    async def leave_a_broken_checkpoint() -> None:
        async with AsyncSqliteSaver.from_conn_string(str(out / "checkpoints.sqlite")) as saver:
            graph = build_evaluation_graph().compile(checkpointer=saver)
            config = {"configurable": {"thread_id": f"scripted:mixed::{item.id}"}}
            case = build_case(item, load_dataset(sample_dataset_dir()))
            await graph.aupdate_state(config, {"item": item.model_dump(), "case": case}, as_node="verdict")
            snapshot = await graph.aget_state(config)
            assert snapshot.values and not snapshot.next and "verdict" not in snapshot.values

    asyncio.run(leave_a_broken_checkpoint())
    outcome = evaluate(RunConfig(out=out, limit=2), resume=True)
    assert outcome.counts == {"decided": 2}
