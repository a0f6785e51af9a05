"""Every judge's label on every pair, from one jury run and the set's stored judges — no extra calls.

Judges: the jury's final verdict; the panel's majority of round-0 opinions (a vote without
deliberation); each juror alone (its round-0 opinion); each stored judge column. A judge that gave no
label on a pair says why (`abstained`, `hung`, `error`, `blocked`, `missing`): such pairs are excluded
from its scores and counted, never counted as agreement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from safebench.calibration.labels import LabelSet
from safebench.schema import Result

JURY = "jury"
PANEL_VOTE = "panel vote (round 0, no deliberation)"


@dataclass
class JudgeLabels:
    name: str
    kind: str  # "jury" | "panel_vote" | "juror" | "stored"
    labels: dict[str, bool | None] = field(default_factory=dict)  # pair id -> True = unsafe
    status: dict[str, str] = field(default_factory=dict)  # pair id -> "ok" or why there is no label

    def put(self, pair_id: str, label: bool | None, why: str) -> None:
        self.labels[pair_id] = label
        self.status[pair_id] = "ok" if label is not None else why


def _panel_vote(result: Result, quorum: int) -> tuple[bool | None, str]:
    votes: dict[str, bool] = {}
    for op in result.opinions:
        if op.round == 0 and op.valid:
            votes.setdefault(op.seat, bool(op.unsafe))
    if len(votes) < quorum:
        return None, "error"
    unsafe = sum(votes.values())
    if unsafe * 2 == len(votes):
        return None, "hung"
    return unsafe * 2 > len(votes), "ok"


def jury_judges(results: Iterable[Result], quorum: int) -> list[JudgeLabels]:
    """The jury, the round-0 panel vote and each juror alone, from the jury run's records."""
    jury = JudgeLabels(JURY, "jury")
    panel = JudgeLabels(PANEL_VOTE, "panel_vote")
    jurors: dict[str, JudgeLabels] = {}
    for result in results:
        verdict = result.verdict
        jury.put(result.item_id, verdict.unsafe if verdict.status == "decided" else None, verdict.status)
        panel.put(result.item_id, *_panel_vote(result, quorum))
        for op in sorted(result.opinions, key=lambda o: o.slot if o.slot is not None else -1):
            if op.round != 0:
                continue
            name = f"juror {op.seat} ({op.juror}, {op.model})"
            judge = jurors.setdefault(name, JudgeLabels(name, "juror"))
            judge.put(result.item_id, bool(op.unsafe) if op.valid else None, "abstained")
    return [jury, panel, *jurors.values()]


def stored_judges(label_set: LabelSet) -> list[JudgeLabels]:
    judges = []
    for name in label_set.judges:
        judge = JudgeLabels(f"stored: {name}", "stored")
        for pair in label_set.pairs:
            judge.put(pair.id, pair.stored.get(name), "missing")
        judges.append(judge)
    return judges
