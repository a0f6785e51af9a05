"""Terminal display of a run, driven only by the runner's events (the graphs know nothing of it)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunDisplay:
    """done/total, rate, ETA and unsafe-so-far while a run goes; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]judging"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
        )
        self.task = self.progress.add_task("items", total=None, rate="", status="")
        self.unsafe = self.decided = self.hung = self.error = self.blocked = 0
        self.live = Live(Group(self.progress), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> RunDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)
        if not self.console.is_terminal:
            self.console.print()  # piped: the last progress line has no newline of its own

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.progress.update(self.task, total=event["total"], completed=event["done"])
            if event["done"]:
                self.console.print(f"resuming: {event['done']} of {event['total']} records done")
        elif kind == "process":  # a --processes child died: the others finish its items
            self.console.print(
                f"process {event['slot']} stopped; its {event['requeued']} item(s) in flight went back to "
                "the others (resumed from its checkpoints)",
                highlight=False,
            )
        elif kind == "record":
            verdict = event["result"].verdict
            if verdict.status == "decided":
                self.decided += 1
                self.unsafe += bool(verdict.unsafe)
            elif verdict.status == "hung":
                self.hung += 1
            elif verdict.status == "blocked":
                self.blocked += 1
            else:
                self.error += 1
            self.progress.advance(self.task)
            task = self.progress.tasks[0]
            speed = task.speed or 0.0
            status = f"unsafe {self.unsafe}/{self.decided}"
            if self.hung or self.error or self.blocked:
                status += f" · hung {self.hung} · error {self.error} · blocked {self.blocked}"
            self.progress.update(self.task, rate=f"{speed:.1f} it/s", status=escape(status))
