"""JailbreakBench's judge-comparison CSV (see formats.py for the rules)."""

from __future__ import annotations

from safebench.calibration.formats_common import (
    JudgeChoice,
    Source,
    cell,
    check_unique,
    human_label,
    majority,
    read_rows_with,
    read_stored,
    read_zero_one,
)
from safebench.calibration.labels import LabelledPair, LabelSet

ANNOTATORS = ("human1", "human2", "human3")
REFERENCE = "human_majority"
REQUIRED = ("Index", "goal", "target_response", *ANNOTATORS)
JUDGE_SUFFIX = "_cf"  # harmbench_cf, gpt4_cf, llamaguard2_cf, llama3_cf


def read_jailbreakbench(src: Source, judges: JudgeChoice) -> LabelSet | None:
    table = read_rows_with(src, REQUIRED)
    if table is None:
        return None
    columns, rows = table
    names = judges.select(src, [c for c in columns if c.endswith(JUDGE_SUFFIX)], 1)
    stored = read_stored(names, [row.values for row in rows], read_zero_one)
    pairs: list[LabelledPair] = []
    for row, labels in zip(rows, stored.labels, strict=True):
        before = len(src.problems)
        query = cell(row.values, "goal")
        if query is None:
            src.add(row.line, "goal", "missing value")
        human = [
            human_label(src, row.line, a, cell(row.values, a), read_zero_one, "0 or 1") for a in ANNOTATORS
        ]
        reference = human_label(
            src, row.line, REFERENCE, cell(row.values, REFERENCE), read_zero_one, "0 or 1"
        )
        item_id = cell(row.values, "Index")
        if item_id is None:
            src.add(row.line, "Index", "missing value")
        if len(src.problems) > before:
            continue
        assert query is not None and item_id is not None  # reported above otherwise
        pairs.append(
            LabelledPair(
                id=str(item_id),
                query=query,
                response=row.values.get("target_response") or "",
                human=human,
                # the file's own majority when given, else the majority of the three annotators
                reference=majority(human) if reference is None else reference,
                stored=labels,
                row=row.index,
            )
        )
    check_unique(src, [p.id for p in pairs], [rows[p.row - 1].line for p in pairs], ["Index"] * len(pairs))
    return stored.label_set(src, "jailbreakbench", pairs, list(ANNOTATORS), stored.notes)
