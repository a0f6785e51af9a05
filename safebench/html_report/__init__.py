"""A self-contained HTML report of one or more runs: overview, leaderboard, category and scenario
tables, figures, every record with its deliberation, and a comparison of two targets.

`build_report([run_dir, ...], out)` writes one file that opens from file:// with no network.
"""

from __future__ import annotations

from pathlib import Path


def build_report(run_dirs: list[Path], out: Path, *, figures_dir: Path | None = None) -> Path:
    """Write the report of `run_dirs` to `out` (one HTML file) and return its path; with `figures_dir`,
    also the figures as PNG and PDF there (see `safebench.html_report.render.build_report`)."""
    # Imported here so that `import safebench.html_report.svg` (and figures) does not pull in the
    # page's templates, pydantic models and PIL.
    from safebench.html_report.render import build_report as build

    return build(run_dirs, out, figures_dir=figures_dir)


__all__ = ["build_report"]
