"""What every `safebench` command shares: the error console, the one-line failure, model options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from safebench.config import JuryConfig, load_yaml_model
from safebench.models import ModelConfig

# emoji=False: rich would turn text such as "openai:x:" in a spec into an emoji; escape() does not stop it.
err = Console(stderr=True, emoji=False)


def console(quiet: bool = False) -> Console:
    """The standard output console of a command (no emoji codes, as for `err`)."""
    return Console(quiet=quiet, emoji=False)


def fail(message: str) -> typer.Exit:
    """Print one error line on stderr; the caller raises the returned Exit (status 2: bad input)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def print_outcome(console: Console, outcome: Any, by: str) -> None:
    """A finished run's summary table, then where its files are (printed even with --quiet: a script
    needs to know where the results went)."""
    from safebench.report import summary_table

    console.print(summary_table(outcome.metrics, outcome.dataset.taxonomy, by=by))
    page = " · report.html" if outcome.report else ""
    print(f"{outcome.records} records · {outcome.run_dir}/results.jsonl · metrics.json · run.json{page}")
    if outcome.report_error:
        err.print(f"warning: report.html not written: {outcome.report_error}", markup=False, soft_wrap=True)


def exit_on_errors(errors: int, allow_errors: bool, rerun: str) -> None:
    """Exit 3 when records are errors (unless --allow-errors), saying how to rerun exactly those."""
    if errors and not allow_errors:
        err.print(
            f"{errors} record(s) are errors (never counted as safe); rerun exactly those with: {rerun}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(3)


def one_line(exc: Exception) -> str:
    """A pydantic error as one line naming the field; other errors as they are."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        return f"{where}: {first['msg'].removeprefix('Value error, ')}"
    return str(exc)


def load_models(path: Path | None) -> dict[str, ModelConfig]:
    """`--models FILE`: named model settings (`name: {spec: ..., base_url: ...}`) usable as specs."""
    if path is None:
        return {}
    from pydantic import RootModel

    return load_yaml_model(path, RootModel[dict[str, ModelConfig]]).root


def model_option(spec: str, named: dict[str, ModelConfig]) -> ModelConfig:
    """A named model (labelled by its name, so two names with one spec stay two targets), or a spec."""
    if spec in named:
        model = named[spec]
        return model if model.label else model.model_copy(update={"label": spec})
    return ModelConfig(spec=spec)


def jury_option(jury: str, named: dict[str, ModelConfig]) -> JuryConfig:
    """`--jury`: a jury YAML file, or one model (spec or models-file name) for every juror."""
    path = Path(jury)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        return load_yaml_model(path, JuryConfig)
    return JuryConfig(model=model_option(jury, named))
