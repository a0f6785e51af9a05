"""`safebench calibrate` (judges against human labels) and `safebench metrics` (recompute a run's
metrics, e.g. with a calibration's corrected ASR, without any model call)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from safebench import event_loop
from safebench.cli_common import console as make_console
from safebench.cli_common import err, fail, jury_option, load_models, one_line
from safebench.config import ConfigError, JuryConfig, RetrySettings
from safebench.dataset import DatasetInvalid, format_problems
from safebench.providers.registry import ModelSpecError
from safebench.store import RunConflict


def calibrate_command(
    labels: Annotated[Path, typer.Argument(help="human-labelled pairs (CSV, JSON or JSONL)")],
    out: Annotated[Path, typer.Option("--out", help="calibration directory")],
    format: Annotated[
        str, typer.Option("--format", help="auto, jailbreakbench, harmbench, msts or table")
    ] = "auto",
    map_: Annotated[
        str | None,
        typer.Option(
            "--map", help="table format: query=COL,response=COL,label=COL|labels=A+B+C[,image=,category=,id=]"
        ),
    ] = None,
    jury: Annotated[
        str | None, typer.Option(help="one model spec for all jurors, a jury YAML file, or 'none'")
    ] = None,
    models: Annotated[Path | None, typer.Option(help="YAML of named model settings")] = None,
    stored_judges: Annotated[
        str, typer.Option("--stored-judges", help="auto, none, COL,COL,... or a CSV of judge outputs (msts)")
    ] = "auto",
    images: Annotated[Path | None, typer.Option(help="folder with the images the labels refer to")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N pairs")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="pairs judged at once")] = 8,
    max_attempts: Annotated[int, typer.Option(min=1, help="attempts per model call")] = 4,
    resume: Annotated[bool, typer.Option("--resume", help="finish an interrupted calibration")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress or table")] = False,
) -> None:
    """Score the jury, each juror alone, the round-0 panel vote and stored judges against human labels."""
    from safebench.calibration.formats import LabelsInvalid, parse_mapping, read_labels
    from safebench.calibration.run import Calibration
    from safebench.calibration.table import calibration_table
    from safebench.progress import RunDisplay

    console = make_console(quiet)
    try:
        mapping = parse_mapping(map_) if map_ else None
        stored: str | Path = Path(stored_judges) if stored_judges.lower().endswith(".csv") else stored_judges
        label_set = read_labels(
            labels, format=format, mapping=mapping, stored_judges=stored, images_dir=images, limit=limit
        )
        named = load_models(models)
        # No --jury: the cards' stand-ins, which the run refuses for real responses unless named.
        jury_config = (
            JuryConfig() if jury is None else None if jury.lower() == "none" else jury_option(jury, named)
        )
    except LabelsInvalid as exc:
        err.print(format_problems(exc.problems), highlight=False, markup=False, soft_wrap=True)
        raise fail(f"{labels}: {len(exc.problems)} problem(s); nothing was started") from None
    except (ConfigError, ValueError, OSError) as exc:
        raise fail(one_line(exc)) from None
    calibration = Calibration(
        label_set,
        out,
        jury_config,
        concurrency=concurrency,
        retry=RetrySettings(max_attempts=max_attempts),
        resume=resume,
        argv=sys.argv,
    )
    try:
        evaluation = calibration.evaluation()
        if evaluation is not None:
            evaluation.prepare()
    except (ModelSpecError, ConfigError, DatasetInvalid) as exc:
        raise fail(one_line(exc) if not isinstance(exc, DatasetInvalid) else str(exc)) from None
    console.print(
        f"[bold]safebench calibrate[/] · {len(label_set.pairs)} pairs ({label_set.format}) · "
        f"stored judges: {', '.join(label_set.judges) or 'none'} · out {out}",
        highlight=False,
        markup=True,
    )
    if evaluation is not None and evaluation.resolved.stand_ins:
        console.print(
            "[yellow]Scripted stand-ins (not language models) judge here: "
            f"{'; '.join(evaluation.resolved.stand_ins)}[/]",
            highlight=False,
        )
    try:
        if evaluation is None:  # stored judges only: nothing to wait for
            report = event_loop.run(calibration.run(None))
        else:
            display = evaluation.on_event = RunDisplay(console)
            with display:
                report = event_loop.run(calibration.run(evaluation))
    except RunConflict as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print(
            f"interrupted; resume with: safebench calibrate {labels} --resume --out {out}", markup=False
        )
        raise typer.Exit(130) from None
    console.print(calibration_table(report))
    console.print(f"{out}/calibration.json · {out}/results.jsonl", highlight=False, markup=False)


def metrics_command(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    calibration: Annotated[
        Path | None, typer.Option(help="calibration.json: adds the jury-corrected ASR (asr_corrected)")
    ] = None,
    by: Annotated[str, typer.Option(help="rows of the table: category or scenario")] = "category",
    quiet: Annotated[bool, typer.Option("--quiet", help="no table")] = False,
) -> None:
    """Recompute RUN_DIR/metrics.json from its saved records, without any model call."""
    from safebench.run_metrics import recompute_metrics

    console = make_console(quiet)
    try:
        metrics, taxonomy = recompute_metrics(run_dir, calibration)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        raise fail(one_line(exc)) from None
    from safebench.report import summary_table

    console.print(summary_table(metrics, taxonomy, by="scenario" if by == "scenario" else "category"))
    console.print(f"{run_dir}/metrics.json", highlight=False, markup=False)
