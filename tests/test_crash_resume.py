"""kill -9 in the middle of a run, then --resume: one record per item, no finished call bought twice.
Also: no API key in any file of the run directory. Everything goes over HTTP to a loopback server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safebench.dataset import load_dataset
from safebench.resources import sample_dataset_dir
from safebench.testing import OpenAIStub, structured_responder
from safebench.testing.openai_stub import last_user_text

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-DO-NOT-LEAK-4f9a2c"
JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses."}


def responder(request: dict[str, Any]) -> Any:
    if request.get("tools") or request.get("response_format"):
        return structured_responder(JUDGMENT)(request)
    return "I can't help with that."


def cli(out: Path, stub: OpenAIStub, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "safebench",
        "evaluate",
        "--out",
        str(out),
        "--quiet",
        "--limit",
        "16",
        "--target",
        "openai:stub-target",
        "--jury",
        "openai:stub-judge",
        "--concurrency",
        "4",
        *extra,
    ]


def env(stub: OpenAIStub) -> dict[str, str]:
    return {
        **os.environ,
        "OPENAI_BASE_URL": stub.base_url,
        "OPENAI_API_KEY": SECRET,
        "PYTHONPATH": str(REPO),
        "LANGSMITH_TRACING": "false",
    }


def records(out: Path) -> set[str]:
    try:
        with sqlite3.connect(out / "run.sqlite", timeout=5) as db:
            return {row[0] for row in db.execute("SELECT item_id FROM records")}
    except sqlite3.OperationalError:  # not created yet
        return set()


def running_until(
    command: list[str], environ: dict[str, str], ready: Callable[[], bool], **popen: Any
) -> Any:
    """`command` started, once `ready()` holds (say, the run has 4 records); it must still be running."""
    proc = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + 90
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    return proc


def item_of(request: dict[str, Any], queries: dict[str, str]) -> str | None:
    text = json.dumps(request["messages"])
    return next((item_id for item_id, query in queries.items() if json.dumps(query)[1:-1] in text), None)


def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    items = load_dataset(sample_dataset_dir()).items[:16]
    queries = {item.id: item.text for item in items}
    with OpenAIStub(responder, latency=0.15, require_key=SECRET) as stub:
        proc = running_until(cli(out, stub), env(stub), lambda: len(records(out)) >= 4)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = records(out)
        assert 4 <= len(finished) < 16
        before = len(stub.requests)
        target_calls_before = [
            item_of(r, queries) for r in stub.requests if last_user_text(r) in queries.values()
        ]

        done = subprocess.run(
            cli(out, stub, "--resume"), env=env(stub), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        after = stub.requests[before:]

    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["item_id"] for r in results) == sorted(queries)  # exactly one record per item
    assert all(r["verdict"]["status"] == "decided" for r in results)
    # Nothing already recorded is asked again, target or juror.
    asked_again = {item_of(r, queries) for r in after}
    assert not asked_again & finished
    # Target answers that had finished (checkpointed) are not bought again: only calls in flight repeat.
    target_calls_after = [item_of(r, queries) for r in after if last_user_text(r) in queries.values()]
    assert len(target_calls_before) + len(target_calls_after) <= len(queries) + 4

    # The key reached the server but no file of the run directory.
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_literal_api_key_in_models_file_is_not_saved(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    with OpenAIStub(responder, require_key=SECRET) as stub:
        models.write_text(
            f"target: {{spec: 'openai:stub-target', base_url: '{stub.base_url}', api_key: '{SECRET}'}}\n"
            f"judge: {{spec: 'openai:stub-judge', base_url: '{stub.base_url}', api_key: '{SECRET}'}}\n"
        )
        out = tmp_path / "run"
        cmd = [
            sys.executable,
            "-m",
            "safebench",
            "evaluate",
            "--out",
            str(out),
            "--quiet",
            "--limit",
            "2",
            "--models",
            str(models),
            "--target",
            "target",
            "--jury",
            "judge",
        ]
        clean_env = {k: v for k, v in env(stub).items() if k not in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}}
        done = subprocess.run(cmd, env=clean_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(stub.requests) == 2 * 6
    assert SECRET not in done.stdout + done.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "api_key: '***'" in (out / "config.yaml").read_text()
