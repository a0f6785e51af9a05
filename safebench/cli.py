"""`safebench` command line: evaluate, validate, import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from safebench import event_loop
from safebench.agents import AgentCardError
from safebench.cli_common import console as make_console
from safebench.cli_common import (
    err,
    exit_on_errors,
    fail,
    jury_option,
    load_models,
    model_option,
    one_line,
    print_outcome,
)
from safebench.config import ConfigError, JuryConfig, RetrySettings, RunConfig
from safebench.dataset import DatasetInvalid, format_problems, resolve_dataset_dir, validate_dataset
from safebench.dataset.validate import DatasetUnsuitable
from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError
from safebench.run_setup import CONFIG_FILE, resume_config, saved_config
from safebench.store import RunConflict

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Safety evaluation of multimodal LLMs.")


def _version(value: bool) -> None:
    if value:
        from safebench import __version__

        print(f"safebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Safety evaluation of multimodal LLMs."""


OFFLINE_TARGET = "scripted:mixed"


def _given(out: Path, resume: bool, named: dict[str, ModelConfig], options: dict[str, Any]) -> dict[str, Any]:
    """The RunConfig fields set on the command line (None means "not given")."""
    given = {k: v for k, v in options.items() if v is not None and k in RunConfig.model_fields}
    if options["target"]:
        given["targets"] = [model_option(t, named) for t in options["target"]]
    if options["max_attempts"] is not None:
        given["retry"] = RetrySettings(max_attempts=options["max_attempts"])
    if options.get("target_template"):
        # One template for every target (over a models file's prompt_template): on --resume, the saved
        # targets with it, so that a different template is named as a change of the run.
        from safebench.target_templates import cli_ref

        ref = cli_ref(options["target_template"])
        if "targets" in given:
            targets = given["targets"]
        elif resume and (out / CONFIG_FILE).is_file():
            targets = saved_config(out).targets
        else:
            targets = [ModelConfig(spec=OFFLINE_TARGET)]
        given["targets"] = [t.model_copy(update={"prompt_template": ref}) for t in targets]
    jury, max_rounds = options["jury"], options["max_rounds"]
    if jury is not None or max_rounds is not None:
        if jury is not None:
            config = jury_option(jury, named)
        elif resume and (out / CONFIG_FILE).is_file():
            config = saved_config(out).jury  # --max-rounds alone changes the saved jury
        else:
            config = JuryConfig()
        given["jury"] = config if max_rounds is None else config.model_copy(update={"max_rounds": max_rounds})
    return given


def _run_config(out: Path, resume: bool, given: dict[str, Any]) -> RunConfig:
    """A new run from the options or, with --resume, the run saved in `out`: options need not be
    retyped, and one that differs from the saved run is named."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a run directory; choose a folder")
    if any((parent / "items.jsonl").is_file() for parent in (out, *out.parents)):
        raise ConfigError(f"--out {out} is inside a dataset folder; write the run somewhere else")
    if resume and (out / CONFIG_FILE).is_file():
        return resume_config(out, given)
    given.setdefault("targets", [ModelConfig(spec=OFFLINE_TARGET)])
    return RunConfig(out=out, **given)


@app.command()
def evaluate(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="run directory (results, metrics, store); with --store, optional"),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="dataset folder, or 'sample' for the bundled one [default: sample]")
    ] = None,
    target: Annotated[list[str] | None, typer.Option(help="target model spec; repeat for several")] = None,
    jury: Annotated[
        str | None, typer.Option(help="one model spec for all jurors, or a jury YAML file")
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="YAML of named model settings (base_url, key env, ...)")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="items judged at once [default: 8]")] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="local processes sharing the items and the concurrency, for more than one CPU core's "
            "worth of orchestration (fast local servers) [default: 1]",
        ),
    ] = None,
    max_rounds: Annotated[int | None, typer.Option(min=0, help="rebuttal rounds at most")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N items")] = None,
    modality: Annotated[
        str | None,
        typer.Option(help="what the target gets: text, image, audio or audio+text [default: image]"),
    ] = None,
    voice: Annotated[
        str | None,
        typer.Option(help="which recording audio modalities play: male or female [default: female]"),
    ] = None,
    image_condition: Annotated[
        str | None,
        typer.Option(
            help="which image the target and jury see: dataset, none, black, white, noise, random or "
            "first-attempt (see docs/conditions.md) [default: dataset]"
        ),
    ] = None,
    target_template: Annotated[
        str | None,
        typer.Option(
            help="Jinja template of the text every target is sent: a bundled name (poc_wrapper) or a "
            "file; variables query, image_text, scenario, category"
        ),
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(min=1, help="attempts per model call (retries on 429/5xx) [default: 4]")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="finish the run in --out with its saved settings")
    ] = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="resume, rerunning exactly the records that are errors")
    ] = False,
    allow_errors: Annotated[
        bool, typer.Option("--allow-errors", help="exit 0 even when some records are errors")
    ] = False,
    calibration: Annotated[
        Path | None, typer.Option(help="calibration.json of the jury: metrics add the corrected ASR")
    ] = None,
    by: Annotated[str, typer.Option(help="rows of the summary table: category or scenario")] = "category",
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress or table; for scripts")] = False,
    store: Annotated[
        str | None,
        typer.Option(help="a shared run store, postgresql://... [env: SAFEBENCH_STORE]; needs --run"),
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="the shared run's name (with --store)")] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="with --store: create the run and its work, leave it to workers")
    ] = False,
) -> None:
    """Have target models answer a dataset and a jury judge every answer.

    With --store and --run the run lives in PostgreSQL and any number of `safebench worker` processes
    share it; this command then also works it, as one worker, unless --submit.

    Exit status: 0 when no record is an error, 3 when some are (0 with --allow-errors), 2 on bad input.
    """
    console = make_console(quiet)
    if by not in ("category", "scenario"):
        raise fail(f"--by {by!r}: choose category or scenario")
    resume = resume or retry_errors
    from safebench.store_url import store_url

    shared_url = store_url(store) if (store or run or submit) else None
    if run or submit or store:
        if not (shared_url and run):
            raise fail("a shared run needs both --store (or SAFEBENCH_STORE) and --run NAME")
    elif out is None:
        raise fail("--out is required (the run directory)")
    options = {
        "dataset": dataset,
        "target": target,
        "jury": jury,
        "concurrency": concurrency,
        "processes": processes,
        "max_rounds": max_rounds,
        "limit": limit,
        "modality": modality,
        "voice": voice,
        "max_attempts": max_attempts,
        "calibration": calibration,
        "image_condition": image_condition,
        "target_template": target_template,
    }
    if shared_url is not None:
        assert run is not None
        from safebench.cli_store import evaluate_shared

        if processes is not None and processes > 1:
            raise fail("--processes is for local runs; a shared run scales with `safebench worker` processes")

        given_out = out
        try:
            given = _given(out or Path(run), False, load_models(models), options)
        except (ConfigError, ValueError) as exc:
            raise fail(one_line(exc)) from None
        evaluate_shared(
            shared_url, run, given_out, given, resume, retry_errors, submit, by, quiet, allow_errors
        )
        return
    assert out is not None
    try:
        config = _run_config(out, resume, _given(out, resume, load_models(models), options))
    except (ConfigError, ValueError) as exc:
        raise fail(one_line(exc)) from None

    from safebench.progress import RunDisplay
    from safebench.runner import Evaluation

    evaluation = Evaluation(config, resume=resume, retry_errors=retry_errors, argv=sys.argv)
    try:
        dataset_obj = evaluation.prepare()
    except DatasetUnsuitable as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise fail(
            f"dataset {config.dataset} cannot be evaluated with --modality {config.modality} "
            f"--voice {config.voice}: {len(exc.problems)} problem(s); nothing was started"
        ) from None
    except DatasetInvalid as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise fail(
            f"dataset {config.dataset} is invalid: {len(exc.problems)} problem(s); nothing was started"
        ) from None
    except (ModelSpecError, ConfigError, AgentCardError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None

    _header(console, evaluation, dataset_obj)
    display = RunDisplay(console)
    evaluation.on_event = display
    try:
        with display:
            outcome = event_loop.run(evaluation.run())
    except RunConflict as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print(
            f"interrupted: finished records are saved; resume with: safebench evaluate --resume --out {out}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    print_outcome(console, outcome, by)
    exit_on_errors(outcome.errors, allow_errors, f"safebench evaluate --retry-errors --out {out}")


def _jury_line(evaluation: Any) -> str:
    """`5 jurors: civil_liberties (openai:gpt-4o), …`, slots on one model folded together."""
    slots = evaluation.resolved.public["jury"]
    specs = {s["spec"] for s in slots}
    if len(specs) == 1:
        return f"jury {len(slots)} × {next(iter(specs))}"
    return "jury " + ", ".join(f"{s['card']} ({s['spec']})" for s in slots)


def _header(console: Console, evaluation: Any, dataset: Any) -> None:
    config = evaluation.config
    n = min(len(dataset.items), config.limit or len(dataset.items))
    items = f"{n} of {len(dataset.items)} items" if n < len(dataset.items) else f"{n} items"
    console.print(
        f"[bold]safebench[/] · dataset {escape(str(dataset.root))} ({items}) · "
        f"targets {escape(', '.join(t.id for t in config.targets))} · {escape(_jury_line(evaluation))} · "
        f"out {escape(str(config.out))}",
        highlight=False,
    )
    stand_ins = evaluation.resolved.stand_ins
    if stand_ins and all(m.provider == "scripted" for m in evaluation.resolved.models):
        console.print(
            "[yellow]Offline run on scripted stand-ins (not language models): it shows the pipeline, "
            "not any model's safety. Pass --target and --jury to evaluate real models.[/]"
        )
    elif stand_ins:
        console.print(
            "[yellow]Scripted stand-ins (not language models) in this run: "
            f"{escape('; '.join(stand_ins))}[/]",
            highlight=False,
        )


@app.command()
def validate(directory: Annotated[str, typer.Argument(help="dataset folder, or 'sample'")]) -> None:
    """Check a dataset folder and list every problem (exit 2 if any)."""
    root = resolve_dataset_dir(directory)
    problems = validate_dataset(root)
    if problems:
        print(format_problems(problems))
        raise fail(f"{len(problems)} problem(s) in {root}")
    print(f"{root}: valid")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL file of another benchmark")],
    map_: Annotated[str, typer.Option("--map", help="text=COL,scenario=COL[,category=COL,id=COL,image=COL]")],
    out: Annotated[Path, typer.Option("--out", help="dataset folder to write")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace what an earlier import wrote in --out")
    ] = False,
) -> None:
    """Turn another benchmark's file into a safebench dataset folder."""
    from safebench.dataset.importer import ImportFailed, import_file, parse_mapping

    try:
        report = import_file(file, parse_mapping(map_), out, overwrite=overwrite)
    except (ImportFailed, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    print(report)


from safebench.cli_calibrate import calibrate_command, metrics_command  # noqa: E402
from safebench.cli_generate import generate_command, taxonomy_command  # noqa: E402
from safebench.cli_report import report_command  # noqa: E402
from safebench.cli_store import export_command, status_command, worker_command  # noqa: E402
from safebench.cli_transform import subset_command, transform_command  # noqa: E402

app.command("taxonomy")(taxonomy_command)
app.command("generate")(generate_command)
app.command("calibrate")(calibrate_command)
app.command("metrics")(metrics_command)
app.command("report")(report_command)
app.command("transform")(transform_command)
app.command("subset")(subset_command)
app.command("worker")(worker_command)
app.command("status")(status_command)
app.command("export")(export_command)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
