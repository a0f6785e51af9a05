"""The SafeBench paper's figures as PNG (300 dpi) and PDF files, for a paper or slides.

matplotlib is an optional dependency (`pip install 'safebench[figures]'`): the HTML report draws the
same figures as SVG without it (`safebench.html_report.svg`). Both read `figure_data`, so the files
and the report agree on order, labels, values and colours.

The figures are drawn on `matplotlib.figure.Figure` objects with the Agg canvas, never through
pyplot: no global figure registry, no interactive backend is selected (works headless) and the
caller's own pyplot state and backend are left alone.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safebench.html_report.figure_data import (
    METRIC_HINT,
    METRIC_NAME,
    MISSING_COLOR,
    FigureData,
    Level,
    Metric,
    figure_data,
    figure_stems,
    reverse_scale,
    scale_color,
    series_style,
    text_color_on,
    title,
)
from safebench.schema import Taxonomy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 300
INSTALL_HINT = "pip install 'safebench[figures]' to write PNG/PDF figures"
# Paper-sized text: legible at the figure's printed size (about a column wide).
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    # TrueType (Type 42) fonts, embedded and subset: the default Type 3 is rejected by some paper
    # submission checkers (IEEE PDF eXpress, ACM) and its text cannot be searched in every viewer.
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# No creation date in the PDF: the same metrics give the same file.
PDF_METADATA: dict[str, Any] = {"CreationDate": None}


class FiguresUnavailable(ModuleNotFoundError):
    """matplotlib is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT, name="matplotlib")


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise FiguresUnavailable() from exc
    return matplotlib


def write_figures(metrics: dict[str, dict], taxonomy: Taxonomy, out_dir: Path) -> list[Path]:
    """Every figure of `figure_stems()` as `<stem>.png` (300 dpi) and `<stem>.pdf` in `out_dir`
    (created if missing); returns the paths written, PNG then PDF per figure, in that order.
    Raises FiguresUnavailable (a ModuleNotFoundError) without matplotlib."""
    matplotlib = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    data = figure_data(metrics, taxonomy)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with matplotlib.rc_context(RC):
        for stem, kind, metric, level in figure_stems():
            if kind == "radar":
                fig = _radar(data, metric, level)
            elif kind == "heatmap":
                fig = _heatmap(data, metric, level)
            else:
                fig = _leaderboard(data, metric)
            FigureCanvasAgg(fig)
            for suffix in ("png", "pdf"):
                path = out_dir / f"{stem}.{suffix}"
                if suffix == "png":
                    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
                else:
                    fig.savefig(path, bbox_inches="tight", facecolor="white", metadata=PDF_METADATA)
                written.append(path)
    return written


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _no_data(fig: Figure, heading: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(heading)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", color="#595959")
    return fig


# -------------------------------------------------------------------------------------------- radar


def _radar(data: FigureData, metric: Metric, level: Level) -> Figure:
    axes = data.axes(level)
    heading = title("radar", metric, level)
    fig = _figure(6.0, 6.6)
    if not axes:
        return _no_data(fig, heading)
    many = len(axes) > 10
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)  # clockwise from the top, as in the SVG and the paper
    angles = [2 * math.pi * i / len(axes) for i in range(len(axes))]
    ax.set_xticks(angles)
    # Many axes: abbreviations; few: full names wrapped (the SVG does the same).
    labels = [a.abbr if many else "\n".join(textwrap.wrap(a.label, 16)[:3]) for a in axes]
    ax.set_xticklabels(labels, fontsize=8 if many else 8.5)
    ax.tick_params(axis="x", pad=4 if many else 6)
    # Anchored away from the circle (matplotlib centres them, so long names would cross the ring).
    for angle, label in zip(angles, ax.get_xticklabels(), strict=True):
        side = math.sin(angle)
        label.set_horizontalalignment("center" if abs(side) < 1e-6 else ("left" if side > 0 else "right"))
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100])
    ax.set_yticklabels(["25", "50", "75", "100"], fontsize=7, color="#595959")
    ax.set_rlabel_position(-360 / len(axes) / 2)  # ring labels between the first two spokes
    ax.grid(color="#c8c8c8", linewidth=0.6)
    ax.spines["polar"].set_color("#c8c8c8")
    missing_any = False
    radar = data.radar(metric, level)
    for index, target in enumerate(data.targets):
        style = series_style(index)
        values = [radar[target][a.label] for a in axes]
        filled = [0.0 if v is None else v for v in values]
        closed_angles, closed = [*angles, angles[0]], [*filled, filled[0]]
        dashes = tuple(float(d) for d in style.dash.split()) if style.dash else ()
        (line,) = ax.plot(
            closed_angles,
            closed,
            color=style.color,
            linewidth=1.6,
            marker=style.marker,
            markersize=3.5,
            label=target,
        )
        if dashes:
            line.set_dashes(dashes)
        ax.fill(closed_angles, closed, color=style.color, alpha=0.08)
        gaps = [angles[i] for i, v in enumerate(values) if v is None]
        if gaps:
            missing_any = True
            ax.plot(
                gaps,
                [0.0] * len(gaps),
                linestyle="none",
                marker="o",
                markersize=5,
                markerfacecolor="white",
                markeredgecolor=style.color,
            )
    ax.set_title(heading, pad=18)
    # An axes legend under the circle: constrained layout counts it as part of the axes, so the
    # figure-level note below (supxlabel) gets its own room instead of overlapping it.
    legend = ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1 if many else -0.14),
        ncols=1 if len(data.targets) <= 3 else 2,
        frameon=False,
        fontsize=8,
    )
    for text in legend.get_texts():
        text.set_text(textwrap.shorten(text.get_text(), 48, placeholder="…"))
    notes = []
    if many:
        notes.append(", ".join(f"{a.abbr} {a.label}" for a in axes))
    if missing_any:
        notes.append("Hollow marker at the centre: no decided items on that axis.")
    if notes:
        fig.supxlabel(
            "\n".join(textwrap.fill(n, 120) for n in notes), fontsize=6.5 if many else 7, color="#595959"
        )
    return fig


# ------------------------------------------------------------------------------------------ heatmap


def _heatmap(data: FigureData, metric: Metric, level: Level) -> Figure:
    rows, cols, values = data.matrix(metric, level)
    heading = title("heatmap", metric, level)
    width = min(max(2.4 + 0.85 * len(cols), 4.5), 11.0)
    fig = _figure(width, 1.3 + 0.32 * max(len(rows), 1))
    if not rows or not cols:
        return _no_data(fig, heading)
    from matplotlib.colors import LinearSegmentedColormap

    reverse = reverse_scale(metric)
    # The SVG's scale, sampled: both renderers colour a value the same.
    cmap = LinearSegmentedColormap.from_list(
        "safebench", [scale_color(k, reverse=reverse) for k in range(0, 101, 5)]
    )
    ax = fig.add_subplot()
    colors = [
        [_rgb(MISSING_COLOR if v is None else scale_color(v, reverse=reverse)) for v in r] for r in values
    ]
    ax.imshow(colors, aspect="auto", interpolation="nearest")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            fill = MISSING_COLOR if value is None else scale_color(value, reverse=reverse)
            ax.text(
                j,
                i,
                "–" if value is None else f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="#333333" if value is None else text_color_on(fill),
            )
    ax.set_xticks(range(len(cols)))
    tilt = max(len(c) for c in cols) > 10
    ax.set_xticklabels(
        [textwrap.shorten(c, 28, placeholder="…") for c in cols],
        rotation=35 if tilt else 0,
        ha="left" if tilt else "center",
        rotation_mode="anchor",
    )
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([textwrap.shorten(r, 34, placeholder="…") for r in rows])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks([x - 0.5 for x in range(1, len(cols))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(heading)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 100), cmap), ax=ax, fraction=0.05, pad=0.02)
    bar.set_label(f"{METRIC_NAME[metric]} ({METRIC_HINT[metric]}); grey: no value", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return tuple(int(hex_color[k : k + 2], 16) / 255 for k in (1, 3, 5))  # type: ignore[return-value]


# -------------------------------------------------------------------------------------- leaderboard


def _leaderboard(data: FigureData, metric: Metric) -> Figure:
    entries = data.leaderboard(metric)
    heading = title("leaderboard", metric)
    fig = _figure(6.0, 1.2 + 0.32 * max(len(entries), 1))
    if not entries:
        return _no_data(fig, heading)
    ax = fig.add_subplot()
    color = series_style(0).color
    positions = range(len(entries))
    for y, (_, value, ci) in zip(positions, entries, strict=True):
        if value is None:
            ax.text(1, y, "– (no decided items)", va="center", fontsize=8, color="#595959")
            continue
        ax.barh(y, value, height=0.6, color=color, alpha=0.85)
        end = value
        if ci:
            ax.errorbar(
                value,
                y,
                xerr=[[max(value - ci[0], 0)], [max(ci[1] - value, 0)]],
                fmt="none",
                ecolor="#1a1a1a",
                elinewidth=1,
                capsize=3,
            )
            end = max(end, ci[1])
        label = f"{value:.1f}" + (f" [{ci[0]:.1f}–{ci[1]:.1f}]" if ci else "")
        ax.text(end + 1.5, y, label, va="center", fontsize=7.5)
    ax.set_yticks(list(positions))
    ax.set_yticklabels([textwrap.shorten(t, 34, placeholder="…") for t, _, _ in entries])
    ax.invert_yaxis()  # the first entry (the safest) on top
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.grid(axis="x", color="#c8c8c8", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"AVG {METRIC_NAME[metric]} ({METRIC_HINT[metric]})")
    ax.set_title(heading)
    # Interval labels past a bar near 100 would leave the axes: let them, rather than clip the numbers.
    for text in ax.texts:
        text.set_clip_on(False)
    return fig
