"""Any CSV/TSV/JSONL with a column mapping (`--map`), and the mapping's parser (see formats.py)."""

from __future__ import annotations

from pathlib import Path

from safebench.calibration.formats_common import (
    JudgeChoice,
    Source,
    check_unique,
    human_label,
    image_problem,
    majority,
    read_rows_with,
    read_stored,
    read_word,
)
from safebench.calibration.labels import LabelledPair, LabelSet
from safebench.dataset.importer import MappingError, cell_value, check_known_keys, split_mapping

MAPPING_KEYS = ("query", "response", "label", "labels", "image", "category", "id", "judges")
LIST_KEYS = ("labels", "judges")  # COL1+COL2+...
WORDS = "0/1, true/false, safe/unsafe or yes/no"
EXAMPLE = "query=COL,response=COL,label=COL (or labels=COL1+COL2+COL3)"


def parse_mapping(spec: str) -> dict[str, str]:
    """`"query=q,response=r,labels=a+b+c"` -> `{"query": "q", "response": "r", "labels": "a+b+c"}`.
    The same KEY=COLUMN syntax as `safebench import --map`, with the keys of a labelled table."""
    mapping = split_mapping(spec)
    check_mapping(mapping)
    return mapping


def check_mapping(mapping: dict[str, str]) -> None:
    check_known_keys(mapping, MAPPING_KEYS)
    missing = [k for k in ("query", "response") if not mapping.get(k)]
    if not mapping.get("label") and not mapping.get("labels"):
        missing.append("label (or labels)")
    if missing:
        raise MappingError(f"mapping: missing required key(s) {', '.join(missing)} (e.g. {EXAMPLE})")
    for key in LIST_KEYS:
        if key in mapping and not all(c.strip() for c in mapping[key].split("+")):
            raise MappingError(f"mapping: {key}={mapping[key]} has an empty column name (use COL1+COL2)")


def _columns(mapping: dict[str, str], key: str) -> list[str]:
    value = mapping.get(key)
    if value is None:
        return []
    return [c.strip() for c in value.split("+")] if key in LIST_KEYS else [value]


def read_mapped(
    src: Source, mapping: dict[str, str] | None, judges: JudgeChoice, images_dir: Path | None
) -> LabelSet | None:
    if mapping is None:
        src.add(None, None, f"the table format needs a column mapping: --map {EXAMPLE}")
        return None
    try:
        check_mapping(mapping)
    except MappingError as exc:
        src.add(None, "--map", str(exc).removeprefix("mapping: "))
        return None
    header_line = 1 if src.path.suffix.lower() in (".csv", ".tsv") else None  # JSONL: in no row at all
    mapped = [c for key in MAPPING_KEYS for c in _columns(mapping, key)]
    table = read_rows_with(src, list(dict.fromkeys(mapped)), header_line)
    if table is None:
        return None
    columns, rows = table
    annotators = _columns(mapping, "labels") or _columns(mapping, "label")
    reference_column = mapping.get("label")  # with labels= too: the reference, annotators beside it
    # judges= names the judge columns; a stored_judges list may name any column the mapping leaves free
    available = _columns(mapping, "judges")
    if judges.kind == "names":
        available += [c for c in columns if c not in mapped]
    names = judges.select(src, available, header_line)
    stored = read_stored(names, [row.values for row in rows], read_word)
    image_root = images_dir or src.path.parent
    pairs: list[LabelledPair] = []
    for row, labels in zip(rows, stored.labels, strict=True):
        before = len(src.problems)
        text = {
            key: cell_value(row, mapping[key], key, src.path, src.problems)
            for key in ("query", "image", "category", "id")
            if key in mapping
        }
        if text.get("query") is None and len(src.problems) == before:
            src.add(row.line, "query", f"missing value in column {mapping['query']!r}")
        response = row.values.get(mapping["response"])
        if response is not None and not isinstance(response, str | int | float):
            src.add(row.line, "response", f"column {mapping['response']!r} must be a string")
        human = [human_label(src, row.line, a, row.values.get(a), read_word, WORDS) for a in annotators]
        reference = majority(human)
        if reference_column is not None and "labels" in mapping:
            given = human_label(
                src, row.line, reference_column, row.values.get(reference_column), read_word, WORDS
            )
            reference = reference if given is None else given
        image = None
        if text.get("image"):
            image = (image_root / text["image"]).absolute()
            if problem := image_problem(image):
                src.add(row.line, "image", problem)
        if len(src.problems) > before:
            continue
        pairs.append(
            LabelledPair(
                id=text.get("id") or str(row.index),
                query=text["query"],
                response="" if response is None else str(response),
                image=None if image is None else str(image),
                category=text.get("category"),
                human=human,
                reference=reference,
                stored=labels,
                row=row.index,
            )
        )
    check_unique(src, [p.id for p in pairs], [rows[p.row - 1].line for p in pairs], ["id"] * len(pairs))
    return stored.label_set(src, "table", pairs, annotators, stored.notes)
