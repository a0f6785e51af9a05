"""Prompt templates are data files (`prompts/**.j2`), rendered with Jinja's StrictUndefined so a
missing variable fails loudly instead of silently producing an empty prompt."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from safebench.resources import bundled_dir


@cache
def _environment(root: Path) -> Environment:
    # Prompts are plain text for models, not HTML: autoescape would corrupt them.
    return Environment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _root(prompts_dir: Path | None) -> Path:
    # Resolved once per folder, not per render (a juror call renders three templates).
    return (prompts_dir or bundled_dir("prompts")).resolve()


def render(template: str, prompts_dir: Path | None = None, **variables: Any) -> str:
    """Render `prompts/<template>` (e.g. "jury/assess.j2"); `prompts_dir` overrides the bundled folder.
    Jinja checks each template file's mtime, so an edited prompt is picked up by the next render."""
    env = _environment(_root(prompts_dir))
    return env.get_template(template).render(**variables).strip()
