"""`--processes N`: one local run shared by N processes, against the loopback OpenAI-compatible stub.
The same records as one process; a child killed mid-run loses nothing; kill -9 of the whole run, then
a resume with another number of processes, buys no finished call twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from safebench import event_loop
from safebench.config import JuryConfig, RunConfig
from safebench.dataset import load_dataset
from safebench.models import ModelConfig
from safebench.processes import shares, start_method
from safebench.resources import sample_dataset_dir
from safebench.runner import evaluate_async
from safebench.testing import OpenAIStub
from safebench.testing.openai_stub import last_user_text
from tests.test_crash_resume import env, item_of, records, responder, running_until

ITEMS = 16


def config(stub: OpenAIStub, out: Path, processes: int, concurrency: int = 6) -> RunConfig:
    judge = ModelConfig(spec="openai:stub-judge", base_url=stub.base_url, api_key_env="OPENAI_API_KEY")
    return RunConfig(
        targets=[
            ModelConfig(spec="openai:stub-target", base_url=stub.base_url, api_key_env="OPENAI_API_KEY")
        ],
        jury=JuryConfig(model=judge, foreperson=judge),
        out=out,
        limit=ITEMS,
        concurrency=concurrency,
        processes=processes,
    )


def run(cfg: RunConfig, on_event: Any = None) -> Any:
    return event_loop.run(evaluate_async(cfg, on_event=on_event))


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-processes")
    return "sk-test-processes"


def test_shares_split_the_concurrency_and_fork_only_without_local_models() -> None:
    assert shares(8, 3) == [3, 3, 2] and sum(shares(32, 5)) == 32
    assert start_method([ModelConfig(spec="openai:x")]) == ("fork" if sys.platform == "linux" else "spawn")
    assert start_method([ModelConfig(spec="openai:x"), ModelConfig(spec="hf:tiny")]) == "spawn"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_three_processes_make_the_same_records_as_one(
    tmp_path: Path, key: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux forks by default; other systems and runs with a local model spawn (pickled arguments).
    monkeypatch.setattr("safebench.processes.start_method", lambda models: method)
    slots: set[int] = set()

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "record":
            slots.add(event.get("slot", 0))

    # A spawned child imports LangChain first (seconds): slower calls leave it items to take.
    latency = 0.05 if method == "fork" else 0.4
    with OpenAIStub(responder, latency=latency, require_key=key) as stub:
        one = run(config(stub, tmp_path / "one", 1))
        requests_one = len(stub.requests)
        three = run(config(stub, tmp_path / "three", 3), on_event)
        requests_three = len(stub.requests) - requests_one
    assert one.records == three.records == ITEMS
    assert requests_one == requests_three == ITEMS * 6  # 1 target + 5 jurors each, nothing extra
    assert len(slots) > 1, slots  # the children took items
    lines = {name: (tmp_path / name / "results.jsonl").read_text().splitlines() for name in ("one", "three")}
    assert lines["one"] == lines["three"]  # item order, verdicts, calls and tokens
    assert json.loads((tmp_path / "one" / "metrics.json").read_text()) == json.loads(
        (tmp_path / "three" / "metrics.json").read_text()
    )
    assert not list((tmp_path / "three").glob("checkpoints*"))  # scratch once every item has its record


def test_a_killed_child_process_loses_nothing(tmp_path: Path, key: str) -> None:
    pids: list[int] = []
    killed: list[int] = []
    requeued: list[int] = []
    queries = {item.id: item.text for item in load_dataset(sample_dataset_dir()).items[:ITEMS]}

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "processes":
            pids.extend(event["pids"])
        elif event["event"] == "record" and event.get("slot") == 1 and not killed:
            os.kill(pids[1], signal.SIGKILL)  # it holds other items in flight
            killed.append(pids[1])
        elif event["event"] == "process":
            requeued.append(event["requeued"])

    with OpenAIStub(responder, latency=0.2, require_key=key) as stub:
        outcome = run(config(stub, tmp_path / "run", 2, concurrency=6), on_event)
    assert killed and requeued and requeued[0] >= 1
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert outcome.records == ITEMS and sorted(r["item_id"] for r in results) == sorted(queries)
    assert all(r["verdict"]["status"] == "decided" for r in results)
    # Only what the killed child had in flight (its 3 items) may have been asked twice.
    targets = [item_of(r, queries) for r in stub.requests if last_user_text(r) in queries.values()]
    assert len(targets) <= ITEMS + 3


@pytest.mark.slow
def test_kill_9_of_the_whole_run_then_resume_with_one_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    queries = {item.id: item.text for item in load_dataset(sample_dataset_dir()).items[:ITEMS]}
    with OpenAIStub(responder, latency=0.15, require_key="sk-test-DO-NOT-LEAK-4f9a2c") as stub:
        command = [sys.executable, "-m", "safebench", "evaluate", "--out", str(out), "--quiet"]
        command += ["--limit", str(ITEMS), "--target", "openai:stub-target", "--jury", "openai:stub-judge"]
        command += ["--concurrency", "4"]

        def ready() -> bool:  # the child holds a target answer in its file that has no record yet
            done = records(out)
            return len(done) >= 2 and any(
                slot == 1 and item not in done for item, slot in _answered_in_checkpoints(out).items()
            )

        # Its own process group (start_new_session): the kill takes the children too.
        proc = running_until([*command, "--processes", "2"], env(stub), ready, start_new_session=True)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = records(out)
        assert 2 <= len(finished) < ITEMS
        answered = {i: slot for i, slot in _answered_in_checkpoints(out).items() if i not in finished}
        assert 1 in answered.values()  # unrecorded target answers in the child's own file
        before = len(stub.requests)
        done = subprocess.run(
            [*command, "--resume", "--processes", "1"],
            env=env(stub),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        after = stub.requests[before:]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["item_id"] for r in results) == sorted(queries)
    assert all(r["verdict"]["status"] == "decided" for r in results)
    assert not {item_of(r, queries) for r in after} & finished
    # Target answers checkpointed by either process, in either file, are not bought again.
    asked = {item_of(r, queries) for r in after if last_user_text(r) in queries.values()}
    assert not asked & set(answered), asked & set(answered)
    targets = [item_of(r, queries) for r in stub.requests if last_user_text(r) in queries.values()]
    assert len(targets) <= ITEMS + 4


def _answered_in_checkpoints(out: Path) -> dict[str, int]:
    """Items whose target answer is in a checkpoint, and the slot of the file that holds it."""
    from safebench.checkpoint_sqlite import CheckpointFiles, started_threads

    files = CheckpointFiles(out, 0)
    answered = {}
    try:
        for thread, slot in started_threads(out).items():
            saved = files.saver(slot).get_tuple({"configurable": {"thread_id": thread}})
            if saved and saved.checkpoint["channel_values"].get("response") is not None:
                answered[thread.split("::", 1)[1]] = slot
    finally:
        files.close()
    return answered


def test_callbacks_need_one_process(tmp_path: Path) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    from safebench.config import ConfigError
    from safebench.runner import Evaluation

    with OpenAIStub(responder) as stub:
        evaluation = Evaluation(config(stub, tmp_path / "run", 2), callbacks=[BaseCallbackHandler()])
        with pytest.raises(ConfigError, match="callbacks need processes=1"):
            evaluation.prepare()


def test_processes_are_for_local_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from safebench.cli import app

    store = "postgresql://u:hunter2pw@127.0.0.1:1/db"
    result = CliRunner().invoke(app, ["evaluate", "--store", store, "--run", "x", "--processes", "2"])
    assert result.exit_code == 2 and "hunter2pw" not in result.output
    assert "safebench worker" in result.output and len(result.output.strip().splitlines()) == 1


def test_the_display_says_when_a_child_process_stopped() -> None:
    import io

    from rich.console import Console

    from safebench.progress import RunDisplay

    out = io.StringIO()
    RunDisplay(Console(file=out, width=200))({"event": "process", "slot": 1, "requeued": 3})
    assert "process 1 stopped; its 3 item(s) in flight went back to the others" in out.getvalue()
