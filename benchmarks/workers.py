"""Throughput of a shared run worked by N `safebench worker` processes (PostgreSQL run store).

    python benchmarks/workers.py [--items 200] [--workers 2] [--concurrency 32] [--latency 0.1]

A throwaway PostgreSQL cluster on loopback (tests/postgres.py, the one the tests use), the benchmark's
loopback server in a child process, `evaluate --submit`, then N workers sharing `--concurrency` between
them. Measured from the first lease to the last record (the workers' start-up, a few seconds of imports
each, is left out and reported apart); the speed-up is over the same calls made one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import JUDGE_MODEL, REPO, TARGET_MODEL, build_dataset, calls_per_item, serve

sys.path.insert(0, str(REPO / "tests"))
from postgres import PostgresServer, find_bin_dir


def _tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid`, its reaped children and its live children (PostgreSQL's backends)."""
    tick = os.sysconf("SC_CLK_TCK")

    def fields(path: Path) -> list[str]:
        return path.read_text().rpartition(")")[2].split()

    own = fields(Path(f"/proc/{pid}/stat"))
    total = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = fields(stat)
        except OSError:  # gone meanwhile
            continue
        if int(f[1]) == pid:
            total += int(f[11]) + int(f[12])
    return total / tick


def measure(items: int, workers: int, concurrency: int, latency: float) -> dict[str, Any]:
    import psycopg

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    with tempfile.TemporaryDirectory() as tmp, PostgresServer(bin_dir) as pg, serve(latency) as server:
        dataset = build_dataset(Path(tmp) / "dataset", items)
        env = {**os.environ, "SAFEBENCH_STORE": pg.url, "OPENAI_BASE_URL": server.base_url}
        env["LANGSMITH_TRACING"] = "false"
        submit = [sys.executable, "-m", "safebench", "evaluate", "--run", "bench", "--submit", "--quiet"]
        submit += [
            "--dataset",
            str(dataset),
            "--target",
            f"openai:{TARGET_MODEL}",
            "--jury",
            f"openai:{JUDGE_MODEL}",
        ]
        subprocess.run(submit, env=env, check=True, capture_output=True)
        per_worker = str(max(1, concurrency // workers))
        command = [
            sys.executable,
            "-m",
            "safebench",
            "worker",
            "--run",
            "bench",
            "--quiet",
            "--concurrency",
            per_worker,
        ]
        pg_cpu0 = _tree_cpu(pg.pid)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(workers)
        ]
        first = None
        # autocommit: an idle transaction here would block the workers' checkpoint-table set-up
        with psycopg.connect(pg.url, autocommit=True) as db:
            while True:
                done = db.execute("SELECT count(*) FROM safebench_records").fetchone()[0]
                if (
                    first is None
                    and db.execute(
                        "SELECT count(*) FROM safebench_work WHERE leased_by IS NOT NULL"
                    ).fetchone()[0]
                ):
                    first = time.perf_counter()
                if done >= items:
                    break
                if all(p.poll() is not None for p in procs):
                    raise SystemExit(
                        "the workers stopped early: "
                        + b"".join(p.stderr.read() for p in procs if p.stderr).decode()[-2000:]
                    )
                time.sleep(0.05)
        last = time.perf_counter()
        pg_cpu = _tree_cpu(pg.pid) - pg_cpu0
        worker_cpu = 0.0
        for p in procs:
            _, _, usage = os.wait4(p.pid, 0)  # the exit status is Popen's no longer; only CPU is wanted
            worker_cpu += usage.ru_utime + usage.ru_stime
    assert first is not None
    sequential = items * calls_per_item(False) * latency
    return {
        "items": items,
        "workers": workers,
        "concurrency": concurrency,
        "latency_s": latency,
        "start_up_s": round(first - started, 2),
        "first_lease_to_last_record_s": round(last - first, 2),
        "speedup_vs_sequential": round(sequential / (last - first), 1),
        # Whole lives of the workers (start-up included) and PostgreSQL's CPU from the first worker's
        # start to the last record: where the two cores went.
        "workers_cpu_s": round(worker_cpu, 2),
        "postgres_cpu_s": round(pg_cpu, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="in flight, shared by the workers")
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    print(json.dumps(measure(args.items, args.workers, args.concurrency, args.latency), indent=2))


if __name__ == "__main__":
    main()
