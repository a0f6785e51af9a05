"""Peak memory of the evaluation runner for a small and a large run against a 0 ms loopback server.

    python benchmarks/memory.py [--sizes 1000,10000] [--concurrency 32] [--max-ratio 1.3] [--json]

Each size runs in a fresh child process (peaks never mix); the stub server runs in another process, so
only the runner's memory is measured. Reported per size: RSS after imports (baseline), RSS once the
dataset is loaded, peak RSS (ru_maxrss) up to the last record and overall (a peak set while writing
results and metrics shows as a difference), wall and CPU time. Exits 1 when peak(largest) /
peak(smallest) exceeds --max-ratio (1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, build_dataset, rss_mb, run_config, serve


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # ru_maxrss is in KiB on Linux


def child(dataset: str, out: str, base_url: str, concurrency: int) -> dict[str, Any]:
    """One run in this (fresh) process: imports first, then the baseline, then the run and its peaks."""
    import langchain_openai  # noqa: F401  (the run imports it anyway; count it in the baseline)

    from safebench import event_loop
    from safebench.runner import evaluate_async

    baseline = rss_mb()
    marks: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        # Where the peak is set: loading the dataset, the items in flight, or writing results/metrics.
        if event["event"] == "start":
            marks["after_prepare"] = rss_mb()
        elif event["event"] == "record":
            marks["peak_items"] = _peak_mb()

    config = run_config(Path(dataset), base_url, Path(out), concurrency, summarize=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = event_loop.run(evaluate_async(config, on_event=on_event))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "records": outcome.records,
        "baseline_rss_mb": round(baseline, 1),
        "rss_after_prepare_mb": round(marks["after_prepare"], 1),
        "peak_until_last_record_mb": round(marks["peak_items"], 1),
        "peak_rss_mb": round(_peak_mb(), 1),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
    }


def run_size(items: int, root: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    dataset = build_dataset(root / f"dataset-{items}", items)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable,
        __file__,
        "--child",
        str(dataset),
        str(root / f"run-{items}"),
        base_url,
        str(concurrency),
    ]
    load = os.getloadavg()[0]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {items}-item run failed:\n{done.stderr[-4000:]}")
    return {
        "items": items,
        "load_avg_1m_before": round(load, 2),
        **json.loads(done.stdout.strip().splitlines()[-1]),
    }


def table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"safebench peak memory (0 ms server, concurrency {result['concurrency']})")
    columns = (
        "items",
        "RSS after imports",
        "after prepare",
        "peak until last record",
        "peak RSS",
        "peak - baseline",
        "wall",
        "CPU",
        "records",
    )
    for name in columns:
        view.add_column(name, justify="right")
    for run in result["runs"]:
        view.add_row(
            str(run["items"]),
            f"{run['baseline_rss_mb']:.0f} MB",
            f"{run['rss_after_prepare_mb']:.0f} MB",
            f"{run['peak_until_last_record_mb']:.0f} MB",
            f"{run['peak_rss_mb']:.0f} MB",
            f"{run['peak_rss_mb'] - run['baseline_rss_mb']:.0f} MB",
            f"{run['wall_s']:.0f} s",
            f"{run['cpu_s']:.0f} s",
            str(run["records"]),
        )
    Console().print(view)
    print(
        f"peak ratio {result['ratio']:.2f} (max {result['max_ratio']}); "
        f"growth over baseline ratio {result['growth_ratio']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        dataset, out, base_url, concurrency = argv[1:5]
        print(json.dumps(child(dataset, out, base_url, int(concurrency))))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated item counts, smallest first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-ratio", type=float, default=1.3)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="safebench-bench-") as tmp, serve(0.0) as server:
        runs = [run_size(n, Path(tmp), server.base_url, args.concurrency) for n in sizes]
    small, large = runs[0], runs[-1]
    result = {
        "concurrency": args.concurrency,
        "runs": runs,
        "ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "growth_ratio": round(
            (large["peak_rss_mb"] - large["baseline_rss_mb"])
            / (small["peak_rss_mb"] - small["baseline_rss_mb"]),
            3,
        ),
        "max_ratio": args.max_ratio,
    }
    result["pass"] = result["ratio"] <= args.max_ratio and all(r["records"] == r["items"] for r in runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        table(result)
        print("PASS" if result["pass"] else "FAIL")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
