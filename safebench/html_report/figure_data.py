"""What the figures show, taken from a run's `metrics.json` once: axes in taxonomy order, per-target
values and intervals, leaderboard order, titles and the palette.

Both renderers read this: the SVG functions of the HTML report (`safebench.html_report.svg`) and the
PNG/PDF writer (`safebench.html_report.figures`), so a figure in the report and the same figure in a
paper cannot disagree on order, labels or values. No matplotlib here: the HTML report must not need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from safebench.schema import Taxonomy

Metric = Literal["asr", "sri"]
Level = Literal["categories", "scenarios"]
Interval = tuple[float, float]

METRICS: tuple[Metric, ...] = ("asr", "sri")
LEVELS: tuple[Level, ...] = ("categories", "scenarios")
# Where each level lives in a target's metrics.
_LEVEL_KEY: dict[Level, str] = {"categories": "by_category", "scenarios": "by_scenario"}

METRIC_NAME: dict[Metric, str] = {"asr": "ASR", "sri": "SRI"}
# Said on every figure: the two metrics run in opposite directions, and a reader must not have to guess.
METRIC_HINT: dict[Metric, str] = {"asr": "% unsafe, lower is safer", "sri": "0–100, higher is safer"}
LEVEL_NAME: dict[Level, str] = {"categories": "category", "scenarios": "scenario"}

# Okabe–Ito, without its yellow (too faint on white and in print); beyond seven targets the colours
# repeat with another dash pattern and marker, so no two series rely on colour alone.
SERIES_COLORS: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
SERIES_DASHES: tuple[str, ...] = ("", "6 3", "2 2", "8 3 2 3")
SERIES_MARKERS: tuple[str, ...] = ("o", "s", "^", "D")
# viridis at 0, 0.1, ..., 1 (as matplotlib defines it): perceptually uniform, colour-blind safe, and
# monotonic in lightness, so a greyscale print still orders the cells.
VIRIDIS: tuple[str, ...] = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
MISSING_COLOR = "#d9d9d9"  # a cell without a value: neutral grey, outside the colour scale


@dataclass(frozen=True)
class SeriesStyle:
    color: str
    dash: str  # an SVG stroke-dasharray ("" = solid)
    marker: str  # a matplotlib marker


def series_style(index: int) -> SeriesStyle:
    """The look of the `index`-th target, the same in SVG and in matplotlib."""
    cycle = index // len(SERIES_COLORS)
    return SeriesStyle(
        color=SERIES_COLORS[index % len(SERIES_COLORS)],
        dash=SERIES_DASHES[cycle % len(SERIES_DASHES)],
        marker=SERIES_MARKERS[cycle % len(SERIES_MARKERS)],
    )


def scale_color(value: float, *, reverse: bool = False, max_value: float = 100.0) -> str:
    """`value` (0..max_value) on the viridis scale, linearly between its eleven stops."""
    t = min(max(value / max_value, 0.0), 1.0) if max_value > 0 else 0.0
    if reverse:
        t = 1.0 - t
    position = t * (len(VIRIDIS) - 1)
    low = min(int(position), len(VIRIDIS) - 2)
    frac = position - low
    a, b = _rgb(VIRIDIS[low]), _rgb(VIRIDIS[low + 1])
    return "#" + "".join(f"{round(x + (y - x) * frac):02x}" for x, y in zip(a, b, strict=True))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def text_color_on(background: str) -> str:
    """Black or white, whichever reads better on `background` (WCAG relative luminance)."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(background))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # The crossover where black and white give the same contrast ratio.
    return "#000000" if luminance > 0.179 else "#ffffff"


def reverse_scale(metric: Metric) -> bool:
    """Heatmap colours run so that dark always means less safe: ASR (high = unsafe) is reversed."""
    return metric == "asr"


@dataclass(frozen=True)
class Axis:
    id: str
    label: str  # the full name (made unique: two names alike get their id appended)
    abbr: str


@dataclass(frozen=True)
class Cell:
    value: float | None
    ci: Interval | None


@dataclass(frozen=True)
class FigureData:
    """Everything the figures need. `values[metric][level][target][axis id]` and `avg[metric][target]`."""

    targets: tuple[str, ...]
    categories: tuple[Axis, ...]
    scenarios: tuple[Axis, ...]
    values: Mapping[Metric, Mapping[Level, Mapping[str, Mapping[str, Cell]]]]
    avg: Mapping[Metric, Mapping[str, Cell]]

    def axes(self, level: Level) -> tuple[Axis, ...]:
        return self.categories if level == "categories" else self.scenarios

    def radar(self, metric: Metric, level: Level) -> dict[str, dict[str, float | None]]:
        """`{target: {axis label: value}}`, axes in taxonomy order: what `radar_svg` takes."""
        axes = self.axes(level)
        cells = self.values[metric][level]
        return {t: {a.label: cells[t][a.id].value for a in axes} for t in self.targets}

    def abbreviations(self, level: Level) -> dict[str, str]:
        """`{axis label: abbreviation}` for radars with too many axes to print full names."""
        return {a.label: a.abbr for a in self.axes(level)}

    def matrix(
        self, metric: Metric, level: Level = "categories"
    ) -> tuple[list[str], list[str], list[list[float | None]]]:
        """(rows = axis labels, cols = targets, values[row][col]): what `heatmap_svg` takes."""
        axes = self.axes(level)
        cells = self.values[metric][level]
        values = [[cells[t][a.id].value for t in self.targets] for a in axes]
        return [a.label for a in axes], list(self.targets), values

    def leaderboard(self, metric: Metric) -> list[tuple[str, float | None, Interval | None]]:
        """(target, AVG, interval), safest first (lowest ASR, highest SRI); targets without a value
        last; ties keep the run's target order."""
        cells = self.avg[metric]
        sign = 1.0 if metric == "asr" else -1.0

        def key(indexed: tuple[int, str]) -> tuple[int, float, int]:
            index, target = indexed
            value = cells[target].value
            return (value is None, 0.0 if value is None else sign * value, index)

        ordered = sorted(enumerate(self.targets), key=key)
        return [(t, cells[t].value, cells[t].ci) for _, t in ordered]


def title(
    kind: Literal["radar", "heatmap", "leaderboard"], metric: Metric, level: Level = "categories"
) -> str:
    name, hint = METRIC_NAME[metric], METRIC_HINT[metric]
    if kind == "leaderboard":
        return f"AVG {name} per target ({hint}; 95% interval)"
    return f"{name} by {LEVEL_NAME[level]} ({hint})"


def figure_stems() -> list[tuple[str, Literal["radar", "heatmap", "leaderboard"], Metric, Level]]:
    """(file stem, kind, metric, level) of every figure, in the order they are written and shown."""
    stems: list[tuple[str, Literal["radar", "heatmap", "leaderboard"], Metric, Level]] = []
    for level in LEVELS:
        stems += [(f"radar_{m}_{level}", "radar", m, level) for m in METRICS]
    stems += [(f"heatmap_{m}_categories", "heatmap", m, "categories") for m in METRICS]
    stems += [(f"leaderboard_{m}", "leaderboard", m, "categories") for m in METRICS]
    return stems


def _interval(raw: Any) -> Interval | None:
    if isinstance(raw, list | tuple) and len(raw) == 2 and all(isinstance(x, int | float) for x in raw):
        return float(raw[0]), float(raw[1])
    return None


def _cell(raw: Mapping[str, Any] | None, metric: Metric) -> Cell:
    if not raw:
        return Cell(None, None)
    value = raw.get(metric)
    return Cell(float(value) if isinstance(value, int | float) else None, _interval(raw.get(f"{metric}_ci")))


def _axes(present: Mapping[str, None], known: list[tuple[str, str, str]]) -> tuple[Axis, ...]:
    """Axes any target has a cell for: the taxonomy's in its order, then ids it does not know (so that
    no cell silently disappears; labelled by their id, like the terminal table does)."""
    rows = [(i, name, abbr) for i, name, abbr in known if i in present]
    known_ids = {i for i, _, _ in known}
    rows += [(i, i, i) for i in present if i not in known_ids]
    seen: dict[str, int] = {}
    for _, name, _ in rows:
        seen[name] = seen.get(name, 0) + 1
    # Labels key the radar series, so two scenarios sharing a name would merge: keep them apart.
    return tuple(Axis(i, f"{name} ({i})" if seen[name] > 1 else name, abbr) for i, name, abbr in rows)


def figure_data(metrics: Mapping[str, Mapping[str, Any]], taxonomy: Taxonomy) -> FigureData:
    """The figures' data from `metrics.json` (`{target: {"by_category", "by_scenario", "avg", ...}}`)."""
    targets = tuple(metrics)
    known: dict[Level, list[tuple[str, str, str]]] = {
        "categories": [(c.id, c.name, c.abbr) for c in taxonomy.categories],
        "scenarios": [(s.id, s.name, s.abbr) for c in taxonomy.categories for s in c.scenarios],
    }
    axes: dict[Level, tuple[Axis, ...]] = {}
    for level in LEVELS:
        present: dict[str, None] = {}
        for m in metrics.values():
            present.update(dict.fromkeys(m.get(_LEVEL_KEY[level]) or {}))
        axes[level] = _axes(present, known[level])
    values = {
        metric: {
            level: {
                t: {
                    a.id: _cell((metrics[t].get(_LEVEL_KEY[level]) or {}).get(a.id), metric)
                    for a in axes[level]
                }
                for t in targets
            }
            for level in LEVELS
        }
        for metric in METRICS
    }
    avg = {metric: {t: _cell(metrics[t].get("avg"), metric) for t in targets} for metric in METRICS}
    return FigureData(targets, axes["categories"], axes["scenarios"], values, avg)
