"""`safebench` command line: evaluate, validate, import."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from safebench.config import ConfigError, JuryConfig, RetrySettings, RunConfig, load_yaml_model
from safebench.dataset import DatasetInvalid, format_problems, resolve_dataset_dir, validate_dataset
from safebench.dataset.validate import DatasetUnsuitable
from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError
from safebench.report import summary_table
from safebench.store import RunConflict

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Safety evaluation of multimodal LLMs.")
err = Console(stderr=True)

OFFLINE_TARGET = "scripted:mixed"


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _load_models(path: Path | None) -> dict[str, ModelConfig]:
    """`--models FILE`: named model settings (`name: {spec: ..., base_url: ...}`) usable as specs."""
    if path is None:
        return {}
    from pydantic import RootModel

    return load_yaml_model(path, RootModel[dict[str, ModelConfig]]).root


def _model(spec: str, named: dict[str, ModelConfig]) -> ModelConfig:
    return named[spec] if spec in named else ModelConfig(spec=spec)


def _jury(jury: str | None, named: dict[str, ModelConfig]) -> JuryConfig:
    if jury is None:
        return JuryConfig()
    path = Path(jury)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        return load_yaml_model(path, JuryConfig)
    return JuryConfig(model=_model(jury, named))


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option("--out", help="run directory (results, metrics, store)")],
    dataset: Annotated[str, typer.Option(help="dataset folder, or 'sample' for the bundled one")] = "sample",
    target: Annotated[list[str] | None, typer.Option(help="target model spec; repeat for several")] = None,
    jury: Annotated[
        str | None, typer.Option(help="one model spec for all jurors, or a jury YAML file")
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="YAML of named model settings (base_url, key env, ...)")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="items judged at once")] = 8,
    max_rounds: Annotated[int | None, typer.Option(min=0, help="rebuttal rounds at most")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N items")] = None,
    modality: Annotated[
        str, typer.Option(help="what the target gets: text, image, audio (the recording) or audio+text")
    ] = "image",
    voice: Annotated[
        str, typer.Option(help="which recording audio modalities play: male or female")
    ] = "female",
    max_attempts: Annotated[
        int, typer.Option(min=1, help="attempts per model call (retries on 429/5xx)")
    ] = 4,
    resume: Annotated[bool, typer.Option("--resume", help="finish an interrupted run in --out")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress or table; for scripts")] = False,
) -> None:
    """Have target models answer a dataset and a jury judge every answer."""
    console = Console(quiet=quiet)
    try:
        named = _load_models(models)
        jury_config = _jury(jury, named)
        if max_rounds is not None:
            jury_config = jury_config.model_copy(update={"max_rounds": max_rounds})
        config = RunConfig(
            dataset=dataset,
            targets=[_model(t, named) for t in (target or [OFFLINE_TARGET])],
            jury=jury_config,
            out=out,
            concurrency=concurrency,
            limit=limit,
            modality=modality,  # type: ignore[arg-type]
            voice=voice,
            retry=RetrySettings(max_attempts=max_attempts),
        )
    except (ConfigError, ValueError) as exc:
        raise _fail(str(exc)) from None

    from safebench.progress import RunDisplay
    from safebench.runner import Evaluation

    evaluation = Evaluation(config, resume=resume)
    try:
        dataset_obj = evaluation.prepare()
    except DatasetUnsuitable as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise _fail(
            f"dataset {dataset} cannot be evaluated with --modality {modality} --voice {voice}: "
            f"{len(exc.problems)} problem(s); nothing was started"
        ) from None
    except DatasetInvalid as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise _fail(
            f"dataset {dataset} is invalid: {len(exc.problems)} problem(s); nothing was started"
        ) from None
    except (ModelSpecError, ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None

    offline = all(m.provider == "scripted" for m in _specs(config))
    console.print(
        f"[bold]safebench[/] · dataset {escape(str(dataset_obj.root))} ({len(dataset_obj.items)} items) · "
        f"targets {escape(', '.join(t.spec for t in config.targets))} · out {escape(str(out))}",
        highlight=False,
    )
    if offline:
        console.print(
            "[yellow]Offline run on scripted stand-ins (not language models): it shows the pipeline, "
            "not any model's safety. Pass --target and --jury to evaluate real models.[/]"
        )
    display = RunDisplay(console)
    evaluation.on_event = display
    try:
        with display:
            outcome = asyncio.run(evaluation.run())
    except RunConflict as exc:
        raise _fail(str(exc)) from None
    console.print(summary_table(outcome.metrics, outcome.dataset.taxonomy))
    console.print(
        f"{outcome.records} records · {escape(str(out))}/results.jsonl · metrics.json", highlight=False
    )


def _specs(config: RunConfig) -> list[ModelConfig]:
    from safebench.runner import all_models

    return all_models(config)


@app.command()
def validate(directory: Annotated[str, typer.Argument(help="dataset folder, or 'sample'")]) -> None:
    """Check a dataset folder and list every problem (exit 2 if any)."""
    root = resolve_dataset_dir(directory)
    problems = validate_dataset(root)
    if problems:
        print(format_problems(problems))
        raise _fail(f"{len(problems)} problem(s) in {root}")
    print(f"{root}: valid")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL file of another benchmark")],
    map_: Annotated[str, typer.Option("--map", help="text=COL,scenario=COL[,category=COL,id=COL,image=COL]")],
    out: Annotated[Path, typer.Option("--out", help="dataset folder to write")],
) -> None:
    """Turn another benchmark's file into a safebench dataset folder."""
    from safebench.dataset.importer import ImportFailed, import_file, parse_mapping

    try:
        report = import_file(file, parse_mapping(map_), out)
    except (ImportFailed, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    print(report)


from safebench.cli_generate import generate_command, taxonomy_command  # noqa: E402

app.command("taxonomy")(taxonomy_command)
app.command("generate")(generate_command)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
