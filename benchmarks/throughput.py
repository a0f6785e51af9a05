"""Throughput of the evaluation runner against a loopback OpenAI-compatible server with a fixed latency.

    python benchmarks/throughput.py [--items 200] [--concurrency 32] [--latency 0.1] [--summarize]
                                    [--server process|thread] [--max-cpu-ratio 1.3] [--min-speedup 25]
                                    [--no-floor] [--json]

Every item is unanimous, so its critical path is 2 sequential calls (target, then the five jurors in
parallel), 3 with --summarize. The ideal wall time is ceil(items / concurrency) x path x latency (the
runner's workers take items in waves); items x path x latency / concurrency is the fluid bound.

Before the run, in the same process and event loop and against the same server, the same calls are made
directly (benchmarks/floor.py): a bare ChatOpenAI / with_structured_output loop and raw openai SDK
calls. Exits 1 when the runner's CPU per call (items phase) exceeds --max-cpu-ratio x the LangChain
floor's, when the run is less than --min-speedup x faster than its calls made one at a time (servers
with latency), or when records or calls per item are off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ServerMode, build_dataset, calls_per_item, critical_path, run_config, serve
from floor import measure_floor

from safebench import event_loop
from safebench.runner import evaluate_async


async def _run(config: Any) -> tuple[Any, dict[str, float]]:
    """The run, with wall-clock marks and the process's CPU time at the start of the items and at the
    last record (so the CPU per call excludes start-up: dataset validation, preflight, model set-up)."""
    marks: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        now = time.perf_counter()
        if event["event"] == "start":
            marks["start"], marks["cpu_start"] = now, time.process_time()
        elif event["event"] == "record":
            marks["last_record"], marks["cpu_last_record"] = now, time.process_time()

    marks["call"], marks["cpu_call"] = time.perf_counter(), time.process_time()
    children0 = _children_cpu()
    outcome = await evaluate_async(config, on_event=on_event)
    marks["end"], marks["cpu_end"] = time.perf_counter(), time.process_time()
    # The run's child processes (--processes), reaped by now; the server is not: it is still running.
    marks["children_cpu"] = _children_cpu() - children0
    return outcome, marks


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _side_by_side(
    config: Any, server: Any, dataset: Path, items: int, concurrency: int, floors: bool
) -> dict[str, Any]:
    """The floors and the run in one event loop against one server; the floors first, so that one-off
    costs of the shared libraries (first requests, schema builds) are not charged to the run."""
    floor = {}
    if floors:
        for kind in ("langchain", "sdk"):
            floor[kind] = await measure_floor(kind, server.base_url, dataset, items, concurrency)  # type: ignore[arg-type]
    before = server.status()
    outcome, marks = await _run(config)
    return {"outcome": outcome, "marks": marks, "floor": floor, "before": before, "after": server.status()}


def measure(
    items: int,
    concurrency: int,
    latency: float,
    summarize: bool,
    server_mode: ServerMode,
    floors: bool = True,
    processes: int = 1,
) -> dict[str, Any]:
    import langchain_openai  # noqa: F401  (a one-off import the runner does lazily: keep it off the clock)

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="safebench-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dataset = build_dataset(root / "dataset", items)
        setup = time.perf_counter() - t0
        with serve(latency, server_mode) as server:
            config = run_config(dataset, server.base_url, root / "run", concurrency, summarize, processes)
            # The floors make the same calls as an unanimous item without the summary.
            got = event_loop.run(
                _side_by_side(config, server, dataset, items, concurrency, floors and not summarize)
            )
    outcome, marks, floor, before, after = (got[k] for k in ("outcome", "marks", "floor", "before", "after"))
    metrics = next(iter(outcome.metrics.values()))
    path = critical_path(summarize)
    wall = marks["end"] - marks["call"]
    ideal = math.ceil(items / concurrency) * path * latency
    counts = {k: v - before["counts"].get(k, 0) for k, v in after["counts"].items()}
    requests = sum(counts.values())
    server_cpu = None if after["cpu_s"] is None else after["cpu_s"] - before["cpu_s"]
    cpu = marks["cpu_end"] - marks["cpu_call"]
    items_cpu = marks["cpu_last_record"] - marks["cpu_start"]
    calls = metrics["calls_per_item"] * items
    sequential = calls * latency  # every call made one at a time
    items_wall = marks["last_record"] - marks["start"]
    result = {
        "items": items,
        "concurrency": concurrency,
        "processes": processes,
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
        "items_ratio": round(items_wall / ideal, 3) if ideal else None,
        "sequential_s": round(sequential, 3),
        "speedup_vs_sequential": round(sequential / wall, 2) if latency else None,
        "items_speedup_vs_sequential": round(sequential / items_wall, 2) if latency else None,
        "prepare_s": round(marks["start"] - marks["call"], 3),
        "items_s": round(items_wall, 3),
        "finish_s": round(marks["end"] - marks["last_record"], 3),
        "throughput_items_per_s": round(items / wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_item": round(1000 * cpu / items, 2),
        # Start-up (validation, preflight, model set-up) and the finish (results, metrics, report) excluded.
        "items_cpu_s": round(items_cpu, 3),
        # Of the run's own process: with --processes the others' share is in children_cpu_s.
        "cpu_ms_per_call": round(1000 * items_cpu / calls, 3),
        # The child processes' whole lives (start-up included), and CPU per call of all processes.
        "children_cpu_s": round(marks["children_cpu"], 3),
        "all_processes_cpu_ms_per_call": round(1000 * (cpu + marks["children_cpu"]) / calls, 3),
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
        "floor": floor,
    }
    if floor and processes == 1:
        langchain = floor["langchain"]["cpu_ms_per_call"]
        result["cpu_vs_langchain"] = round(result["cpu_ms_per_call"] / langchain, 3)
        result["cpu_vs_sdk"] = round(result["cpu_ms_per_call"] / floor["sdk"]["cpu_ms_per_call"], 3)
    return result


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
        ("sum of call latencies (one call at a time)", f"{result['sequential_s']:.1f} s"),
        ("speed-up over one call at a time", _maybe(result["speedup_vs_sequential"], "x")),
        ("  items phase only", _maybe(result["items_speedup_vs_sequential"], "x")),
        ("throughput", f"{result['throughput_items_per_s']:.1f} items/s"),
        ("runner CPU time", f"{result['cpu_s']:.2f} s ({result['cpu_ms_per_item']:.1f} ms/item)"),
        ("runner CPU per call (items phase)", f"{result['cpu_ms_per_call']:.2f} ms"),
        ("calls per item: expected", str(result["calls_per_item_expected"])),
        ("calls per item: metrics.json", f"{result['calls_per_item_metrics']:.2f}"),
        ("calls per item: server", f"{result['calls_per_item_server']:.2f}"),
        ("records (decided)", f"{result['records']} ({result['decided']})"),
        ("load average (1 min) before the run", f"{result['load_avg_1m_before']:.2f}"),
    ]
    for kind, name in (("langchain", "ChatOpenAI.with_structured_output"), ("sdk", "openai.AsyncOpenAI")):
        if kind in result["floor"]:
            rows.append((f"floor CPU per call: {name}", f"{result['floor'][kind]['cpu_ms_per_call']:.2f} ms"))
    if result["floor"]:
        rows.append(("runner / LangChain floor (CPU per call)", f"{result['cpu_vs_langchain']:.2f}"))
        rows.append(("runner / raw SDK (CPU per call)", f"{result['cpu_vs_sdk']:.2f}"))
    if result["processes"] > 1:
        rows.append(("processes", str(result["processes"])))
        rows.append(("child processes' CPU time (start-up included)", f"{result['children_cpu_s']:.2f} s"))
        rows.append(("CPU per call, all processes", f"{result['all_processes_cpu_ms_per_call']:.2f} ms"))
    if result["server_cpu_s"] is not None:
        share = f"{result['server_cpu_s']:.2f} s ({100 * result['server_cpu_share']:.0f}% of one core)"
        rows.append(("server CPU time (child process)", share))
    for row in rows:
        view.add_row(*row)
    Console().print(view)


def _maybe(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def verdict(result: dict[str, Any], max_cpu_ratio: float, min_speedup: float) -> list[str]:
    """The targets this result misses (empty: all met)."""
    missed = []
    if result["records"] != result["items"]:
        missed.append(f"{result['records']} records for {result['items']} items")
    if result["calls_per_item_server"] != result["calls_per_item_expected"]:
        missed.append(f"{result['calls_per_item_server']} calls per item at the server")
    if result["floor"] and result["cpu_vs_langchain"] > max_cpu_ratio:
        missed.append(f"CPU per call {result['cpu_vs_langchain']} x the LangChain floor > {max_cpu_ratio}")
    speedup = result["speedup_vs_sequential"]
    if speedup is not None and speedup < min_speedup:
        missed.append(f"speed-up {speedup} x over one call at a time < {min_speedup}")
    return missed


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
    parser.add_argument(
        "--max-cpu-ratio", type=float, default=1.3, help="runner CPU per call / the LangChain floor's"
    )
    parser.add_argument(
        "--min-speedup", type=float, default=25.0, help="sum of call latencies / wall time (latency > 0)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floors (the run alone)")
    parser.add_argument(
        "--processes", type=int, default=1, help="the run's --processes (the CPU ratio is checked at 1 only)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args(argv)
    result = measure(
        args.items,
        args.concurrency,
        args.latency,
        args.summarize,
        args.server,
        floors=not args.no_floor and args.processes == 1,  # the floors are one process
        processes=args.processes,
    )
    missed = verdict(result, args.max_cpu_ratio, args.min_speedup)
    result["pass"], result["missed"] = not missed, missed
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        table(result)
        print("PASS" if not missed else "FAIL: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
