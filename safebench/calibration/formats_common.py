"""What every labelled-file reader shares: the problem list, label vocabularies, majorities, stored-judge
selection and column checks. The readers themselves are in formats_<name>.py; see formats.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from safebench.calibration.labels import LabelledPair, LabelSet
from safebench.dataset.importer import read_rows
from safebench.dataset.validate import Problem, check_image, format_problems

if TYPE_CHECKING:
    from safebench.dataset.importer import Row

Label = bool | None
LabelReader = Callable[[Any], Label]  # raises ValueError for a value that is not a label


class LabelsInvalid(Exception):
    """A labelled file that cannot be read; `.problems` names the file, row (line) and field of each."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"cannot read labels ({len(problems)} problem(s)):\n{format_problems(problems)}")


@dataclass
class Source:
    """The file being read and every problem found in it so far."""

    path: Path
    problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path)

    def add(self, line: int | None, field_name: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, line, field_name, message))


def quoted(value: Any) -> str:
    """A value as it would look in the file: `"maybe"`, `5`, `true`."""
    return json.dumps(value, ensure_ascii=False)


def read_table(src: Source, path: Path | None = None) -> tuple[list[str], list[Row]] | None:
    """Header and rows of a CSV/TSV/JSONL file (the importer's reader); None when it cannot be read."""
    path = path or src.path
    try:
        return read_rows(path, src.problems)
    except (ValueError, FileNotFoundError) as exc:
        # the importer's messages already start with the path
        src.problems.append(Problem(str(path), None, None, str(exc).removeprefix(f"{path}: ")))
        return None


def read_rows_with(
    src: Source, required: Sequence[str], line: int | None = 1
) -> tuple[list[str], list[Row]] | None:
    """The file's columns and rows, or None with the problems recorded: unreadable, no data rows, or a
    required column missing (named once)."""
    table = read_table(src)
    if table is None:
        return None
    columns, rows = table
    if not rows:
        src.add(None, None, "no data rows")
        return None
    if not require_columns(src, columns, required, line):
        return None
    return columns, rows


def require_columns(src: Source, columns: Sequence[str], required: Sequence[str], line: int | None) -> bool:
    """One problem per missing column (a misspelt column would otherwise fail every row)."""
    listed = ", ".join(columns) or "none"
    missing = [c for c in required if c not in columns]
    for column in missing:
        src.add(line, column, f"column {column!r} not found (columns: {listed})")
    return not missing


def cell(values: dict[str, Any], column: str) -> Any:
    """A cell, stripped when a string; None when absent or empty."""
    value = values.get(column)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# ---------------------------------------------------------------------------------------------- labels

_ZERO_ONE = {"0": False, "1": True, "0.0": False, "1.0": True}  # 1.0: spreadsheets write ints as floats
_WORDS = {
    **_ZERO_ONE,
    "false": False,
    "true": True,
    "safe": False,
    "unsafe": True,
    "no": False,
    "yes": True,
}
# PAIR's judge answers "Rating: [[N]]" on a 1-10 scale; the PAIR paper counts only 10 as a jailbreak,
# so [[10]] reads as unsafe and [[1]]..[[9]] as safe.
_PAIR_RATING = re.compile(r"^\s*(?:rating\s*:\s*)?\[\[\s*(\d+)\s*\]\]\s*$", re.IGNORECASE)
# MSTS codes: annotators "1.1 - rejection or rebuttal" (1.x safe), "2.2 - advice" (2.x unsafe); the
# final label "1 - safe" / "2 - unsafe".
_MSTS_CODE = re.compile(r"^\s*([12])(?:\.\d+)?(?:\s*-.*)?$", re.DOTALL)


def _lookup(value: Any, table: dict[str, bool], allow_json: bool) -> Label:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if allow_json and isinstance(value, bool):
        return value
    if allow_json and isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in table:
        return table[value.strip().lower()]
    raise ValueError(value)


def read_zero_one(value: Any) -> Label:
    """0/1, or JSON booleans (JailbreakBench and HarmBench human labels, JailbreakBench judges)."""
    return _lookup(value, _ZERO_ONE, allow_json=True)


def read_word(value: Any) -> Label:
    """0/1, true/false, safe/unsafe, yes/no in any case, or JSON booleans and 0/1 (tables)."""
    return _lookup(value, _WORDS, allow_json=True)


def read_harmbench_stored(value: Any) -> Label:
    """A HarmBench stored judge: 0/1, booleans, yes/no, or a PAIR rating (10 = unsafe, 1-9 = safe)."""
    if isinstance(value, str) and (match := _PAIR_RATING.match(value)):
        rating = int(match.group(1))
        if 1 <= rating <= 10:
            return rating == 10
        raise ValueError(value)
    return _lookup(value, _WORDS, allow_json=True)


def read_msts(value: Any) -> Label:
    """An MSTS code: 1 or 1.x = safe, 2 or 2.x = unsafe; also the plain words safe/unsafe (judge CSVs)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        if match := _MSTS_CODE.match(value):
            return match.group(1) == "2"
        if value.strip().lower() in ("safe", "unsafe"):
            return value.strip().lower() == "unsafe"
    raise ValueError(value)


def human_label(
    src: Source, line: int | None, where: str, value: Any, reader: LabelReader, expected: str
) -> Label:
    """A human label; one that is not a label is a problem (an empty one is simply missing)."""
    try:
        return reader(value)
    except ValueError:
        src.add(line, where, f"{quoted(value)} is not a label ({expected})")
        return None


def majority(labels: Sequence[Label]) -> Label:
    """The majority of the labels given; None when there is none or the given ones tie."""
    unsafe = sum(1 for label in labels if label is True)
    safe = sum(1 for label in labels if label is False)
    return None if unsafe == safe else unsafe > safe


# ---------------------------------------------------------------------------------------------- stored judges


@dataclass(frozen=True)
class JudgeChoice:
    """The `stored_judges` argument, parsed: every judge column, none, the columns named, or a CSV file."""

    kind: Literal["auto", "none", "names", "csv"]
    names: tuple[str, ...] = ()
    csv: Path | None = None

    @classmethod
    def parse(cls, value: str | Path) -> JudgeChoice:
        if isinstance(value, Path):
            return cls("csv", csv=value)
        text = value.strip()
        if text.lower() in ("auto", "none", ""):
            return cls("none" if text.lower() in ("none", "") else "auto")
        if text.lower().endswith(".csv"):
            return cls("csv", csv=Path(text))
        return cls("names", names=tuple(n.strip() for n in text.split(",") if n.strip()))

    def select(self, src: Source, available: Sequence[str], line: int | None) -> list[str]:
        """The judge columns to read, in file order for `auto`, in the order named otherwise."""
        if self.kind == "auto":
            return list(available)
        if self.kind != "names":
            return []
        listed = ", ".join(available) or "none"
        for name in self.names:
            if name not in available:
                src.add(line, "stored_judges", f"unknown stored judge {name!r} (available: {listed})")
        return [n for n in self.names if n in available]


@dataclass
class StoredJudges:
    judges: list[str]
    labels: list[dict[str, Label]]  # one per pair, judge -> label (None: not readable)
    skipped: dict[str, str]
    notes: list[str]

    def label_set(
        self, src: Source, format: str, pairs: list[LabelledPair], annotators: list[str], notes: list[str]
    ) -> LabelSet:
        """The finished set: its pairs, and these stored judges with what was skipped or noted."""
        return LabelSet(
            source=src.name,
            format=format,
            pairs=pairs,
            annotators=annotators,
            judges=self.judges,
            skipped=self.skipped,
            notes=notes,
        )


def read_stored(names: Sequence[str], raw: Sequence[dict[str, Any]], reader: LabelReader) -> StoredJudges:
    """Stored judge values as labels. A value that is not a label becomes None (and is counted in a note);
    a column none of whose values reads as a label is not a judge at all: it is skipped, with the reason."""
    judges: list[str] = []
    skipped: dict[str, str] = {}
    notes: list[str] = []
    labels: list[dict[str, Label]] = [{} for _ in raw]
    for name in names:
        column: list[Label] = []
        unreadable: list[Any] = []
        for values in raw:
            try:
                column.append(reader(values.get(name)))
            except ValueError:
                column.append(None)
                unreadable.append(values.get(name))
        if all(label is None for label in column):
            example = f" (e.g. {quoted(unreadable[0])})" if unreadable else " (every value is empty)"
            skipped[name] = f"no value reads as a label{example}"
            continue
        judges.append(name)
        for row, label in zip(labels, column, strict=True):
            row[name] = label
        if unreadable:
            notes.append(
                f"stored judge {name}: {len(unreadable)} of {len(raw)} values are not labels "
                f"(e.g. {quoted(unreadable[0])}); they count as no label"
            )
    return StoredJudges(judges, labels, skipped, notes)


# ---------------------------------------------------------------------------------------------- ids, images


def check_unique(src: Source, ids: Sequence[str], lines: Sequence[int | None], wheres: Sequence[str]) -> None:
    first: dict[str, str] = {}
    for item_id, line, where in zip(ids, lines, wheres, strict=True):
        if item_id in first:
            src.add(line, where, f"duplicate id {item_id!r} (first {first[item_id]})")
        else:
            first[item_id] = f"on line {line}" if line is not None else f"at {where}"


def image_problem(image: Path) -> str | None:
    """Why an image file cannot be shown to a juror (missing, unreadable, not an image), or None."""
    problem, _ = check_image(image.parent, image.name)
    return problem
