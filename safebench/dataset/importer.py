"""Turn a CSV or JSONL file of queries into a dataset folder, with typography images where none is given."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from safebench.dataset.card import dataset_card
from safebench.dataset.io import CARD_FILE, sha256_file, write_dataset
from safebench.dataset.typography import key_phrase, render_typography
from safebench.dataset.validate import (
    ITEMS_FILE,
    TAXONOMY_FILE,
    DatasetInvalid,
    Problem,
    format_problems,
    validate_dataset,
)
from safebench.schema import Category, Item, Scenario, Taxonomy
from safebench.taxonomy import default_taxonomy

MAPPING_KEYS = ("text", "scenario", "category", "id", "image")
REQUIRED_KEYS = ("text", "scenario")
IMAGES_DIR = "images"


class MappingError(ValueError):
    """A column mapping that cannot work (unknown or missing keys, malformed pairs)."""


class ImportFailed(Exception):
    """Rows that cannot be imported; `.problems` names the file, row (line) and field of each."""

    def __init__(self, source: Path, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"cannot import {source} ({len(problems)} problem(s)):\n{format_problems(problems)}")


@dataclass
class ImportReport:
    source: Path
    out: Path
    taxonomy: Literal["default", "custom"]
    items: int
    scenarios: dict[str, int] = field(default_factory=dict)
    typography_images: int = 0
    copied_images: int = 0

    def __str__(self) -> str:
        return (
            f"imported {self.items} items from {self.source} into {self.out} "
            f"({self.taxonomy} taxonomy, {len(self.scenarios)} scenarios; "
            f"{self.copied_images} images copied, {self.typography_images} typography images rendered)"
        )


# ---------------------------------------------------------------------------------------------- mapping


def parse_mapping(spec: str) -> dict[str, str]:
    """`"text=question,scenario=risk"` -> `{"text": "question", "scenario": "risk"}`."""
    mapping = split_mapping(spec)
    check_mapping(mapping)
    return mapping


def split_mapping(spec: str) -> dict[str, str]:
    """The KEY=COLUMN pairs of a `--map` option, before any caller checks its own keys."""
    mapping: dict[str, str] = {}
    for pair in (p.strip() for p in spec.split(",")):
        if not pair:
            continue
        key, sep, column = pair.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise MappingError(f"mapping: expected KEY=COLUMN, got {pair!r}")
        if key in mapping:
            raise MappingError(f"mapping: key {key!r} given twice")
        mapping[key] = column
    return mapping


def check_known_keys(mapping: dict[str, str], allowed: Sequence[str]) -> None:
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise MappingError(f"mapping: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")


def check_mapping(mapping: dict[str, str]) -> None:
    check_known_keys(mapping, MAPPING_KEYS)
    missing = [k for k in REQUIRED_KEYS if not mapping.get(k)]
    if missing:
        raise MappingError(
            f"mapping: missing required key(s) {', '.join(missing)} (e.g. text=COLUMN,scenario=COLUMN)"
        )


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class Row:
    line: int  # line of the row in the input (CSV: header is line 1)
    index: int  # 1-based data row number, used for generated ids
    values: dict[str, Any]


def _read_csv(path: Path, text: str, delimiter: str, problems: list[Problem]) -> tuple[list[str], list[Row]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[Row] = []
    previous_end = 0
    for record in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip() for cell in record]
            for column, count in Counter(header).items():
                if count > 1:
                    problems.append(Problem(str(path), start, column, "column name appears more than once"))
            continue
        if len(record) > len(header):
            problems.append(
                Problem(str(path), start, None, f"{len(record)} fields but the header has {len(header)}")
            )
        rows.append(Row(start, len(rows) + 1, dict(zip(header, record, strict=False))))
    return header or [], rows


def _read_jsonl(path: Path, text: str, problems: list[Problem]) -> tuple[list[str], list[Row]]:
    rows: list[Row] = []
    columns: dict[str, None] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), number, None, f"bad JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(values, dict):
            problems.append(Problem(str(path), number, None, "expected a JSON object"))
            continue
        columns.update(dict.fromkeys(values))
        rows.append(Row(number, len(rows) + 1, values))
    return list(columns), rows


def read_rows(path: Path, problems: list[Problem]) -> tuple[list[str], list[Row]]:
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".tsv", ".jsonl", ".ndjson"}:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets often prepend a BOM
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if suffix in {".jsonl", ".ndjson"}:
        return _read_jsonl(path, text, problems)
    return _read_csv(path, text, "\t" if suffix == ".tsv" else ",", problems)


def cell_value(row: Row, column: str, key: str, path: Path, problems: list[Problem]) -> str | None:
    """A mapped cell as a stripped string; None when absent or empty; non-scalar JSON values are errors."""
    raw = row.values.get(column)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        problems.append(Problem(str(path), row.line, key, f"column {column!r} must be a string"))
        return None
    text = str(raw).strip()
    return text or None


# ---------------------------------------------------------------------------------------------- taxonomy


def slugify(value: str, fallback: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return slug or fallback


def derive_abbr(name: str, taken: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKD", name))
    if len(words) >= 2:
        base = "".join(w[0] for w in words[:3]).upper()
    elif words:
        base = words[0][:2].upper()
    else:
        base = "X"
    abbr, n = base, 2
    while abbr in taken:
        abbr, n = f"{base}{n}", n + 1
    taken.add(abbr)
    return abbr


def _unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}_{n}", n + 1
    taken.add(candidate)
    return candidate


def build_taxonomy(source: Path, pairs: list[tuple[str, str | None]]) -> tuple[Taxonomy, dict[str, str]]:
    """A taxonomy from (scenario value, category value or None) pairs, in first-seen order.

    Each distinct scenario value becomes a scenario; it joins the category named by its category value,
    or, without one, a category of its own. Also returns the map from scenario values to ids.
    """
    scenario_ids: dict[str, str] = {}
    category_ids: dict[tuple[str, str], str] = {}  # ("named", value) or ("own", scenario value) -> id
    labels: dict[str, str] = {}
    members: dict[str, list[Scenario]] = {}
    taken_s: set[str] = set()
    taken_c: set[str] = set()
    abbr_s: set[str] = set()
    for value, cat_value in pairs:
        if value in scenario_ids:
            continue
        sid = _unique(slugify(value, f"scenario_{len(scenario_ids) + 1}"), taken_s)
        scenario_ids[value] = sid
        definition = f"Imported from {source.name}: {value}"
        scenario = Scenario(id=sid, name=value, abbr=derive_abbr(value, abbr_s), definition=definition)
        key = ("named", cat_value) if cat_value is not None else ("own", value)
        if key not in category_ids:
            cid = _unique(slugify(key[1], f"category_{len(category_ids) + 1}"), taken_c)
            category_ids[key], labels[cid], members[cid] = cid, key[1], []
        members[category_ids[key]].append(scenario)
    abbr_c: set[str] = set()
    categories = [
        Category(
            id=cid,
            name=labels[cid],
            abbr=derive_abbr(labels[cid], abbr_c),
            definition=f"Imported from {source.name}: {labels[cid]}",
            scenarios=scenarios,
        )
        for cid, scenarios in members.items()
    ]
    name = f"imported-{slugify(source.stem, 'data').replace('_', '-')}"
    return Taxonomy(name=name, version="1", categories=categories), scenario_ids


# ---------------------------------------------------------------------------------------------- import


@dataclass
class _Parsed:
    row: Row
    text: str
    scenario: str
    category: str | None
    item_id: str | None
    image: Path | None
    extra: dict[str, Any]


def _file_stem(item_id: str, taken: set[str]) -> str:
    """A file name for an item's image; lower-cased uniqueness so case-insensitive file systems agree."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("._")[:100] or "item"
    candidate, n = stem, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def _image_suffix(path: Path) -> str:
    if path.suffix:
        return path.suffix.lower()
    with Image.open(path) as im:
        return f".{(im.format or 'png').lower()}".replace(".jpeg", ".jpg")


def _check_source_image(path: Path) -> str | None:
    if not path.is_file():
        return f"image file not found: {path}"
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return f"not a readable image: {path} ({exc})"
    return None


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; choose a new folder or pass --overwrite")
        # remove only what an import writes, never anything else the user keeps there
        for name in (ITEMS_FILE, TAXONOMY_FILE, CARD_FILE):
            (out / name).unlink(missing_ok=True)
        if (out / IMAGES_DIR).is_dir():
            shutil.rmtree(out / IMAGES_DIR)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)


def import_file(path: Path, mapping: dict[str, str], out: Path, *, overwrite: bool = False) -> ImportReport:
    """Import a CSV/TSV/JSONL file into the dataset folder `out`; ImportFailed lists every bad row."""
    path, out = Path(path), Path(out)
    check_mapping(mapping)
    problems: list[Problem] = []
    columns, rows = read_rows(path, problems)
    where = str(path)
    if not rows and not problems:
        raise ImportFailed(path, [Problem(where, None, None, "no data rows")])
    header_line = 1 if path.suffix.lower() in {".csv", ".tsv"} else None  # JSONL: in no row at all
    listed = ", ".join(columns) or "none"
    missing = [
        Problem(where, header_line, key, f"column {column!r} not found (columns: {listed})")
        for key, column in mapping.items()
        if rows and column not in columns
    ]
    if missing:  # a misspelt column would fail every row: report it once
        raise ImportFailed(path, problems + missing)

    mapped_columns = set(mapping.values())
    parsed: list[_Parsed] = []
    for row in rows:
        before = len(problems)
        values = {key: cell_value(row, column, key, path, problems) for key, column in mapping.items()}
        for key in REQUIRED_KEYS:
            if values[key] is None and not any(p.field == key for p in problems[before:]):
                problems.append(Problem(where, row.line, key, f"missing value in column {mapping[key]!r}"))
        image = None
        if values.get("image"):
            image = path.parent / values["image"]
            problem = _check_source_image(image)
            if problem:
                problems.append(Problem(where, row.line, "image", problem))
        if len(problems) > before:
            continue
        extra = {k: v for k, v in row.values.items() if k not in mapped_columns and v not in ("", None)}
        text, scenario, category, item_id = (values.get(k) for k in ("text", "scenario", "category", "id"))
        assert text is not None and scenario is not None  # reported above otherwise
        parsed.append(_Parsed(row, text, scenario, category, item_id, image, extra))

    taxonomy, scenario_ids = _taxonomy_for(path, parsed, problems)
    ids = _assign_ids(path, parsed, problems)
    if problems:
        raise ImportFailed(path, problems)

    _prepare_out(out, overwrite)
    items: list[Item] = []
    taken: set[str] = set()
    copied = rendered = 0
    for entry, item_id in zip(parsed, ids, strict=True):
        scenario = taxonomy.scenario(scenario_ids[entry.scenario])
        metadata: dict[str, Any] = {"source": f"{path.name}:{entry.row.line}"}
        if entry.extra:
            metadata["columns"] = entry.extra
        stem = _file_stem(item_id, taken)
        if entry.image is not None:
            rel = f"{IMAGES_DIR}/{stem}{_image_suffix(entry.image)}"
            shutil.copyfile(entry.image, out / rel)
            copied += 1
        else:
            rel = f"{IMAGES_DIR}/{stem}.png"
            phrase = key_phrase(entry.text)
            render_typography(phrase, out / rel)
            metadata["key_phrase"] = phrase
            rendered += 1
        items.append(
            Item(
                id=item_id,
                scenario=scenario.id,
                category=scenario.category,
                text=entry.text,
                image=rel,
                image_sha256=sha256_file(out / rel),
                metadata=metadata,
            )
        )
    kind: Literal["default", "custom"] = "default" if taxonomy is default_taxonomy() else "custom"
    summary = (
        f"Imported by safebench from `{path.name}` with the column mapping "
        f"`{','.join(f'{k}={v}' for k, v in mapping.items())}`; {kind} taxonomy."
    )
    card = dataset_card(f"{path.stem} (imported)", summary, taxonomy, items, load_path=str(out))
    write_dataset(out, taxonomy, items, card)
    found = validate_dataset(out)
    if found:  # a bug in this module, not in the input: say so plainly
        raise DatasetInvalid(found, out)
    counts = Counter(item.scenario for item in items)
    return ImportReport(path, out, kind, len(items), dict(counts), rendered, copied)


def _taxonomy_for(
    path: Path, parsed: list[_Parsed], problems: list[Problem]
) -> tuple[Taxonomy, dict[str, str]]:
    """The taxonomy to use and the map from scenario values to scenario ids."""
    default = default_taxonomy()
    where = str(path)
    if all(p.scenario in default.scenarios for p in parsed):
        names = {c.name.lower(): c.id for c in default.categories}
        for p in parsed:
            expected = default.scenarios[p.scenario].category
            if p.category is not None and names.get(p.category.lower(), p.category) != expected:
                msg = (
                    f"category {p.category!r} does not match scenario {p.scenario!r} (expected {expected!r})"
                )
                problems.append(Problem(where, p.row.line, "category", msg))
        return default, {s: s for s in default.scenarios}

    first: dict[str, tuple[str | None, int]] = {}
    for p in parsed:
        category, line = first.setdefault(p.scenario, (p.category, p.row.line))
        if category != p.category:
            msg = f"scenario {p.scenario!r} has category {category!r} on line {line}, here {p.category!r}"
            problems.append(Problem(where, p.row.line, "category", msg))
    return build_taxonomy(path, [(p.scenario, p.category) for p in parsed])


def _assign_ids(path: Path, parsed: list[_Parsed], problems: list[Problem]) -> list[str]:
    """Ids from the id column, else `<file stem>-<row:05d>` (stable across re-imports of the same file)."""
    stem = slugify(path.stem, "item").replace("_", "-")
    ids = [p.item_id or f"{stem}-{p.row.index:05d}" for p in parsed]
    first: dict[str, int] = {}
    for p, item_id in zip(parsed, ids, strict=True):
        if item_id in first:
            msg = f"duplicate id {item_id!r} (first on line {first[item_id]})"
            problems.append(Problem(str(path), p.row.line, "id", msg))
        else:
            first[item_id] = p.row.line
    return ids
