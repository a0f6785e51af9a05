"""`safebench transform` and `safebench subset`: new dataset folders derived from an existing one.

Exit status: 0 on success, 2 on bad input (one line naming the file, line and field, or the option),
3 when some persuasion rewrites failed (the dataset is written without them; 0 with --allow-errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from safebench.cli_common import console as make_console
from safebench.cli_common import err, fail, load_models, model_option, one_line
from safebench.config import ConfigError
from safebench.dataset import DatasetInvalid
from safebench.providers.registry import ModelSpecError, preflight

__all__ = ["subset_command", "transform_command"]


def _invalid(exc: DatasetInvalid) -> typer.Exit:
    """One line: the first problem (file:line: field: message) and how many there are."""
    more = len(exc.problems) - 1
    tail = f" (and {more} more; list them with: safebench validate {exc.root})" if more > 0 else ""
    return fail(f"dataset {exc.root} is invalid: {exc.problems[0]}{tail}")


class _Counter:
    """A progress bar advanced by the persuasion graph's `persuasion_done` events."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("rewriting", total=None)

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "persuasion_done":
            self.progress.advance(self.task)


def transform_command(
    dataset: Annotated[
        str, typer.Argument(metavar="DATASET", help="dataset folder, or 'sample' for the bundled one")
    ],
    attack: Annotated[str, typer.Option("--attack", help="figstep, prefix or persuasion")],
    out: Annotated[Path, typer.Option("--out", help="new dataset folder to write (must be new or empty)")],
    affirmative: Annotated[
        str, typer.Option(help='prefix: the phrase the answer must begin with [default: "Sure, here is"]')
    ] = "Sure, here is",
    technique: Annotated[
        str, typer.Option(help="persuasion: technique id (see docs/transforms.md)")
    ] = "logical_appeal",
    attacker: Annotated[
        str | None,
        typer.Option(help="persuasion: attacker model spec [default: the scripted stand-in]"),
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="YAML of named model settings (base_url, key env, ...)")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="persuasion: items rewritten at once")] = 8,
    max_attempts: Annotated[
        int | None, typer.Option(min=1, help="attempts per model call (retries on 429/5xx) [default: 4]")
    ] = None,
    allow_errors: Annotated[
        bool, typer.Option("--allow-errors", help="exit 0 even when some rewrites failed")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress; for scripts")] = False,
) -> None:
    """Apply a jailbreak transform (FigStep, affirmative prefix, persuasion) to every item of a dataset."""
    from safebench.retry import RetryPolicy
    from safebench.transforms import ATTACKS, TransformError, transform_dataset
    from safebench.transforms.techniques import get_technique

    console = make_console(quiet)
    if attack not in ATTACKS:
        raise fail(f"--attack {attack!r}: choose one of {', '.join(ATTACKS)}")
    attacker_config = None
    try:
        get_technique(technique)
        if attack == "persuasion" and attacker is not None:
            attacker_config = model_option(attacker, load_models(models))
            preflight(attacker_config)
    except (ModelSpecError, ConfigError, ValueError, OSError) as exc:
        raise fail(one_line(exc)) from None
    retry = RetryPolicy(max_attempts=max_attempts) if max_attempts else None
    # A bar only for the model-driven transform: figstep and prefix take a moment at most.
    progress = Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=attack != "persuasion",
    )
    try:
        with progress:
            report = transform_dataset(
                dataset,
                attack,
                out,
                affirmative=affirmative,
                technique=technique,
                attacker=attacker_config,
                concurrency=concurrency,
                retry=retry,
                on_event=_Counter(progress) if attack == "persuasion" else None,
            )
    except DatasetInvalid as exc:
        raise _invalid(exc) from None
    except (TransformError, ModelSpecError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    if report.stand_in:
        console.print(
            f"[yellow]The attacker is the scripted stand-in {escape(report.stand_in)} "
            "(not a language model): its rewrites are marked placeholders. "
            "Pass --attacker SPEC for a real one.[/]",
            highlight=False,
        )
    # Printed even with --quiet: a script needs to know where the dataset went.
    print(report)
    if report.errors:
        for item_id, error in sorted(report.errors.items()):
            err.print(f"{item_id}: {error}", markup=False, highlight=False, soft_wrap=True)
        if not allow_errors:
            raise typer.Exit(3)


def subset_command(
    dataset: Annotated[
        str, typer.Argument(metavar="DATASET", help="dataset folder, or 'sample' for the bundled one")
    ],
    per_scenario: Annotated[
        int, typer.Option("--per-scenario", min=1, help="items per scenario (all of a smaller scenario)")
    ],
    out: Annotated[Path, typer.Option("--out", help="new dataset folder to write (must be new or empty)")],
    seed: Annotated[int, typer.Option(help="seed of the draw: same seed, same items")] = 0,
) -> None:
    """Draw a stratified, seeded subset (MiniBench): N items per scenario, as a new dataset folder."""
    from safebench.dataset.subset import write_subset
    from safebench.transforms import TransformError

    try:
        report = write_subset(dataset, out, per_scenario, seed)
    except DatasetInvalid as exc:
        raise _invalid(exc) from None
    except (TransformError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    print(report)
