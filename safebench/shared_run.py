"""A run shared by worker processes through a PostgreSQL run store: submit it, work it, export it.

`submit` binds a run name to its identity, saves its configuration (secrets are never saved: keys come
from each host's environment through `api_key_env`) and queues every (target, item). Any number of
`work` calls, on any hosts, lease items (`safebench.work_pg`), run each through the same evaluation
graph as a local run with its checkpoints in PostgreSQL, and write its record, which completes the
item. A worker killed with -9 holds its leases until they expire; the items then go to another
worker and resume from their checkpoints, so no finished target answer or juror opinion is bought
twice. `export` writes the usual RUN_DIR files from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from safebench.config import ConfigError, RunConfig
from safebench.dataset import load_dataset, resolve_dataset_dir
from safebench.run_info import RunInfo
from safebench.run_setup import CONFIG_FILE, Resolved, config_from_saved, identity
from safebench.runner import Evaluation, RunOutcome, finish_run, write_report

if TYPE_CHECKING:
    from safebench.store_pg import PostgresRunStore

__all__ = [
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "WorkerOutcome",
    "export",
    "open_store",
    "scratch_dir",
    "stored_config",
    "submit",
    "work",
]

LEASE_SECONDS = 120.0  # a killed worker's items wait this long for another worker
POLL_SECONDS = 2.0  # how often an idle worker looks for work (others' leases may expire)
# An item leased this many times without a record keeps killing (or outlasting) its workers, say by
# running a host out of memory: the next lease records it as an error instead of running it again.
MAX_ATTEMPTS = 5


def open_store(url: str, run: str) -> PostgresRunStore:
    """The run store at `url` for run `run`; one line (StoreError or ConfigError) when it cannot be."""
    try:
        from safebench.store_pg import PostgresRunStore
    except ImportError as exc:  # psycopg and the Postgres checkpointer are an extra
        missing = exc.name or "psycopg"
        raise ConfigError(
            f"--store needs the postgres extra: pip install 'safebench[postgres]' ({missing} is missing)"
        ) from None
    return PostgresRunStore(url, run)


def scratch_dir(run: str) -> Path:
    """Where a worker keeps what it makes on its own host (condition images): nothing lost if deleted."""
    return Path(tempfile.gettempdir()) / "safebench-runs" / run


def submit(evaluation: Evaluation, store: PostgresRunStore) -> int:
    """Create (or, with resume, rejoin) the named run and queue its work; returns the items added."""
    config = evaluation.config
    dataset = evaluation.prepare()
    store.claim(identity(config), resume=evaluation.resume)
    store.save_config({**config.public_dict(), "resolved": evaluation.resolved.public})
    items = evaluation.items(dataset)
    added = store.submit([(t.id, item.id, pos) for t in config.targets for pos, item in enumerate(items)])
    if evaluation.retry_errors:
        added += store.requeue_errors()
    return added


def stored_config(store: PostgresRunStore, out: Path | None = None) -> RunConfig:
    """The configuration `submit` saved for the run, to be run (or exported) in `out`."""
    saved = store.load_config()
    if saved is None:
        raise ConfigError(
            f"run {store.run!r} does not exist in the store; create it with "
            f"safebench evaluate --store URL --run {store.run} --submit"
        )
    return config_from_saved(saved, f"run {store.run!r} in the store", out or scratch_dir(store.run))


@dataclass
class WorkerOutcome:
    worker_id: str
    records: int  # written by this worker
    remaining: int  # items of its targets without a record when it stopped


async def work(
    evaluation: Evaluation,
    store: PostgresRunStore,
    url: str,
    *,
    targets: list[str] | None = None,
    lease_seconds: float = LEASE_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
) -> WorkerOutcome:
    """Lease and evaluate items of `targets` (labels; default all) until none is left without a record."""
    from safebench.checkpoint_pg import postgres_checkpointer, thread_id
    from safebench.store_pg import new_worker_id

    config = evaluation.config
    dataset = await asyncio.to_thread(evaluation.prepare)
    store.claim(identity(config), resume=True)  # this host's settings make the same run
    labels = [t.id for t in config.targets]
    served = targets or labels
    unknown = [t for t in served if t not in labels]
    if unknown:
        raise ConfigError(
            f"--targets {', '.join(unknown)}: not a target of run {store.run!r} ({', '.join(labels)})"
        )
    await evaluation.make_condition_images(dataset)
    items = {item.id: item for item in evaluation.items(dataset)}
    contexts = {
        ctx.target.label: ctx for ctx in evaluation.contexts([t for t in config.targets if t.id in served])
    }  # type: ignore[union-attr]
    worker_id = new_worker_id()
    written = 0
    # SIGTERM (systemd, SLURM, kill) cancels the work: the `finally` below gives the leases back at once,
    # rather than leaving them to expire. (Not on event loops without signal support.)
    main = asyncio.current_task()
    if main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    await asyncio.to_thread(store.heartbeat, worker_id, lease_seconds)  # appear in `status` at once
    evaluation.on_event({"event": "worker", "worker_id": worker_id, "targets": served})

    async with postgres_checkpointer(url, max_connections=min(config.concurrency, 16) + 1) as saver:
        from graphs.evaluation import build_evaluation_graph

        graph = build_evaluation_graph().compile(checkpointer=saver, name="evaluation")

        async def run_one(lease: Any) -> None:
            nonlocal written
            thread = thread_id(store.run, lease.target, lease.item_id)
            if lease.retry:  # a requeued error starts over, not from its finished checkpoint
                await saver.adelete_thread(thread)
            item = items[lease.item_id]
            if lease.attempts > max_attempts:
                result = evaluation.error_result(
                    contexts[lease.target],
                    item,
                    f"leased {lease.attempts - 1} times and never finished (its workers stopped or "
                    "died, out of memory?); not run again: fix the cause, then evaluate --retry-errors",
                )
            else:
                # Only an item leased before (its worker died or gave it back) can have a checkpoint:
                # the others skip the saver's state query.
                started = lease.attempts > 1 and not lease.retry
                result = await evaluation.one(graph, contexts[lease.target], dataset, item, thread, started)
            # The record completes the item; only then does its checkpoint go (a kill in between loses
            # nothing: a recorded item is never leased again).
            await asyncio.to_thread(store.put, result, lease.position, worker_id=worker_id)
            await saver.adelete_thread(thread)
            written += 1
            evaluation.on_event({"event": "record", "result": result})

        heartbeat = asyncio.create_task(_heartbeat(store, worker_id, lease_seconds))
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = config.concurrency - len(running)
                if free > 0:
                    leases = await asyncio.to_thread(store.lease, worker_id, served, free, lease_seconds)
                    running.update(asyncio.create_task(run_one(lease)) for lease in leases)
                if not running:
                    if await asyncio.to_thread(store.remaining, served) == 0:
                        break
                    await asyncio.sleep(poll_seconds)  # the rest is leased by others; theirs may expire
                    continue
                done, _ = await asyncio.wait(
                    running, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    running.discard(task)
                    task.result()  # a failed record write stops the worker (its leases expire)
        finally:
            heartbeat.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, heartbeat, return_exceptions=True)
            with contextlib.suppress(Exception):  # the database may be what failed
                await asyncio.to_thread(store.release, worker_id)
    remaining = await asyncio.to_thread(store.remaining, served)
    return WorkerOutcome(worker_id=worker_id, records=written, remaining=remaining)


async def _heartbeat(store: PostgresRunStore, worker_id: str, lease_seconds: float) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        await asyncio.to_thread(store.heartbeat, worker_id, lease_seconds)


def export(store: PostgresRunStore, out: Path, argv: list[str] | None = None) -> RunOutcome:
    """RUN_DIR files of the stored run: config.yaml, results.jsonl, metrics.json, run.json, report.html.
    No model is contacted: the models as resolved when the run was submitted come from the store."""
    saved = store.load_config() or {}
    config = stored_config(store, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False, allow_unicode=True))
    dataset = load_dataset(resolve_dataset_dir(config.dataset))
    resolved = Resolved(public=saved.get("resolved") or {"stand_ins": []})
    info = RunInfo(out)
    info.start(dataset, [*config.targets], argv)
    outcome = finish_run(store, config, dataset, resolved, lambda _event: None)
    info.finish(outcome.counts)
    write_report(outcome)
    return outcome
