"""Query templates: the text a target is sent, rendered from a Jinja template (a target's
`prompt_template`, or `safebench evaluate --target-template`).

A template is a bundled name (`prompts/targets/<name>.j2`, e.g. `poc_wrapper`) or a file path. It sees
`query`, `image_text` (the image-paired variant, else the query), `scenario` and `category` (their
names). StrictUndefined, as for the project's own prompts: a misspelt variable is an error, never an
empty string; `preflight` renders once before any model call so the error comes first, in one line.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, TemplateError, TemplateSyntaxError

from safebench.config import ConfigError
from safebench.resources import bundled_dir

TEMPLATES_FOLDER = "targets"  # under the bundled prompts/
VARIABLES = ("query", "image_text", "scenario", "category")
# What preflight renders with: placeholders, so that a template is checked without a dataset.
SAMPLE = {
    "query": "[sample query]",
    "image_text": "[sample query about the image]",
    "scenario": "[scenario name]",
    "category": "[category name]",
}
_SOURCE = "<template>"  # a template's file name in a traceback (from_string), to find its line


class TemplateRenderError(ConfigError):
    """A target template that does not render; the message is one line naming the file."""


@dataclass(frozen=True)
class TargetTemplate:
    ref: str  # as given: a bundled name or a path
    path: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **variables: Any) -> str:
        """The rendered text; TemplateRenderError (one line: file, line, variable) if it fails."""
        try:
            return _compiled(self.text).render(**variables).strip()
        except TemplateError as exc:
            raise TemplateRenderError(f"{self.path}: {_where(exc)}{_message(exc)}") from None


def bundled_templates() -> list[str]:
    folder = bundled_dir("prompts") / TEMPLATES_FOLDER
    return sorted(p.stem for p in folder.glob("*.j2")) if folder.is_dir() else []


def template_path(ref: str) -> Path:
    """Where `ref` is: a bundled name (no folder, no suffix) first, else a file path."""
    bundled = bundled_dir("prompts") / TEMPLATES_FOLDER / f"{ref}.j2"
    if "/" not in ref and "\\" not in ref and not ref.endswith(".j2") and bundled.is_file():
        return bundled
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    names = ", ".join(bundled_templates()) or "none"
    raise ConfigError(
        f"target template {ref!r}: no such file, and no bundled template of that name (bundled: {names})"
    )


def cli_ref(ref: str) -> str:
    """What config.yaml keeps for `--target-template REF`: a bundled name as is, a file as an absolute
    path (so that `--resume` from another folder still finds it)."""
    path = template_path(ref)
    return (
        ref
        if path.parent == bundled_dir("prompts") / TEMPLATES_FOLDER and path.stem == ref
        else str(path.resolve())
    )


def load_template(ref: str) -> TargetTemplate:
    """The template `ref` names, read now (a run's identity hashes this text)."""
    path = template_path(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the target template: {exc}") from exc
    template = TargetTemplate(ref, path, text)
    try:
        _compiled(text)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{path}: line {exc.lineno}: {exc.message}") from None
    return template


def preflight(ref: str) -> TargetTemplate:
    """Load and render `ref` once with placeholder values: an undefined variable or a syntax error is
    a TemplateRenderError before any model is called."""
    template = load_template(ref)
    template.render(**SAMPLE)
    return template


def variables(query: str, image_text: str | None, scenario: str, category: str) -> dict[str, str]:
    return {"query": query, "image_text": image_text or query, "scenario": scenario, "category": category}


@cache
def _compiled(text: str) -> Any:
    # Plain text for a model, not HTML: no autoescape. The same whitespace rules as prompts/*.j2.
    env = Environment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(text)


def _message(exc: TemplateError) -> str:
    text = " ".join(str(exc.message or exc).split())
    if "is undefined" in text:
        text += f" (a template may use: {', '.join(VARIABLES)})"
    return text


def _where(exc: BaseException) -> str:
    """`line N: ` of the template line that failed, from the traceback Jinja rewrites to point at it."""
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return f"line {exc.lineno}: "
    tb = exc.__traceback__ or sys.exc_info()[2]
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _SOURCE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line else ""
