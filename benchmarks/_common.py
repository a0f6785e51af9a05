"""Shared set-up of the benchmarks: a synthetic dataset, a loopback OpenAI-compatible server, a run config.

The server answers like a well-behaved deployment: the target refuses, every juror answers the same
structured verdict (so every item is unanimous: 1 target call + 5 juror calls, + 1 summary if asked).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
# Benchmark the checkout these scripts sit in, installed or not.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Before anything imports langsmith: a benchmark must never trace (with no network it stalls at exit).
for _var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
    os.environ.pop(_var, None)
os.environ["LANGSMITH_TRACING"] = "false"

from safebench.config import JuryConfig, RunConfig  # noqa: E402
from safebench.dataset import write_dataset  # noqa: E402
from safebench.dataset.typography import render_typography  # noqa: E402
from safebench.models import ModelConfig  # noqa: E402
from safebench.schema import Item  # noqa: E402
from safebench.taxonomy import default_taxonomy  # noqa: E402
from safebench.testing import OpenAIStub  # noqa: E402
from safebench.testing.openai_stub import last_user_text  # noqa: E402

TARGET_MODEL = "bench-target"
JUDGE_MODEL = "bench-judge"
API_KEY = "bench-key"
JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses and gives no details."}
REFUSAL = "I can't help with that request. [details withheld]"
SUMMARY = "All five jurors found that the answer refuses; it is safe."
ServerMode = Literal["process", "thread"]


# ------------------------------------------------------------------------------------------- dataset


def build_dataset(root: Path, items: int, images: int = 4) -> Path:
    """`items` placeholder questions spread round-robin over the default taxonomy's scenarios, all
    sharing `images` typographic images (rendering one per item would dominate the set-up time)."""
    taxonomy = default_taxonomy()
    scenarios = list(taxonomy.scenarios.values())
    paths = []
    for index in range(images):
        rel = f"images/bench-{index:02d}.png"
        render_typography(f"Benchmark placeholder image {index}", root / rel)
        paths.append(rel)
    rows = []
    for index in range(items):
        scenario = scenarios[index % len(scenarios)]
        rows.append(
            Item(
                id=f"bench-{index:06d}",
                scenario=scenario.id,
                category=scenario.category,
                text=f"Placeholder benchmark question {index} about {scenario.name.lower()}?",
                image=paths[index % len(paths)],
            )
        )
    write_dataset(root, taxonomy, rows, "# Benchmark dataset\n\nSynthetic placeholder questions.\n")
    return root


# -------------------------------------------------------------------------------------------- server


def respond(request: dict[str, Any]) -> str | dict[str, Any]:
    """Target: a refusal. Jurors (json_schema or tools): the same verdict. Foreperson: a summary."""
    if request.get("tools"):
        call = request["tools"][0]["function"]["name"]
        return {"tool_calls": [{"name": call, "arguments": JUDGMENT}]}
    if request.get("response_format"):
        return json.dumps(JUDGMENT)
    if request.get("model") == TARGET_MODEL:
        return REFUSAL
    return SUMMARY if last_user_text(request) else REFUSAL


class CountingStub(OpenAIStub):
    """The stub, counting requests per model instead of keeping every body: 10,000 items make 60,000
    bodies, each with a base64 image, which would make the server the memory hog of the benchmark."""

    def __init__(self, latency: float) -> None:
        super().__init__(respond, latency=latency, models=(TARGET_MODEL, JUDGE_MODEL))
        self.counts: Counter[str] = Counter()

    def _record(self, body: dict[str, Any]) -> int | None:
        kind = "structured" if body.get("tools") or body.get("response_format") else "plain"
        with self._lock:
            self.counts[f"{body.get('model')}/{kind}"] += 1
        return None


def _serve(conn: Connection, latency: float) -> None:
    """Child process: run the stub until told to stop, answering status queries in between."""
    with CountingStub(latency) as stub:
        conn.send(stub.base_url)
        while True:
            command = conn.recv()
            with stub._lock:
                conn.send({"counts": dict(stub.counts), "cpu_s": time.process_time()})
            if command == "stop":
                return


@dataclass
class Server:
    base_url: str
    mode: ServerMode
    _conn: Connection | None = None
    _stub: CountingStub | None = None

    def status(self) -> dict[str, Any]:
        """Requests received so far per `model/kind` (kind: structured = juror, plain = target or
        summary) and, for a child-process server, the CPU seconds the server has used."""
        if self._stub is not None:
            with self._stub._lock:
                return {"counts": dict(self._stub.counts), "cpu_s": None}
        assert self._conn is not None
        self._conn.send("status")
        return self._conn.recv()


@contextmanager
def serve(latency: float, mode: ServerMode = "process") -> Iterator[Server]:
    """The stub in a child process (default: it does not share the runner's GIL) or in a thread."""
    if mode == "thread":
        with CountingStub(latency) as stub:
            yield Server(stub.base_url, mode, _stub=stub)
        return
    parent, child = mp.get_context("spawn").Pipe()
    process = mp.get_context("spawn").Process(target=_serve, args=(child, latency), daemon=True)
    process.start()
    try:
        # Wait for the URL, or for the child's death (a script without a __main__ guard, an import error).
        if not wait([parent, process.sentinel], timeout=60) or not parent.poll():
            raise RuntimeError(f"the benchmark server did not start (exit code {process.exitcode})")
        yield Server(parent.recv(), mode, _conn=parent)
    finally:
        if process.is_alive():
            parent.send("stop")
            parent.recv()
        process.join(timeout=10)


# ------------------------------------------------------------------------------------------ run config


def run_config(
    dataset: Path, base_url: str, out: Path, concurrency: int, summarize: bool, processes: int = 1
) -> RunConfig:
    judge = ModelConfig(spec=f"openai:{JUDGE_MODEL}", base_url=base_url, api_key=API_KEY)
    return RunConfig(
        dataset=str(dataset),
        targets=[ModelConfig(spec=f"openai:{TARGET_MODEL}", base_url=base_url, api_key=API_KEY)],
        jury=JuryConfig(model=judge, foreperson=judge, summarize=summarize),
        out=out,
        concurrency=concurrency,
        processes=processes,
    )


def calls_per_item(summarize: bool) -> int:
    """Model calls of a unanimous item: 1 target + 5 jurors (+ 1 foreperson summary)."""
    return 1 + 5 + (1 if summarize else 0)


def critical_path(summarize: bool) -> int:
    """Sequential calls of a unanimous item: the target, then the five jurors in parallel (+ the summary)."""
    return 2 + (1 if summarize else 0)


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
