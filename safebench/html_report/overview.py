"""The page's targets (unique across runs) and each run's overview: version, times, dataset and its
hash, jury composition, stand-ins, counts by status and cost. Plain data for the template; every
string in it is untrusted and is escaped by the template (autoescape), never here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from safebench.html_report.loading import RunData
from safebench.schema import Result

STATUSES = ("decided", "hung", "error", "blocked")


@dataclass(frozen=True)
class Target:
    """A target as the page knows it. `key` is unique across the runs shown: the label, or
    `label @ run` when two runs have a target of the same label (permalinks and filters use it)."""

    key: str
    label: str
    spec: str
    run: int
    metrics: dict[str, Any]


def page_targets(runs: list[RunData], variants: list[str] | None = None) -> list[Target]:
    """`variants`: one label per run when the runs compare conditions (`image: black`): a target is
    then keyed by it rather than by the run's folder name."""
    labels = [(i, label) for i, run in enumerate(runs) for label in run.target_labels()]
    count = Counter(label for _, label in labels)
    targets: list[Target] = []
    taken: set[str] = set()
    for i, label in labels:
        if variants is not None:
            key = f"{label} · {variants[i]}"
        else:
            key = label if count[label] == 1 else f"{label} @ {runs[i].name}"
        while key in taken:  # two runs of one folder name shown twice: still keep keys apart
            key += "'"
        taken.add(key)
        metrics = runs[i].metrics.get(label) or {}
        spec = str(metrics.get("target_spec") or _spec_from_records(runs[i].records, label) or label)
        targets.append(Target(key, label, spec, i, metrics))
    return targets


def _spec_from_records(records: list[Result], label: str) -> str | None:
    return next((r.target_spec for r in records if r.target == label and r.target_spec), None)


@dataclass
class TargetCounts:
    key: str
    records: int = 0
    status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    truncated: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class JurorModel:
    """What one juror model did in a run: opinions given, abstentions, on which seats. Records keep
    tokens per record (target and jurors together), not per juror, so none are shown here."""

    model: str
    opinions: int = 0
    abstained: int = 0
    seats: set[str] = field(default_factory=set)


@dataclass
class RunOverview:
    name: str
    path: str
    version: str | None
    git_commit: str | None
    started: str | None
    finished: str | None
    sessions: int
    command: str | None
    dataset_path: str | None
    dataset_sha256: str | None
    dataset_items: int | None
    dataset_hashes: dict[str, str]
    jury: list[dict[str, str]]
    foreperson: dict[str, str] | None
    stand_ins: list[str]
    targets: list[TargetCounts]
    juror_models: list[JurorModel]
    warnings: list[str]
    totals: TargetCounts


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def add_record(counts: TargetCounts, r: Result) -> None:
    counts.records += 1
    status = r.verdict.status
    counts.status[status] = counts.status.get(status, 0) + 1
    counts.truncated += bool(r.truncated)
    counts.calls += r.calls
    counts.prompt_tokens += r.tokens.prompt
    counts.completion_tokens += r.tokens.completion


def _add_opinions(models: dict[str, JurorModel], r: Result) -> None:
    for o in r.opinions:
        entry = models.setdefault(o.model, JurorModel(o.model))
        entry.opinions += 1
        entry.abstained += o.status == "abstained"
        entry.seats.add(o.seat)


def _jury_slots(run: RunData) -> list[dict[str, str]]:
    return [
        {
            "slot": _text(s.get("slot")),
            "persona": _text(s.get("persona")),
            "card": _text(s.get("card")),
            "spec": _text(s.get("spec")),
            "base_url": _text(s.get("base_url")),
        }
        for s in run.jury
    ]


def _command(run_info: dict[str, Any]) -> str | None:
    sessions = run_info.get("sessions") or []
    command = sessions[-1].get("command") if sessions and isinstance(sessions[-1], dict) else None
    return " ".join(map(str, command)) if isinstance(command, list) else None


def run_overview(run: RunData, targets: list[Target]) -> RunOverview:
    info = run.run_info
    dataset = run.dataset
    # One pass, counting as it reads: the records are not held (loading.Records).
    counts = {t.label: TargetCounts(t.key) for t in targets}
    totals = TargetCounts("all targets")
    models: dict[str, JurorModel] = {}
    for r in run.records:
        if r.target in counts:
            add_record(counts[r.target], r)
        add_record(totals, r)
        _add_opinions(models, r)
    foreperson = run.resolved.get("foreperson")
    return RunOverview(
        name=run.name,
        path=str(run.path),
        version=_text(info.get("safebench_version")) or None,
        git_commit=_text(info.get("git_commit")) or None,
        started=_text(info.get("started")) or None,
        finished=_text(info.get("finished")) or None,
        sessions=len(info.get("sessions") or []),
        command=_command(info),
        dataset_path=_text(dataset.get("path") or run.config.get("dataset")) or None,
        dataset_sha256=run.dataset_sha256,
        dataset_items=dataset.get("items") if isinstance(dataset.get("items"), int) else None,
        dataset_hashes={str(k): str(v) for k, v in (dataset.get("hashes") or {}).items()},
        jury=_jury_slots(run),
        foreperson={k: _text(v) for k, v in foreperson.items()} if isinstance(foreperson, dict) else None,
        stand_ins=run.stand_ins,
        targets=list(counts.values()),
        juror_models=list(models.values()),
        warnings=list(run.warnings),
        totals=totals,
    )


def dataset_mismatch(runs: list[RunData]) -> list[tuple[str, str]] | None:
    """[(run, dataset sha256)] when the runs shown together were not made on the same dataset (or a
    run does not say which): their numbers are then not comparable on one board."""
    if len(runs) < 2:
        return None
    shas = [(run.name, run.dataset_sha256 or "unknown") for run in runs]
    return (
        shas if len({sha for _, sha in shas}) > 1 or any(run.dataset_sha256 is None for run in runs) else None
    )
