"""Build time and size of the HTML report (`safebench.html_report.build_report`) of a large run.

    python benchmarks/report.py [--sizes 1000,10000] [--repeat 2] [--max-seconds 15] [--figures]
                                [--runs-dir DIR] [--json]

For each size N, a real run directory of N records is made first (off the clock): the real runner
(`safebench.runner.evaluate_async`) on a synthetic dataset of N/2 items with two scripted stand-in
targets (`scripted:mixed`, `scripted:refuser`) and the default scripted jury, so results.jsonl,
metrics.json, config.yaml, run.json and run.sqlite are exactly what a run writes. Then the report of
that run is built `--repeat` times; the table shows the first build (cold: templates compiled, caches
empty) and the fastest, the page's size, and with --figures one more build that also writes the PNG/PDF
figures. Exits 1 when any build of any size takes longer than --max-seconds (15), or records are missing.

Making the 10,000-record run takes a few minutes; --runs-dir keeps the runs there and reuses them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import build_dataset

from safebench import event_loop
from safebench.config import RunConfig
from safebench.runner import RESULTS_FILE, evaluate_async

TARGETS = ["scripted:mixed", "scripted:refuser"]
BuildReport = Callable[..., Path]


def make_run(root: Path, records: int, concurrency: int) -> tuple[Path, float]:
    """A finished run of `records` records under `root` (reused when one is already there), and the
    seconds it took to make (0 when reused)."""
    run_dir = root / f"run-{records}"
    if (run_dir / "run.json").is_file() and _count(run_dir / RESULTS_FILE) == records:
        return run_dir, 0.0
    t0 = time.perf_counter()
    dataset = build_dataset(root / f"dataset-{records}", records // len(TARGETS))
    config = RunConfig(dataset=str(dataset), targets=TARGETS, out=run_dir, concurrency=concurrency)
    event_loop.run(evaluate_async(config))
    return run_dir, time.perf_counter() - t0


def _count(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def load_build_report() -> tuple[BuildReport, float]:
    """`build_report` and the seconds its import took. The package imports the page's modules lazily,
    on the first build, so that cost is in the first (cold) build, not here."""
    t0 = time.perf_counter()
    module = importlib.import_module("safebench.html_report")
    return module.build_report, time.perf_counter() - t0


def timed(build: BuildReport, run_dir: Path, out: Path, **kwargs: Any) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    build([run_dir], out, **kwargs)
    return time.perf_counter() - wall0, time.process_time() - cpu0


def measure(
    sizes: list[int], repeat: int, figures: bool, concurrency: int, runs_dir: Path | None
) -> dict[str, Any]:
    build, import_s = load_build_report()
    results = []
    with tempfile.TemporaryDirectory(prefix="safebench-report-bench-") as tmp:
        root = runs_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            run_dir, setup_s = make_run(root, size, concurrency)
            out = Path(tmp) / f"report-{size}.html"
            # Other work on the machine inflates every figure: record the load next to the times.
            load = os.getloadavg()[0]
            builds = [timed(build, run_dir, out) for _ in range(repeat)]
            row: dict[str, Any] = {
                "records": _count(run_dir / RESULTS_FILE),
                "results_jsonl_mb": round((run_dir / RESULTS_FILE).stat().st_size / 1e6, 2),
                "run_setup_s": round(setup_s, 1),
                "build_first_s": round(builds[0][0], 3),
                "build_best_s": round(min(w for w, _ in builds), 3),
                "build_cpu_first_s": round(builds[0][1], 3),
                "report_mb": round(out.stat().st_size / 1e6, 3),
                "load_avg_1m_before": round(load, 2),
            }
            if figures:
                wall, _ = timed(build, run_dir, out, figures_dir=Path(tmp) / f"figures-{size}")
                row["build_with_figures_s"] = round(wall, 3)
            results.append(row)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux
    return {"import_s": round(import_s, 3), "repeat": repeat, "sizes": results, "peak_rss_mb": round(peak, 1)}


def table(result: dict[str, Any], max_seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(
        title=f"safebench report build (target < {max_seconds:g} s per build; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB)"
    )
    columns = ["records", "jsonl", "first", f"best of {result['repeat']}", "CPU first", "html", "load"]
    figures = any("build_with_figures_s" in r for r in result["sizes"])
    if figures:
        columns.append("+ PNG/PDF")
    for column in columns:
        view.add_column(column, justify="right")
    for r in result["sizes"]:
        row = [
            f"{r['records']:,}",
            f"{r['results_jsonl_mb']:.1f} MB",
            f"{r['build_first_s']:.2f} s",
            f"{r['build_best_s']:.2f} s",
            f"{r['build_cpu_first_s']:.2f} s",
            f"{r['report_mb']:.2f} MB",
            f"{r['load_avg_1m_before']:.2f}",
        ]
        if figures:
            row.append(f"{r['build_with_figures_s']:.2f} s")
        view.add_row(*row)
    Console().print(view)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated record counts")
    parser.add_argument("--repeat", type=int, default=2, help="builds per size (first = cold)")
    parser.add_argument("--max-seconds", type=float, default=15.0)
    parser.add_argument("--figures", action="store_true", help="also time a build that writes PNG/PDF")
    parser.add_argument("--concurrency", type=int, default=64, help="of the run made for each size")
    parser.add_argument("--runs-dir", type=Path, help="keep the runs here and reuse them next time")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(s < len(TARGETS) or s % len(TARGETS) for s in sizes):
        parser.error(f"every size must be a positive multiple of {len(TARGETS)} (one record per target)")
    result = measure(sizes, max(args.repeat, 1), args.figures, args.concurrency, args.runs_dir)
    slow = [r for r in result["sizes"] if r["build_first_s"] > args.max_seconds]
    short = [r for r, size in zip(result["sizes"], sizes, strict=True) if r["records"] != size]
    result["max_seconds"] = args.max_seconds
    result["pass"] = not slow and not short
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        table(result, args.max_seconds)
        print("PASS" if result["pass"] else f"FAIL: slower than {args.max_seconds:g} s or records missing")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
