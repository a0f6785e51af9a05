"""The problem types every dataset check reports (`Problem`, `DatasetInvalid`, `DatasetUnsuitable`) and
the helpers that word pydantic errors as problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DatasetInvalid(Exception):
    """A dataset folder failed validation; `.problems` holds every problem found."""

    def __init__(self, problems: list[Problem], root: str | Path | None = None) -> None:
        self.problems = problems
        self.root = root
        head = f"dataset {root} is invalid" if root is not None else "dataset is invalid"
        super().__init__(f"{head} ({len(problems)} problem(s)):\n{format_problems(problems)}")


class DatasetUnsuitable(DatasetInvalid):
    """A valid dataset that cannot be evaluated in the requested modality (e.g. audio without speech)."""

    def __init__(self, problems: list[Problem], root: str | Path, modality: str) -> None:
        super().__init__(problems, root)
        self.modality = modality
        self.args = (
            f"dataset {root} cannot be evaluated with modality {modality!r} ({len(problems)} problem(s)):\n"
            f"{format_problems(problems)}",
        )


def format_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(f"  {p}" for p in problems)


def field_path(loc: Iterable[str | int]) -> str:
    """A pydantic location as `categories[2].scenarios[0].id`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pydantic_message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_too_short":
        return "must not be empty"
    return str(error["msg"])
