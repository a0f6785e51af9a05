"""Leaderboard and the category/scenario × target heatmap tables, from metrics.json cells.

Cell colours are CSS classes (`hm0`..`hm10`, the figures' viridis stops), not inline styles: the page's
Content-Security-Policy allows only its one hashed stylesheet, so a `style=` attribute would be ignored.
Dark always means less safe, for ASR and SRI alike, as in the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safebench.html_report.figure_data import VIRIDIS, reverse_scale, text_color_on
from safebench.html_report.overview import Target
from safebench.schema import Taxonomy

METRIC_LABEL = {"asr": "ASR", "sri": "SRI"}
METRIC_HINT = {"asr": "% unsafe among decided items, lower is safer", "sri": "0–100, higher is safer"}


def fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "–"


def fmt_ci(ci: Any) -> str:
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci):
        return f"[{ci[0]:.1f}–{ci[1]:.1f}]"
    return ""


def shade(metric: str, value: Any) -> str:
    """The heatmap class of a value: `hm0` (lightest, safest) … `hm10` (darkest), `hm-none` if none."""
    if not isinstance(value, int | float):
        return "hm-none"
    t = min(max(value / 100.0, 0.0), 1.0)
    if reverse_scale(metric):  # type: ignore[arg-type]
        t = 1.0 - t
    # viridis runs dark → light; the class number counts darkness so that it reads "higher = less safe".
    return f"hm{len(VIRIDIS) - 1 - round(t * (len(VIRIDIS) - 1))}"


def palette_css() -> str:
    """The heatmap classes, from the figures' palette, so tables and SVG figures look the same."""
    rules = []
    for darkness, color in enumerate(reversed(VIRIDIS)):
        rules.append(f".hm{darkness}{{background:{color};color:{text_color_on(color)}}}")
    return "\n".join(rules) + "\n"


@dataclass(frozen=True)
class Corrected:
    text: str
    ci: str
    reason: str


def corrected(cell: dict[str, Any]) -> Corrected | None:
    raw = cell.get("asr_corrected")
    if not isinstance(raw, dict):
        return None
    return Corrected(fmt(raw.get("value")), fmt_ci(raw.get("ci")), str(raw.get("reason") or ""))


@dataclass(frozen=True)
class Cell:
    text: str
    ci: str
    css: str
    title: str  # the hover text: the value, its interval and the counts behind it
    corrected: Corrected | None


def cell(metric: str, raw: dict[str, Any] | None) -> Cell:
    raw = raw or {}
    value, ci = raw.get(metric), fmt_ci(raw.get(f"{metric}_ci"))
    counts = ", ".join(f"{k} {raw[k]}" for k in ("n", "decided", "hung", "error", "blocked") if k in raw)
    title = f"{METRIC_LABEL[metric]} {fmt(value)} {ci} (95%)".strip() + (f"; {counts}" if counts else "")
    fixed = corrected(raw) if metric == "asr" else None
    if fixed:
        title += f"; corrected ASR {fixed.text} {fixed.ci}".rstrip()
    return Cell(fmt(value), ci, shade(metric, value), title, fixed)


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    abbr: str
    definition: str
    cells: list[Cell]
    group: str = ""  # the category of a scenario row


@dataclass(frozen=True)
class HeatTable:
    metric: str
    label: str
    hint: str
    categories: list[Row]
    scenarios: list[Row]
    summary: list[Row]  # AVG and Overall


def _present(targets: list[Target], key: str) -> dict[str, None]:
    present: dict[str, None] = {}
    for t in targets:
        present.update(dict.fromkeys(t.metrics.get(key) or {}))
    return present


def heat_table(metric: str, targets: list[Target], taxonomy: Taxonomy) -> HeatTable:
    """Rows in taxonomy order, then ids the taxonomy does not know (so no cell disappears)."""

    def rows(key: str, known: list[tuple[str, str, str, str, str]]) -> list[Row]:
        present = _present(targets, key)
        ordered = [k for k in known if k[0] in present]
        ordered += [(i, i, i, "", "") for i in present if i not in {k[0] for k in known}]
        return [
            Row(
                i,
                name,
                abbr,
                definition,
                [cell(metric, (t.metrics.get(key) or {}).get(i)) for t in targets],
                g,
            )
            for i, name, abbr, definition, g in ordered
        ]

    known_categories = [(c.id, c.name, c.abbr, c.definition, "") for c in taxonomy.categories]
    known_scenarios = [
        (s.id, s.name, s.abbr, s.definition, c.name) for c in taxonomy.categories for s in c.scenarios
    ]
    summary = [
        Row(
            "avg",
            "AVG",
            "AVG",
            "unweighted mean over categories",
            [cell(metric, t.metrics.get("avg")) for t in targets],
        ),
        Row(
            "overall",
            "Overall",
            "All",
            "all decided items",
            [cell(metric, t.metrics.get("overall")) for t in targets],
        ),
    ]
    return HeatTable(
        metric,
        METRIC_LABEL[metric],
        METRIC_HINT[metric],
        rows("by_category", known_categories),
        rows("by_scenario", known_scenarios),
        summary,
    )


@dataclass(frozen=True)
class JuryRow:
    key: str
    kappa: str
    raters: str
    items: str
    mean_rounds: str
    calls_per_item: str


def jury_rows(targets: list[Target]) -> list[JuryRow]:
    def number(value: Any, digits: int) -> str:
        return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"

    out = []
    for t in targets:
        agreement = t.metrics.get("agreement") or {}
        out.append(
            JuryRow(
                t.key,
                number(agreement.get("fleiss_kappa"), 3),
                str(agreement.get("raters", "–")),
                str(agreement.get("items", "–")),
                number(t.metrics.get("mean_rounds"), 2),
                number(t.metrics.get("calls_per_item"), 1),
            )
        )
    return out


@dataclass(frozen=True)
class BoardRow:
    rank: int
    key: str
    spec: str
    run: int
    value: str
    ci: str
    css: str
    other: str  # the other metric, for context
    corrected: Corrected | None
    decided: str
    left_out: list[str]


def leaderboard(metric: str, targets: list[Target]) -> list[BoardRow]:
    """Targets by AVG, safest first (ASR ascending, SRI descending); no value last; ties keep the
    targets' order (the same rule as the figures' leaderboard)."""
    sign = 1.0 if metric == "asr" else -1.0
    other = "sri" if metric == "asr" else "asr"

    def key(indexed: tuple[int, Target]) -> tuple[bool, float, int]:
        index, target = indexed
        value = (target.metrics.get("avg") or {}).get(metric)
        number = isinstance(value, int | float)
        return (not number, sign * value if number else 0.0, index)

    rows = []
    for rank, (_, t) in enumerate(sorted(enumerate(targets), key=key), 1):
        avg, overall = t.metrics.get("avg") or {}, t.metrics.get("overall") or {}
        rows.append(
            BoardRow(
                rank=rank,
                key=t.key,
                spec=t.spec,
                run=t.run,
                value=fmt(avg.get(metric)),
                ci=fmt_ci(avg.get(f"{metric}_ci")),
                css=shade(metric, avg.get(metric)),
                other=f"{METRIC_LABEL[other]} {fmt(avg.get(other))} {fmt_ci(avg.get(other + '_ci'))}".strip(),
                corrected=corrected(avg) if metric == "asr" else None,
                decided=f"{overall.get('decided', '–')} of {overall.get('n', '–')}",
                left_out=[str(c) for c in avg.get("categories_left_out") or []],
            )
        )
    return rows
