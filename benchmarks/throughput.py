"""Throughput of the evaluation runner against a loopback OpenAI-compatible server with a fixed latency.

    python benchmarks/throughput.py [--items 200] [--concurrency 32] [--latency 0.1] [--summarize]
                                    [--server process|thread] [--max-ratio 1.3] [--json]

Every item is unanimous, so its critical path is 2 sequential calls (target, then the five jurors in
parallel), 3 with --summarize. The ideal wall time is ceil(items / concurrency) x path x latency (the
runner's workers take items in waves); items x path x latency / concurrency is the fluid bound. Exits 1
when wall time / ideal exceeds --max-ratio (default 1.3), so it doubles as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ServerMode, build_dataset, calls_per_item, critical_path, run_config, serve

from safebench.runner import evaluate_async


async def _run(config: Any) -> tuple[Any, dict[str, float]]:
    marks: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        now = time.perf_counter()
        if event["event"] == "start":
            marks["start"] = now
        elif event["event"] == "record":
            marks["last_record"] = now

    marks["call"] = time.perf_counter()
    outcome = await evaluate_async(config, on_event=on_event)
    marks["end"] = time.perf_counter()
    return outcome, marks


def measure(
    items: int, concurrency: int, latency: float, summarize: bool, server_mode: ServerMode
) -> dict[str, Any]:
    import langchain_openai  # noqa: F401  (a one-off import the runner does lazily: keep it off the clock)

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="safebench-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dataset = build_dataset(root / "dataset", items)
        setup = time.perf_counter() - t0
        with serve(latency, server_mode) as server:
            config = run_config(dataset, server.base_url, root / "run", concurrency, summarize)
            before = server.status()
            cpu0 = time.process_time()
            outcome, marks = asyncio.run(_run(config))
            cpu = time.process_time() - cpu0
            after = server.status()
    metrics = next(iter(outcome.metrics.values()))
    path = critical_path(summarize)
    wall = marks["end"] - marks["call"]
    ideal = math.ceil(items / concurrency) * path * latency
    counts = {k: v - before["counts"].get(k, 0) for k, v in after["counts"].items()}
    requests = sum(counts.values())
    server_cpu = None if after["cpu_s"] is None else after["cpu_s"] - before["cpu_s"]
    return {
        "items": items,
        "concurrency": concurrency,
        "latency_s": latency,
        "summarize": summarize,
        "server": server_mode,
        "records": outcome.records,
        "decided": metrics["overall"]["decided"],
        "critical_path_calls": path,
        "ideal_s": round(ideal, 3),
        "fluid_bound_s": round(items * path * latency / concurrency, 3),
        "wall_s": round(wall, 3),
        "ratio": round(wall / ideal, 3) if ideal else None,  # a 0 ms server has no ideal to compare with
        "prepare_s": round(marks["start"] - marks["call"], 3),
        "items_s": round(marks["last_record"] - marks["start"], 3),
        "finish_s": round(marks["end"] - marks["last_record"], 3),
        "throughput_items_per_s": round(items / wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_item": round(1000 * cpu / items, 2),
        "calls_per_item_expected": calls_per_item(summarize),
        "calls_per_item_metrics": metrics["calls_per_item"],
        "calls_per_item_server": round(requests / items, 3),
        "server_requests": counts,
        # The stub's own CPU share of one core during the run: far below 1.0 means it is not the bottleneck.
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "server_cpu_share": None if server_cpu is None else round(server_cpu / wall, 3),
        "dataset_setup_s": round(setup, 3),
        # Other work on the machine inflates every figure; a load near the core count means a busy box.
        "load_avg_1m_before": round(load, 2),
    }


def table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(
        title=f"safebench throughput: {result['items']} items, concurrency {result['concurrency']}, "
        f"server latency {result['latency_s'] * 1000:.0f} ms ({result['server']})"
    )
    view.add_column("measure")
    view.add_column("value", justify="right")
    rows = [
        ("wall time (evaluate_async)", f"{result['wall_s']:.2f} s"),
        ("  prepare (validate dataset, preflight)", f"{result['prepare_s']:.2f} s"),
        ("  items (start → last record)", f"{result['items_s']:.2f} s"),
        ("  finish (results.jsonl, metrics)", f"{result['finish_s']:.2f} s"),
        ("ideal: ceil(N/c) x path x latency", f"{result['ideal_s']:.2f} s"),
        ("fluid bound: N x path x latency / c", f"{result['fluid_bound_s']:.2f} s"),
        ("ratio wall / ideal", "-" if result["ratio"] is None else f"{result['ratio']:.2f}"),
        ("throughput", f"{result['throughput_items_per_s']:.1f} items/s"),
        ("runner CPU time", f"{result['cpu_s']:.2f} s ({result['cpu_ms_per_item']:.1f} ms/item)"),
        ("calls per item: expected", str(result["calls_per_item_expected"])),
        ("calls per item: metrics.json", f"{result['calls_per_item_metrics']:.2f}"),
        ("calls per item: server", f"{result['calls_per_item_server']:.2f}"),
        ("records (decided)", f"{result['records']} ({result['decided']})"),
        ("load average (1 min) before the run", f"{result['load_avg_1m_before']:.2f}"),
    ]
    if result["server_cpu_s"] is not None:
        share = f"{result['server_cpu_s']:.2f} s ({100 * result['server_cpu_share']:.0f}% of one core)"
        rows.append(("server CPU time (child process)", share))
    for row in rows:
        view.add_row(*row)
    Console().print(view)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds")
    parser.add_argument("--summarize", action="store_true", help="the foreperson writes a summary (+1 call)")
    parser.add_argument(
        "--server",
        choices=["process", "thread"],
        default="process",
        help="stub in a child process (default) or in a thread of this process",
    )
    parser.add_argument("--max-ratio", type=float, default=1.3)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args(argv)
    result = measure(args.items, args.concurrency, args.latency, args.summarize, args.server)
    result["max_ratio"] = args.max_ratio
    ratio_ok = result["ratio"] is None or result["ratio"] <= args.max_ratio
    result["pass"] = ratio_ok and result["records"] == args.items
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        table(result)
        print(
            "PASS"
            if result["pass"]
            else f"FAIL: ratio {result['ratio']} > {args.max_ratio} or records missing"
        )
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
