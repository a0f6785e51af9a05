"""`safebench report`: one self-contained HTML page of one or more runs (and figure files for a paper)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safebench.cli_common import fail, one_line


def report_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="run directories (their targets share one leaderboard)")
    ],
    out: Annotated[
        Path | None, typer.Option(help="HTML file to write [default: RUN_DIR/report.html]")
    ] = None,
    figures: Annotated[
        Path | None, typer.Option(help="also write the figures as PNG and PDF into this folder")
    ] = None,
) -> None:
    """Write a self-contained HTML report: leaderboard, tables, figures and every deliberation."""
    from safebench.html_report import build_report

    target = out or run_dirs[0] / "report.html"
    try:
        path = build_report(run_dirs, target, figures_dir=figures)
    except (FileNotFoundError, ImportError, ValueError, OSError) as exc:  # ImportError: no matplotlib
        raise fail(one_line(exc)) from None
    print(path)
