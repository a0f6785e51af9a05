"""The SafeBench paper's figures as inline SVG for the HTML report: radar, heatmap, leaderboard.

Pure functions of their arguments: the same input gives the same bytes (no clock, no random ids), so a
report can be diffed and cached. Each returns one self-contained `<svg>` (no script, no external
reference, no CSS the page must supply) with a `<title>` for screen readers. Every piece of text comes
from users or models (target labels, taxonomy names) and is escaped; characters XML cannot carry at
all are dropped first, since an escaped NUL would still make the document ill-formed.

Colours: Okabe–Ito lines, viridis cells (both colour-blind safe, see `figure_data`), dark text on a
white background, so a figure reads the same in a light page, a dark page and on paper.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from safebench.html_report.figure_data import (
    METRIC_HINT,
    METRIC_NAME,
    MISSING_COLOR,
    FigureData,
    figure_stems,
    reverse_scale,
    scale_color,
    series_style,
    text_color_on,
    title,
)

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK = "#1a1a1a"
MUTED = "#595959"  # 7:1 on white: readable for the secondary text too
GRID = "#c8c8c8"
# Radars with more axes than this print abbreviations (full names stay in the tooltips).
ABBREVIATE_OVER = 10
# Everything XML 1.0 forbids (control characters but tab/newline/CR, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ------------------------------------------------------------------------------------------ helpers


def _esc(text: object) -> str:
    return html.escape(_NOT_XML.sub("", str(text)), quote=True)


def _n(x: float) -> str:
    """A coordinate: two decimals are below a pixel's width at any sensible zoom, and keep files small."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Greedy word wrap into at most `lines` lines of about `width` characters (the last one shortened)."""
    out: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    if len(out) > lines:
        out = [*out[: lines - 1], " ".join(out[lines - 1 :])]
    return [_shorten(line, width + 2) for line in out] or [""]


def _clamp(value: float, top: float) -> float:
    return min(max(value, 0.0), top)


def _uid(kind: str, *parts: object) -> str:
    """An id unique to this figure's content, so that several SVGs inlined in one page (whose ids share
    one namespace) never reference each other's title or gradient, and the output stays deterministic."""
    digest = hashlib.sha256(repr((kind, *parts)).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"sb-{kind}-{digest}"


def _open(uid: str, width: float, height: float, title: str, desc: str) -> list[str]:
    # width/height are the natural size; a page scales the figure with its own CSS. Presentation
    # attributes only, no style attribute: the report's Content-Security-Policy allows no inline style.
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img" aria-labelledby="{uid}-t {uid}-d" '
        f'font-family="{_esc(FONT)}" font-size="12" fill="{INK}">',
        f'<title id="{uid}-t">{_esc(title)}</title>',
        f'<desc id="{uid}-d">{_esc(desc)}</desc>',
        # An opaque background: the figure keeps its contrast on a dark page.
        f'<rect width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>',
        f'<text x="{_n(width / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="600">'
        f"{_esc(title)}</text>",
    ]


def _tooltip(text: str) -> str:
    return f"<title>{_esc(text)}</title>"


# -------------------------------------------------------------------------------------------- radar


def radar_svg(
    series: Mapping[str, Mapping[str, float | None]],
    *,
    title: str,
    max_value: float = 100.0,
    abbreviations: Mapping[str, str] | None = None,
) -> str:
    """One polygon per target (`series`: `{target: {axis: value}}`) over the axes, clockwise from the
    top in the order the axes first appear. A missing value (None, or an axis absent from a target) is
    drawn at the centre with a hollow marker. With more than ten axes the labels are the
    `abbreviations` (`{axis: abbr}`) when given, else shortened; the full names are in the tooltips."""
    axes: list[str] = list(dict.fromkeys(a for values in series.values() for a in values))
    targets = list(series)
    top = max_value if max_value > 0 else 100.0
    many = len(axes) > ABBREVIATE_OVER
    radius = 170.0
    margin = 56.0 if many else 96.0  # room for the labels: short ones on many axes, wrapped names otherwise
    width = 2 * (radius + margin) + 40
    cx, cy = width / 2, 40 + margin + radius
    columns = 1 if len(targets) <= 3 else 2
    legend_rows = math.ceil(len(targets) / columns)
    legend_y = cy + radius + margin
    height = legend_y + 20 * legend_rows + 34
    uid = _uid("radar", title, max_value, [(t, list(v.items())) for t, v in series.items()])
    desc = f"Radar chart of {len(targets)} target(s) over {len(axes)} axes, scale 0 to {top:g}."
    out = _open(uid, width, height, title, desc)
    if not axes:
        out.append(f'<text x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle" fill="{MUTED}">no data</text>')
        return "\n".join([*out, "</svg>"])

    def point(index: int, value: float) -> tuple[float, float]:
        angle = 2 * math.pi * index / len(axes) - math.pi / 2
        r = radius * _clamp(value, top) / top
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    # Grid: rings (as paths, so that the only polygons are the targets) and spokes.
    rings = []
    for step in (0.25, 0.5, 0.75, 1.0):
        corners = [point(i, step * top) for i in range(len(axes))]
        rings.append("M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in corners) + " Z")
    spokes = [f"M{_n(cx)} {_n(cy)} L{_n(x)} {_n(y)}" for x, y in (point(i, top) for i in range(len(axes)))]
    out.append(f'<path class="grid" d="{" ".join(rings + spokes)}" fill="none" stroke="{GRID}"/>')
    for step in (0.25, 0.5, 0.75, 1.0):
        out.append(
            # Left of the top spoke and under its ring: clear of the first axis' label and its markers.
            f'<text x="{_n(cx - 4)}" y="{_n(cy - radius * step + 11)}" text-anchor="end" font-size="10" '
            f'fill="{MUTED}">'
            f"{step * top:g}</text>"
        )
    # Axis labels, anchored away from the centre.
    for i, axis in enumerate(axes):
        x, y = point(i, top * (1 + 18 / radius))
        dx = x - cx
        anchor = "middle" if abs(dx) < 1 else ("start" if dx > 0 else "end")
        if many:
            lines = [_shorten(abbreviations.get(axis, axis) if abbreviations else axis, 10)]
        else:
            lines = _wrap(axis, 16, 3)
        dy = y - cy
        # Labels above the centre grow upwards, below it downwards, beside it around the spoke's end.
        first = -(len(lines) - 1) * 13 if dy < -1 else (9 if dy > 1 else 4 - (len(lines) - 1) * 6.5)
        spans = "".join(
            f'<tspan x="{_n(x)}" dy="{_n(first if j == 0 else 13)}">{_esc(line)}</tspan>'
            for j, line in enumerate(lines)
        )
        out.append(
            f'<text class="axis" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="11">'
            f"{_tooltip(axis)}{spans}</text>"
        )
    # The targets: translucent fills so that overlaps stay visible, and a marker on every vertex.
    for index, target in enumerate(targets):
        style = series_style(index)
        values = [series[target].get(a) for a in axes]
        corners = [point(i, 0.0 if v is None else v) for i, v in enumerate(values)]
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        out.append(
            f'<polygon class="series" points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in corners)}" '
            f'fill="{style.color}" fill-opacity="0.08" stroke="{style.color}" stroke-width="2"'
            f'{dash} stroke-linejoin="round">{_tooltip(target)}</polygon>'
        )
        for axis, value, (x, y) in zip(axes, values, corners, strict=True):
            fill, text = (style.color, _value(value)) if value is not None else ("#ffffff", "no data")
            out.append(
                f'<circle class="{"point" if value is not None else "missing"}" cx="{_n(x)}" cy="{_n(y)}" '
                f'r="3.5" fill="{fill}" stroke="{style.color}" stroke-width="1.5">'
                f"{_tooltip(f'{target} — {axis}: {text}')}</circle>"
            )
    out += _legend(targets, width, legend_y)
    if any(series[t].get(a) is None for t in targets for a in axes):
        out.append(
            f'<text x="{_n(width / 2)}" y="{_n(height - 10)}" text-anchor="middle" font-size="11" '
            f'fill="{MUTED}">Hollow marker at the centre: no decided items on that axis.</text>'
        )
    return "\n".join([*out, "</svg>"])


def _legend(targets: Sequence[str], width: float, top: float) -> list[str]:
    columns = 1 if len(targets) <= 3 else 2
    column_width = (width - 40) / columns
    out = []
    for index, target in enumerate(targets):
        style = series_style(index)
        row, column = divmod(index, columns)
        x = 20 + column * column_width + (column_width / 2 - 120 if columns == 1 else 0)
        y = top + row * 20
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        out.append(
            f'<g class="legend"><line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 28)}" y2="{_n(y)}" '
            f'stroke="{style.color}" stroke-width="2.5"{dash}/>'
            f'<circle cx="{_n(x + 14)}" cy="{_n(y)}" r="3.5" fill="{style.color}"/>'
            f'<text x="{_n(x + 36)}" y="{_n(y + 4)}">{_tooltip(target)}'
            f"{_esc(_shorten(target, 42 if columns == 2 else 60))}</text></g>"
        )
    return out


# ------------------------------------------------------------------------------------------ heatmap


def heatmap_svg(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    reverse: bool = False,
    max_value: float = 100.0,
) -> str:
    """A grid of `rows` (categories or scenarios) × `cols` (targets), `values[row][col]` printed in
    each cell on its viridis colour (0..max_value; `reverse` flips the scale, e.g. so that dark means
    unsafe for ASR as for SRI). None is a grey cell showing "–"."""
    if len(values) != len(rows) or any(len(r) != len(cols) for r in values):
        raise ValueError(f"values must be {len(rows)} rows of {len(cols)} values")
    cell_w, cell_h = 76.0, 28.0
    longest_row = max((len(r) for r in rows), default=0)
    left = 16 + 6.6 * min(longest_row, 34)
    longest_col = max((len(c) for c in cols), default=0)
    tilt = longest_col > 10  # target labels wider than a cell are set at an angle
    head = 24 + (math.sin(math.radians(40)) * 6.6 * min(longest_col, 28) if tilt else 18)
    top = 34 + head
    width = max(left + cell_w * len(cols) + 24 + (36 if tilt else 0), 360)
    height = top + cell_h * len(rows) + 62
    uid = _uid("heatmap", title, list(rows), list(cols), [list(r) for r in values], reverse, max_value)
    desc = f"Heatmap of {len(rows)} rows by {len(cols)} targets, values 0 to {max_value:g}; – = no value."
    out = _open(uid, width, height, title, desc)
    for j, col in enumerate(cols):
        x = left + cell_w * (j + 0.5)
        label = _esc(_shorten(col, 28))
        if tilt:
            out.append(
                f'<text class="col" x="{_n(x)}" y="{_n(top - 8)}" text-anchor="start" '
                f'transform="rotate(-40 {_n(x)} {_n(top - 8)})">{_tooltip(col)}{label}</text>'
            )
        else:
            out.append(
                f'<text class="col" x="{_n(x)}" y="{_n(top - 8)}" text-anchor="middle">'
                f"{_tooltip(col)}{label}</text>"
            )
    for i, row in enumerate(rows):
        y = top + cell_h * i
        out.append(
            f'<text class="row" x="{_n(left - 8)}" y="{_n(y + cell_h / 2 + 4)}" text-anchor="end">'
            f"{_tooltip(row)}{_esc(_shorten(row, 34))}</text>"
        )
        for j, value in enumerate(values[i]):
            x = left + cell_w * j
            missing = value is None
            fill = MISSING_COLOR if missing else scale_color(value, reverse=reverse, max_value=max_value)
            ink = "#333333" if value is None else text_color_on(fill)
            shown = _value(value)
            out.append(
                f'<rect class="cell" x="{_n(x)}" y="{_n(y)}" width="{_n(cell_w)}" height="{_n(cell_h)}" '
                f'fill="{fill}" stroke="#ffffff" stroke-width="1.5">'
                f"{_tooltip(f'{row} × {cols[j]}: {shown}')}</rect>"
                f'<text x="{_n(x + cell_w / 2)}" y="{_n(y + cell_h / 2 + 4)}" text-anchor="middle" '
                f'fill="{ink}">{_esc(shown)}</text>'
            )
    out += _scale(uid, left, top + cell_h * len(rows) + 18, reverse, max_value)
    return "\n".join([*out, "</svg>"])


def _scale(uid: str, x: float, y: float, reverse: bool, max_value: float) -> list[str]:
    """The colour scale under the grid, with its ends and middle labelled."""
    bar_w = 200.0
    colors = [scale_color(k * max_value / 10, reverse=reverse, max_value=max_value) for k in range(11)]
    stops = "".join(f'<stop offset="{_n(k / 10)}" stop-color="{c}"/>' for k, c in enumerate(colors))
    out = [
        f'<defs><linearGradient id="{uid}-g" x1="0" x2="1" y1="0" y2="0">{stops}</linearGradient></defs>',
        f'<rect class="scale" x="{_n(x)}" y="{_n(y)}" width="{_n(bar_w)}" height="10" fill="url(#{uid}-g)"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        out.append(
            f'<text x="{_n(x + bar_w * frac)}" y="{_n(y + 24)}" text-anchor="middle" font-size="10" '
            f'fill="{MUTED}">{frac * max_value:g}</text>'
        )
    out.append(
        f'<rect x="{_n(x + bar_w + 16)}" y="{_n(y)}" width="14" height="10" fill="{MISSING_COLOR}"/>'
        f'<text x="{_n(x + bar_w + 36)}" y="{_n(y + 9)}" font-size="10" fill="{MUTED}">– no value</text>'
    )
    return out


# -------------------------------------------------------------------------------------- leaderboard


def leaderboard_svg(
    entries: Iterable[tuple[str, float | None, tuple[float, float] | None]],
    *,
    title: str,
    xlabel: str,
    max_value: float = 100.0,
) -> str:
    """Horizontal bars, top to bottom in the order given, each `(label, value, (low, high) or None)`
    with its interval as a whisker and the numbers printed after it; a None value gets no bar and "–"."""
    rows = list(entries)
    top_value = max_value if max_value > 0 else 100.0
    longest = max((len(label) for label, _, _ in rows), default=0)
    left = 16 + 6.6 * min(longest, 34)
    plot_w, row_h = 340.0, 26.0
    top = 40.0
    width = left + plot_w + 130
    height = top + row_h * len(rows) + 56
    uid = _uid("leaderboard", title, xlabel, max_value, rows)
    desc = f"Bar chart of {len(rows)} target(s), scale 0 to {top_value:g}, whiskers are 95% intervals."
    out = _open(uid, width, height, title, desc)

    def x_of(value: float) -> float:
        return left + plot_w * _clamp(value, top_value) / top_value

    bottom = top + row_h * len(rows)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x_of(frac * top_value)
        out.append(
            f'<line x1="{_n(x)}" y1="{_n(top - 4)}" x2="{_n(x)}" y2="{_n(bottom)}" stroke="{GRID}"/>'
            f'<text x="{_n(x)}" y="{_n(bottom + 14)}" text-anchor="middle" font-size="10" fill="{MUTED}">'
            f"{frac * top_value:g}</text>"
        )
    out.append(
        f'<text x="{_n(left + plot_w / 2)}" y="{_n(bottom + 34)}" text-anchor="middle">{_esc(xlabel)}</text>'
    )
    for index, (label, value, ci) in enumerate(rows):
        y = top + row_h * index
        mid = y + row_h / 2
        out.append(
            f'<text class="label" x="{_n(left - 8)}" y="{_n(mid + 4)}" text-anchor="end">'
            f"{_tooltip(label)}{_esc(_shorten(label, 34))}</text>"
        )
        if value is None:
            out.append(
                f'<text x="{_n(left + 6)}" y="{_n(mid + 4)}" fill="{MUTED}">– (no decided items)</text>'
            )
            continue
        style = series_style(0)
        text = f"{value:.1f}" + (f" [{ci[0]:.1f}–{ci[1]:.1f}]" if ci else "")
        out.append(
            f'<rect class="bar" x="{_n(left)}" y="{_n(y + 5)}" width="{_n(x_of(value) - left)}" '
            f'height="{_n(row_h - 10)}" fill="{style.color}" fill-opacity="0.85">'
            f"{_tooltip(f'{label}: {text}')}</rect>"
        )
        end = x_of(value)
        if ci:
            lo, hi = x_of(ci[0]), x_of(ci[1])
            out.append(
                f'<path class="ci" d="M{_n(lo)} {_n(mid)} L{_n(hi)} {_n(mid)} M{_n(lo)} {_n(mid - 5)} '
                f'L{_n(lo)} {_n(mid + 5)} M{_n(hi)} {_n(mid - 5)} L{_n(hi)} {_n(mid + 5)}" '
                f'stroke="{INK}" stroke-width="1.5" fill="none"/>'
            )
            end = max(end, hi)
        out.append(f'<text x="{_n(end + 6)}" y="{_n(mid + 4)}" font-size="11">{_esc(text)}</text>')
    return "\n".join([*out, "</svg>"])


# ------------------------------------------------------------------------------------------- all of them


def svg_figures(data: FigureData) -> dict[str, str]:
    """Every figure of `figure_stems()` as SVG, keyed by the same stem as its PNG/PDF file."""
    out: dict[str, str] = {}
    for stem, kind, metric, level in figure_stems():
        heading = title(kind, metric, level)
        if kind == "radar":
            out[stem] = radar_svg(
                data.radar(metric, level), title=heading, abbreviations=data.abbreviations(level)
            )
        elif kind == "heatmap":
            rows, cols, values = data.matrix(metric, level)
            out[stem] = heatmap_svg(rows, cols, values, title=heading, reverse=reverse_scale(metric))
        else:
            xlabel = f"AVG {METRIC_NAME[metric]} ({METRIC_HINT[metric]})"
            out[stem] = leaderboard_svg(data.leaderboard(metric), title=heading, xlabel=xlabel)
    return out
