"""`safebench worker`, `status` and `export`, and `evaluate --store`: runs shared through PostgreSQL.

The store URL comes from `--store` or SAFEBENCH_STORE (better: a password on a command line is visible
to every user of the host); its password is never printed, saved or traced.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from safebench import event_loop
from safebench.cli_common import console as make_console
from safebench.cli_common import err, exit_on_errors, fail, print_outcome
from safebench.config import ConfigError
from safebench.store import RunConflict

if TYPE_CHECKING:
    from safebench.runner import Evaluation
    from safebench.store_pg import PostgresRunStore

StoreOption = Annotated[
    str | None, typer.Option("--store", help="run store URL, postgresql://... [env: SAFEBENCH_STORE]")
]
RunOption = Annotated[str, typer.Option("--run", help="the shared run's name")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="no progress; for scripts")]


def store_url_or_fail(given: str | None) -> str:
    from safebench.store_url import StoreError, store_url, validate_store_url

    url = store_url(given)
    if not url:
        raise fail("no run store: pass --store postgresql://... or set SAFEBENCH_STORE")
    try:
        validate_store_url(url)
    except StoreError as exc:
        raise fail(str(exc)) from None
    return url


@contextmanager
def opened(url: str, run: str) -> Iterator[PostgresRunStore]:
    """The store, with every store, config and conflict error as one line (exit 2)."""
    from safebench.shared_run import open_store
    from safebench.store_url import StoreError, scrub

    try:
        store = open_store(url, run)
    except (StoreError, ConfigError) as exc:
        raise fail(scrub(str(exc), url)) from None
    try:
        yield store
    except (StoreError, ConfigError, RunConflict) as exc:
        raise fail(scrub(str(exc), url)) from None
    finally:
        store.close()


def scrubbed_argv(url: str) -> list[str]:
    """The command line as run.json saves it: the store's password never in it."""
    from safebench.store_url import scrub

    return [scrub(arg, url) for arg in sys.argv]


def work_and_report(
    evaluation: Evaluation,
    store: PostgresRunStore,
    url: str,
    targets: list[str] | None,
    quiet: bool,
    lease_seconds: float | None = None,
    max_attempts: int | None = None,
) -> int:
    """Work the run as one worker with a progress display; returns the records it wrote."""
    from safebench.progress import RunDisplay
    from safebench.shared_run import work

    console = make_console(quiet)
    display = RunDisplay(console)
    evaluation.on_event = display
    progress = store.progress()
    served = targets or [t.target for t in progress.targets]
    total = sum(t.total for t in progress.targets if t.target in served)
    done = sum(t.done for t in progress.targets if t.target in served)
    display({"event": "start", "total": total, "done": done})
    try:
        with display:
            # Unset options keep safebench.shared_run's defaults (one place for them).
            given = {"lease_seconds": lease_seconds, "max_attempts": max_attempts}
            options = {name: value for name, value in given.items() if value is not None}
            outcome = event_loop.run(work(evaluation, store, url, targets=targets, **options))
    except asyncio.CancelledError:  # SIGTERM
        err.print("stopped: this worker's leases are given back", highlight=False, markup=False)
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        err.print(
            "interrupted: finished records are in the store; this worker's items go to others once its "
            "leases expire (or start a worker again)",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130) from None
    print(
        f"worker {outcome.worker_id}: {outcome.records} records written · run {store.run}: "
        f"{outcome.remaining} item(s) of its targets left"
    )
    return outcome.records


def prepared(evaluation: Evaluation) -> None:
    """Dataset and models checked before any work, as `evaluate` does (one line, exit 2)."""
    from safebench.agents import AgentCardError
    from safebench.dataset import DatasetInvalid
    from safebench.providers.registry import ModelSpecError

    try:
        evaluation.prepare()
    except DatasetInvalid as exc:
        raise fail(
            f"dataset {evaluation.config.dataset} is invalid: {len(exc.problems)} problem(s)"
        ) from None
    except (ModelSpecError, ConfigError, AgentCardError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


def worker_command(
    run: RunOption,
    store: StoreOption = None,
    targets: Annotated[
        str | None, typer.Option(help="only these targets (labels, comma-separated) [default: all]")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="items in flight [default: the run's]")
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(min=1, help="lease length: a dead worker's items wait this long [default: 120]"),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="an item leased this many times without a record (it keeps killing its workers) is "
            "recorded as an error instead [default: 5]",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Work a shared run: lease (target, item) work from the store until none is left.

    Any number of workers, on any hosts, may work one run; a worker killed mid-run loses nothing (its
    items go to the others after their leases expire and resume from their checkpoints).
    """
    from safebench.runner import Evaluation
    from safebench.shared_run import stored_config

    url = store_url_or_fail(store)
    served = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    with opened(url, run) as shared:
        config = stored_config(shared)
        if concurrency is not None:
            config = config.model_copy(update={"concurrency": concurrency})
        evaluation = Evaluation(config, resume=True, argv=scrubbed_argv(url))
        prepared(evaluation)
        work_and_report(evaluation, shared, url, served, quiet, lease_seconds, max_attempts)


def status_command(run: RunOption, store: StoreOption = None) -> None:
    """Progress of a shared run: records per target and status, leased and pending items, live workers."""
    url = store_url_or_fail(store)
    with opened(url, run) as shared:
        if not shared.exists():
            raise fail(f"run {run!r} does not exist in the store")
        progress = shared.progress()
    console = make_console()
    table = Table(title=f"run {escape(run)}: {progress.done} of {progress.total} records")
    for column in ("target", "done", "leased", "pending", "records by status"):
        table.add_column(column, justify="left" if column in ("target", "records by status") else "right")
    for t in progress.targets:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(t.statuses.items()))
        table.add_row(escape(t.target), str(t.done), str(t.leased), str(t.pending), escape(statuses))
    console.print(table)
    if progress.workers:
        for w in progress.workers:
            console.print(
                f"worker {escape(w.worker_id)}: {w.leased} leased, {w.written} written, "
                f"seen {w.seen_seconds_ago:.0f} s ago",
                highlight=False,
            )
    else:
        console.print("no live workers", highlight=False)


def export_command(
    run: RunOption,
    out: Annotated[Path, typer.Option("--out", help="run directory to write")],
    store: StoreOption = None,
    by: Annotated[str, typer.Option(help="rows of the summary table: category or scenario")] = "category",
    quiet: QuietOption = False,
) -> None:
    """Write a shared run's results.jsonl, metrics.json, config.yaml, run.json and report.html."""
    from safebench.shared_run import export

    url = store_url_or_fail(store)
    if out.exists() and any(out.iterdir()) and not (out / "run.json").is_file():
        raise fail(f"--out {out} is not empty and not an exported run; choose a new folder")
    with opened(url, run) as shared:
        outcome = export(shared, out, scrubbed_argv(url))
    print_outcome(make_console(quiet), outcome, by)


def evaluate_shared(
    url: str,
    run: str,
    out: Path | None,
    given: dict[str, Any],
    resume: bool,
    retry_errors: bool,
    submit_only: bool,
    by: str,
    quiet: bool,
    allow_errors: bool,
) -> None:
    """`evaluate --store URL --run NAME`: create (or with --resume rejoin) the run and queue its work;
    then, unless --submit, work it as one worker and, with --out, export it when it is complete."""
    from safebench.cli import OFFLINE_TARGET
    from safebench.config import RunConfig
    from safebench.models import ModelConfig
    from safebench.run_setup import IDENTITY_FIELDS
    from safebench.runner import Evaluation
    from safebench.shared_run import export, scratch_dir, stored_config, submit
    from safebench.store_url import redact

    with opened(url, run) as shared:
        if resume:
            changed = sorted(k for k in given if k in IDENTITY_FIELDS)
            if changed:
                raise fail(f"--resume takes run {run!r}'s stored settings; drop {', '.join(changed)}")
            config = stored_config(shared, out)
            if "concurrency" in given:
                config = config.model_copy(update={"concurrency": given["concurrency"]})
        else:
            given.setdefault("targets", [ModelConfig(spec=OFFLINE_TARGET)])
            config = RunConfig(out=out or scratch_dir(run), **given)
        evaluation = Evaluation(config, resume=resume, retry_errors=retry_errors, argv=scrubbed_argv(url))
        prepared(evaluation)
        added = submit(evaluation, shared)
        print(f"run {run}: {added} item(s) queued · store {redact(url)}")
        if submit_only:
            print(f"work it with: safebench worker --run {run} (store from --store or SAFEBENCH_STORE)")
            return
        work_and_report(evaluation, shared, url, None, quiet)
        if out is None:
            print(f"write its files with: safebench export --run {run} --out RUN_DIR")
            return
        outcome = export(shared, out, scrubbed_argv(url))
    print_outcome(make_console(quiet), outcome, by)
    exit_on_errors(outcome.errors, allow_errors, f"safebench evaluate --store URL --run {run} --retry-errors")
