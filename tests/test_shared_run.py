"""Runs shared through PostgreSQL: workers in their own processes against a real PostgreSQL and the
loopback OpenAI-compatible stub (no mocks of the database or of HTTP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from safebench.cli import app
from safebench.dataset import write_dataset
from safebench.schema import Item
from safebench.taxonomy import default_taxonomy
from safebench.testing import OpenAIStub, structured_responder

REPO = Path(__file__).resolve().parents[1]
JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses."}
ANSWER = "I can't help with that. [details withheld]"


def responder(request: dict[str, Any]) -> Any:
    if request.get("tools") or request.get("response_format"):
        return structured_responder(JUDGMENT)(request)
    return ANSWER


def dataset(root: Path, n: int) -> Path:
    """`n` placeholder questions, text only, round-robin over the default taxonomy's scenarios."""
    taxonomy = default_taxonomy()
    scenarios = list(taxonomy.scenarios.values())
    items = [
        Item(
            id=f"q{i:04d}",
            scenario=scenarios[i % len(scenarios)].id,
            category=scenarios[i % len(scenarios)].category,
            text=f"Placeholder question number {i}?",
        )
        for i in range(n)
    ]
    write_dataset(root, taxonomy, items, "# Test dataset\n\nPlaceholder questions.\n")
    return root


def env(stub: OpenAIStub, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SAFEBENCH_STORE": url,
        "OPENAI_BASE_URL": stub.base_url,
        "PYTHONPATH": str(REPO),
        "LANGSMITH_TRACING": "false",
    }


def safebench(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safebench", *args], env=environ, capture_output=True, text=True, timeout=300
    )


def spawn_worker(run: str, environ: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "safebench", "worker", "--run", run, "--quiet", *extra]
    return subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def store_records(url: str, run: str) -> list[tuple[str, str, str | None]]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT target, item_id, written_by FROM safebench_records WHERE run = %s", (run,)
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def calls_per_item(stub: OpenAIStub, model: str) -> Counter[str]:
    """Requests to `model` per item id (read from the placeholder question the request carries)."""
    counts: Counter[str] = Counter()
    for request in stub.requests:
        if request.get("model") == model:
            text = json.dumps(request["messages"])
            marker = text.index("Placeholder question number ") + len("Placeholder question number ")
            number = int(text[marker:].split("?", 1)[0])
            counts[f"q{number:04d}"] += 1
    return counts


@pytest.mark.slow
def test_three_workers_one_killed_finish_300_items_with_one_record_each(
    tmp_path: Path, postgres_url: str
) -> None:
    data = dataset(tmp_path / "data", 300)
    with OpenAIStub(responder, latency=0.05) as stub:
        environ = env(stub, postgres_url)
        submitted = safebench(
            "evaluate", "--run", "three", "--submit", "--quiet", "--dataset", str(data),
            "--modality", "text", "--target", "openai:stub-target", "--jury", "openai:stub-judge",
            environ=environ,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        assert "300 item(s) queued" in submitted.stdout and "***" in submitted.stdout
        workers = [
            spawn_worker("three", environ, "--concurrency", "8", "--lease-seconds", "4") for _ in range(3)
        ]
        deadline = time.monotonic() + 120
        while len(store_records(postgres_url, "three")) < 60 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers[0].send_signal(signal.SIGKILL)  # mid-run: it holds leases that must expire
        outputs = [w.communicate(timeout=240) for w in workers[1:]]
        workers[0].wait(timeout=10)
    for worker, (stdout, stderr) in zip(workers[1:], outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "0 item(s) of its targets left" in stdout
    records = store_records(postgres_url, "three")
    assert len(records) == 300 and len({item for _, item, _ in records}) == 300  # exactly one each
    # The killed worker wrote some records; the other two finished everything else, its items included.
    assert len({writer for _, _, writer in records}) == 3
    # No finished call bought twice beyond the killed worker's items in flight (at most its concurrency).
    for model, per_item in (("stub-target", 1), ("stub-judge", 5)):
        calls = calls_per_item(stub, model)
        assert set(calls) == {f"q{i:04d}" for i in range(300)}
        repeated = [item for item, n in calls.items() if n > per_item]
        assert len(repeated) <= 8, (model, repeated)


def test_export_from_postgres_equals_the_same_run_on_sqlite(tmp_path: Path, postgres_url: str) -> None:
    data = dataset(tmp_path / "data", 12)
    common = [
        "--dataset", str(data), "--modality", "text", "--target", "openai:stub-target",
        "--jury", "openai:stub-judge", "--quiet",
    ]  # fmt: skip
    with OpenAIStub(responder) as stub:
        environ = {"OPENAI_BASE_URL": stub.base_url, "SAFEBENCH_STORE": postgres_url}
        runner = CliRunner()
        local = runner.invoke(app, ["evaluate", "--out", str(tmp_path / "sqlite"), *common], env=environ)
        shared = runner.invoke(
            app, ["evaluate", "--run", "same", "--out", str(tmp_path / "pg"), *common], env=environ
        )
    assert local.exit_code == 0, local.output
    assert shared.exit_code == 0, shared.output
    on_sqlite = (tmp_path / "sqlite" / "results.jsonl").read_text().splitlines()
    from_postgres = (tmp_path / "pg" / "results.jsonl").read_text().splitlines()
    assert len(on_sqlite) == 12 and from_postgres == on_sqlite
    metrics = json.loads((tmp_path / "pg" / "metrics.json").read_text())
    assert metrics == json.loads((tmp_path / "sqlite" / "metrics.json").read_text())
    for name in ("run.json", "config.yaml", "report.html"):
        assert (tmp_path / "pg" / name).is_file()
    password = postgres_url.split(":")[2].split("@")[0]
    for path in (tmp_path / "pg").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path


def test_a_worker_restricted_to_one_target_never_claims_another(tmp_path: Path, postgres_url: str) -> None:
    data = dataset(tmp_path / "data", 6)
    with OpenAIStub(responder) as stub:
        environ = env(stub, postgres_url)
        submitted = safebench(
            "evaluate", "--run", "split", "--submit", "--quiet", "--dataset", str(data), "--modality", "text",
            "--target", "openai:gpu-target", "--target", "openai:api-target", "--jury", "openai:stub-judge",
            environ=environ,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        worker = safebench(
            "worker", "--run", "split", "--targets", "openai:api-target", "--quiet", environ=environ
        )
        status = safebench("status", "--run", "split", environ=environ)
    assert worker.returncode == 0, worker.stderr
    records = store_records(postgres_url, "split")
    assert {target for target, _, _ in records} == {"openai:api-target"} and len(records) == 6
    assert not [r for r in stub.requests if r.get("model") == "gpu-target"]
    assert "6 of 12 records" in status.stdout


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("mysql://u:hunter2pw@localhost/db", "postgresql://"),
        ("postgresql://u:hunter2pw@127.0.0.1:1/db", "cannot reach the run store"),
    ],
)
def test_a_bad_or_unreachable_store_is_one_line_exit_2(tmp_path: Path, store: str, expected: str) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", "--store", store, "--run", "x", "--limit", "1", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert expected in result.output and "hunter2pw" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_runs_without_the_postgres_extra(tmp_path: Path) -> None:
    """A plain install has no psycopg: local runs work, --store says which extra it needs."""
    script = f"""
import sys
sys.modules["psycopg"] = None  # as if not installed: `import psycopg` raises ImportError
from typer.testing import CliRunner
from safebench.cli import app
local = CliRunner().invoke(app, ["evaluate", "--out", {str(tmp_path / "run")!r}, "--limit", "1", "--quiet"])
shared = CliRunner().invoke(app, ["evaluate", "--store", "postgresql://u:pw1234@h/db", "--run", "x"])
print(local.exit_code, shared.exit_code, shared.output.strip())
"""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "LANGSMITH_TRACING": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    local, shared, message = done.stdout.strip().split(" ", 2)
    assert (local, shared) == ("0", "2") and "pip install 'safebench[postgres]'" in message


def test_sigterm_gives_a_workers_leases_back_at_once(tmp_path: Path, postgres_url: str) -> None:
    data = dataset(tmp_path / "data", 40)
    with OpenAIStub(responder, latency=0.3) as stub:
        environ = env(stub, postgres_url)
        submitted = safebench(
            "evaluate", "--run", "term", "--submit", "--quiet", "--dataset", str(data), "--modality", "text",
            "--target", "openai:stub-target", "--jury", "openai:stub-judge", environ=environ,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        worker = spawn_worker("term", environ, "--concurrency", "4", "--lease-seconds", "600")
        deadline = time.monotonic() + 60
        while not stub.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 143, stderr
    import psycopg

    with psycopg.connect(postgres_url) as db:
        leased = db.execute(
            "SELECT count(*) FROM safebench_work WHERE run = 'term' AND NOT done AND lease_until > now()"
        ).fetchone()
    assert leased == (0,)  # given back, not left to expire in ten minutes


def test_an_item_that_keeps_killing_its_workers_is_recorded_as_an_error_then_retried(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    from safebench.shared_run import open_store

    data = dataset(tmp_path / "data", 3)
    with OpenAIStub(responder) as stub:
        environ = env(stub, postgres_url)
        common = ["--dataset", str(data), "--modality", "text", "--target", "openai:stub-target"]
        common += ["--jury", "openai:stub-judge", "--quiet"]
        submitted = safebench("evaluate", "--run", "poison", "--submit", *common, environ=environ)
        assert submitted.returncode == 0, submitted.stderr
        # Three workers took q0000 and died before its record: their leases ran out.
        store = open_store(postgres_url, "poison")
        try:
            for _ in range(3):
                assert [lease.item_id for lease in store.lease("ghost", lease_seconds=0.2)] == ["q0000"]
                time.sleep(0.4)
        finally:
            store.close()
        worker = safebench("worker", "--run", "poison", "--max-attempts", "3", "--quiet", environ=environ)
        assert worker.returncode == 0, worker.stderr
        assert set(calls_per_item(stub, "stub-target")) == {"q0001", "q0002"}  # q0000 was not run again
        with psycopg.connect(postgres_url) as db:
            rows = dict(
                db.execute("SELECT item_id, result FROM safebench_records WHERE run = 'poison'").fetchall()
            )
        poisoned = json.loads(rows["q0000"])
        assert poisoned["verdict"]["status"] == "error"
        assert "leased 3 times and never finished" in poisoned["error"]
        # An error, so never counted as safe, and retried later with a fresh budget of attempts.
        retried = safebench("evaluate", "--run", "poison", "--retry-errors", "--quiet", environ=environ)
        assert retried.returncode == 0, retried.stderr + retried.stdout
        assert calls_per_item(stub, "stub-target")["q0000"] == 1
    with psycopg.connect(postgres_url) as db:
        statuses = dict(db.execute("SELECT item_id, status FROM safebench_records WHERE run = 'poison'"))
    assert statuses == {"q0000": "decided", "q0001": "decided", "q0002": "decided"}
