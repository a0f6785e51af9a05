"""Render run metrics (from `safebench.metrics.compute_metrics`) as a rich table, and save them as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from safebench.schema import Taxonomy


def _fmt(value: float | None, ci: list[float] | None = None) -> str:
    """A rate with its 95% interval, `12.5 [8.1–18.7]`; `-` when there is none."""
    if value is None:
        return "-"
    return f"{value:.1f} [{ci[0]:.1f}–{ci[1]:.1f}]" if ci else f"{value:.1f}"


def _cells(cell: dict[str, Any]) -> list[str]:
    return [_fmt(cell.get("asr"), cell.get("asr_ci")), _fmt(cell.get("sri"), cell.get("sri_ci"))]


def _rows(metrics: dict[str, Any], taxonomy: Taxonomy, by: str) -> list[tuple[str, str]]:
    """(id, label) for every category (or scenario) any target has records in: taxonomy order first,
    then ids the taxonomy does not know (labelled by their id)."""
    present: dict[str, None] = {}
    for target in metrics.values():
        present.update(dict.fromkeys(target.get(f"by_{by}", {})))
    groups = taxonomy.categories if by == "category" else list(taxonomy.scenarios.values())
    rows = [(g.id, f"{g.abbr} {g.name}") for g in groups if g.id in present]
    known = {g.id for g in groups}
    rows += [(cid, cid) for cid in present if cid not in known]
    return rows


def _caption(metrics: dict[str, Any]) -> str | None:
    excluded, truncated = [], []
    for target, m in metrics.items():
        overall = m["overall"]
        counts = [(overall.get(k, 0), k) for k in ("hung", "error", "blocked")]
        if any(n for n, _ in counts):
            excluded.append(f"{target}: " + ", ".join(f"{n} {k}" for n, k in counts if n))
        if overall.get("truncated"):
            truncated.append(f"{target}: {overall['truncated']}")
    lines = []
    for target, m in metrics.items():
        reason = (m["overall"].get("asr_corrected") or {}).get("reason")
        if reason:
            lines.append(f"{target}: corrected ASR: {reason}")
        left_out = m.get("avg", {}).get("categories_left_out")
        if left_out:
            lines.append(f"{target}: AVG leaves out {', '.join(left_out)} (nothing decided)")
    if excluded:
        lines.append("Not in ASR/SRI (never counted as safe): " + "; ".join(excluded))
    if truncated:
        lines.append("Judged though cut at the token limit (truncated): " + "; ".join(truncated))
    return escape("\n".join(lines)) if lines else None


def summary_table(metrics: dict[str, Any], taxonomy: Taxonomy, by: str = "category") -> Table:
    """Categories (or scenarios, `by="scenario"`) x targets: ASR and SRI per target with 95% intervals,
    then the AVG (unweighted category mean) and Overall rows, and the jury-corrected ASR when a
    calibration was given. One column group per target, its name once, with the direction that is safer.

    Every string is escaped because target specs and unknown category ids come from the user and
    would otherwise be read as rich markup.
    """
    title = "SafeBench results · ASR % judged unsafe (lower is safer) · SRI 0-100 (higher is safer)"
    table = Table(title=title, caption=_caption(metrics))
    table.add_column("Category" if by == "category" else "Scenario")
    for target in metrics:
        table.add_column(escape(f"{target}\nASR ↓"), justify="right")
        table.add_column("\nSRI ↑", justify="right")

    for cid, label in _rows(metrics, taxonomy, by):
        cells = []
        for m in metrics.values():
            cells += _cells(m.get(f"by_{by}", {}).get(cid, {}))
        table.add_row(escape(label), *(escape(c) for c in cells))

    table.add_section()
    for label, key in (("AVG", "avg"), ("Overall", "overall")):
        cells = []
        for m in metrics.values():
            cells += _cells(m[key])
        table.add_row(escape(label), *(escape(c) for c in cells))
    for label, key in (("AVG, ASR corrected", "avg"), ("Overall, ASR corrected", "overall")):
        corrected = [m[key].get("asr_corrected") for m in metrics.values()]
        if any(corrected):
            cells = []
            for c in corrected:
                cells += [_fmt(c["value"], c["ci"]) if c else "-", ""]
            table.add_row(escape(label), *(escape(c) for c in cells))
    return table


def write_metrics(metrics: dict[str, Any], path: str | Path) -> None:
    """Write `metrics.json`; keys keep their insertion order (targets first-seen, taxonomy order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=2, sort_keys=False, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
