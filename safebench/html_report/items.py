"""The item browser's data: every record, compact, as one JSON document the page's script renders.

Ten thousand records would make a server-rendered page of tens of megabytes of DOM; as data they are
parsed once and drawn fifty at a time. Keys are short because they repeat per record, and values that
are empty are left out (the script reads a missing key as empty).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safebench.html_report.loading import RunData
from safebench.html_report.media import MediaTable
from safebench.html_report.overview import Target
from safebench.schema import Result, Taxonomy

# Inside <script type="application/json"> a literal "</script" (or "<!--") would end or confuse the
# element; escaping < > & as JSON \u escapes keeps the text valid JSON with the same value. U+2028/9
# are escaped too so the text is also valid as a JavaScript literal, should anyone paste it into one.
_JSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def script_json(data: Any) -> str:
    """`data` as JSON safe to place between <script type="application/json"> tags."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in _JSON_ESCAPES:  # str.replace: several times faster than translate on 30 MB
        text = text.replace(char, escape)
    return text


def split(record: Result) -> bool:
    """The jury was split or deliberated: rebuttal rounds ran, or the first opinions disagree."""
    if record.rounds > 0:
        return True
    votes = {o.unsafe for o in record.opinions if o.round == 0 and o.valid}
    return len(votes) > 1


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", [], False)}


def image_root(record: Result, run: RunData) -> Path | None:
    """What the record's image path is relative to: the dataset folder, or the run directory for an
    image made for a condition (`RUN_DIR/conditions/...`, safebench.image_conditions)."""
    if record.image_condition in (None, "dataset"):
        return run.dataset_root
    return run.path.resolve()


def record_entry(record: Result, target: int, run: RunData, media: MediaTable) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "t": target,
        "ic": record.image_condition if record.image_condition != "dataset" else None,
        "id": record.item_id,
        "c": record.category,
        "s": record.scenario,
        "q": record.query,
        "m": record.modality,
        "p": record.prompt,
        "r": record.response,
        "fr": record.finish_reason,
        "tr": record.truncated,
        "u": record.verdict.unsafe,
        "ra": record.verdict.rating,
        "st": record.verdict.status,
        "vr": record.verdict.reasoning,
        "n": record.rounds,
        # [slot, card, model, round, unsafe, rating, reasoning, status, error]: an array per opinion,
        # since a record has ten or more of them.
        "o": [
            [o.slot, o.juror, o.model, o.round, o.unsafe, o.rating, o.reasoning, o.status, o.error]
            for o in record.opinions
        ],
        "ca": record.calls,
        "tp": record.tokens.prompt,
        "tc": record.tokens.completion,
        "e": record.error,
        "sp": split(record),
    }
    if record.image is not None:
        ref = media.image(image_root(record, run), record.image.path)
        entry.update(img=ref.index, ip=record.image.path, inote=ref.note)
    if record.audio is not None:
        ref = media.audio(run.dataset_root, record.audio.path)
        entry.update(au=ref.index, ap=record.audio.path, anote=ref.note, av=record.audio.voice)
    out = _compact(entry)
    # Indices and zero counts equal False, which _compact drops: put back the ones that are indices.
    out["t"] = target
    for key in ("img", "au"):
        if entry.get(key) is not None:
            out[key] = entry[key]
    if "u" not in out and record.verdict.unsafe is False:
        out["u"] = False  # "safe" is a verdict, not an empty value
    return out


def _runs(runs: list[RunData]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        slots = {
            str(s.get("slot")): {"persona": str(s.get("persona") or ""), "card": str(s.get("card") or "")}
            for s in run.jury
        }
        out.append({"name": run.name, "slots": slots})
    return out


def _names(runs: list[RunData]) -> tuple[dict[str, Any], dict[str, Any]]:
    categories: dict[str, Any] = {}
    scenarios: dict[str, Any] = {}
    taxonomies: list[Taxonomy] = [run.taxonomy for run in runs]
    for taxonomy in taxonomies:
        for c in taxonomy.categories:
            categories.setdefault(c.id, {"name": c.name, "abbr": c.abbr})
            for s in c.scenarios:
                scenarios.setdefault(s.id, {"name": s.name, "abbr": s.abbr, "category": c.id})
    return categories, scenarios


def page_data(runs: list[RunData], targets: list[Target], media: MediaTable) -> dict[str, Any]:
    """Everything the page's script needs: runs (jury seats), targets, names, media and records in the
    runs' order (targets as given, items in dataset order, as in results.jsonl)."""
    index = {(t.run, t.label): i for i, t in enumerate(targets)}
    # All images first, in one threaded pass, so thumbnailing thousands of files runs in parallel.
    media.add_images([(image_root(r, run), r.image.path) for run in runs for r in run.records if r.image])
    # Each record serialised as soon as it is made (page_json joins them): holding every entry as a
    # dict would cost several times the page's own size for a large run.
    records = [
        script_json(record_entry(r, index[(i, r.target)], run, media))
        for i, run in enumerate(runs)
        for r in run.records
    ]
    categories, scenarios = _names(runs)
    return {
        "runs": _runs(runs),
        "targets": [{"key": t.key, "label": t.label, "spec": t.spec, "run": t.run} for t in targets],
        "categories": categories,
        "scenarios": scenarios,
        "media": media.uris,
        "records": records,
    }


def page_json(data: dict[str, Any]) -> str:
    """`page_data` as the page's JSON document: its records are already serialised (script_json)."""
    head = script_json({k: v for k, v in data.items() if k != "records"})
    return f'{head[:-1]},"records":[{",".join(data["records"])}]}}'
