"""Assemble the page: the Jinja template (autoescape on), the stylesheet and script inlined with a
Content-Security-Policy that allows exactly those two (by sha256) and data: media, and nothing else.

The report shows untrusted text (model answers, juror reasoning, labels, persona text, file names):
on the server every string goes through the template's autoescape; the records go into one JSON
document (`script_json`, where `<`, `>` and `&` are \\u escapes) that the script renders with
textContent. The CSP is the second wall: even an injected tag could neither run a script nor load
anything from the network.
"""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

import safebench
from safebench.html_report.conditions import compare_conditions
from safebench.html_report.items import page_data, page_json
from safebench.html_report.loading import RunData, load_runs
from safebench.html_report.media import MediaTable
from safebench.html_report.overview import dataset_mismatch, page_targets, run_overview
from safebench.html_report.tables import heat_table, jury_rows, leaderboard, palette_css
from safebench.schema import Taxonomy

ASSETS = "assets"
TEMPLATE = "report.html.j2"
STYLES = ("report.css",)
SCRIPTS = ("report.js", "item.js", "compare.js")
PAGE_SIZE = 50

# What an embedded SVG figure may contain. The figures come from safebench.html_report.svg, which
# escapes its text; this check is defence in depth, since they are inserted as markup, not text.
_SVG_TAGS = {
    "svg", "g", "title", "desc", "path", "line", "polyline", "polygon", "circle", "ellipse", "rect",
    "text", "tspan", "defs", "lineargradient", "radialgradient", "stop", "clippath", "use", "marker",
}  # fmt: skip
_SVG_NS = re.compile(r"^\{[^}]*\}")


def asset_text(name: str) -> str:
    return (resources.files("safebench.html_report") / ASSETS / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(style: str, script: str) -> str:
    # default-src 'none' also covers fonts, frames, fetch/XHR and workers; base-uri and form-action
    # are not covered by default-src, so they are closed explicitly.
    return "; ".join(
        [
            "default-src 'none'",
            "img-src data:",
            "media-src data:",
            f"style-src {csp_hash(style)}",
            f"script-src {csp_hash(script)}",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def safe_svg(markup: str) -> bool:
    """True if `markup` is one <svg> of drawing elements only: no script, foreignObject, event handler
    attribute, or reference outside the document."""
    try:
        root = ET.fromstring(markup)
    except ET.ParseError:
        return False
    if _SVG_NS.sub("", root.tag).lower() != "svg":
        return False
    for element in root.iter():
        if _SVG_NS.sub("", str(element.tag)).lower() not in _SVG_TAGS:
            return False
        for name, value in element.attrib.items():
            local = _SVG_NS.sub("", name).lower()
            if local.startswith("on"):
                return False
            if local == "href" and not value.startswith("#"):
                return False
            if "url(" in value and not re.fullmatch(r"url\(#[\w\-]+\)", value.strip()):
                return False
    return True


def svg_figures(
    metrics: dict[str, dict[str, Any]], taxonomy: Taxonomy
) -> tuple[list[tuple[str, Markup]], str | None]:
    """[(stem, svg markup)] of the figures, and a note when some or all are not shown."""
    try:
        from safebench.html_report.figure_data import figure_data
        from safebench.html_report.svg import svg_figures as draw
    except ImportError:
        return [], "figures not available in this installation"
    figures = draw(figure_data(metrics, taxonomy))
    shown = [(stem, Markup(svg)) for stem, svg in figures.items() if safe_svg(svg)]
    dropped = len(figures) - len(shown)
    return shown, (f"{dropped} figure(s) left out: they failed the page's safety check" if dropped else None)


def _merged_taxonomy(runs: list[RunData]) -> Taxonomy:
    """The first run's taxonomy plus categories only other runs know, for figures of several runs."""
    first = runs[0].taxonomy
    known = {c.id for c in first.categories}
    extra = [c for run in runs[1:] for c in run.taxonomy.categories if c.id not in known]
    return (
        first
        if not extra
        else Taxonomy(name=first.name, version=first.version, categories=[*first.categories, *extra])
    )


def page_title(runs: list[RunData]) -> str:
    return "SafeBench report: " + ", ".join(run.name for run in runs)


def render_page(runs: list[RunData], *, media: MediaTable | None = None) -> str:
    """The complete HTML document of the runs."""
    return "".join(page_stream(runs, media=media))


def page_stream(runs: list[RunData], *, media: MediaTable | None = None) -> Iterator[str]:
    """The HTML document of the runs in pieces, to be written as they come: for a large run the page
    is tens of megabytes, and holding it whole (and its encoding) would double the report's peak."""
    media = media or MediaTable()
    comparison = compare_conditions(runs)
    targets = page_targets(runs, comparison.labels if comparison else None)
    taxonomy = _merged_taxonomy(runs)
    metrics_by_key = {t.key: t.metrics for t in targets if t.metrics}
    figures, figures_note = svg_figures(metrics_by_key, taxonomy) if metrics_by_key else ([], None)
    data = page_data(runs, targets, media)
    records = len(data["records"])
    document = Markup(page_json(data))
    del data  # the records' JSON pieces: the document holds them now
    style = asset_text("report.css") + palette_css()
    script = "\n".join(asset_text(name) for name in SCRIPTS)
    # The inlined assets are ours, not data; a closing tag inside them would still break the page.
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("an inlined asset contains a closing tag")
    env = Environment(
        loader=PackageLoader("safebench.html_report", ASSETS),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template(TEMPLATE)
    return template.generate(
        title=page_title(runs),
        csp=content_security_policy(style, script),
        style=Markup(style),
        script=Markup(script),
        data=document,
        version=safebench.__version__,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        runs=[run_overview(run, [t for t in targets if t.run == i]) for i, run in enumerate(runs)],
        multiple=len(runs) > 1,
        # Runs on transforms of one dataset differ in their hash by design: the comparison says so.
        mismatch=None if comparison and "transform" in comparison.differing else dataset_mismatch(runs),
        comparison=comparison,
        stand_ins=[(run.name, run.stand_ins) for run in runs if run.stand_ins],
        targets=targets,
        board_asr=leaderboard("asr", targets),
        board_sri=leaderboard("sri", targets),
        tables=[heat_table(m, targets, taxonomy) for m in ("asr", "sri")],
        jury=jury_rows(targets),
        figures=figures,
        figures_note=figures_note,
        records=records,
        page_size=PAGE_SIZE,
        media_notes=_media_notes(media),
    )


def _media_notes(media: MediaTable) -> list[str]:
    notes = []
    if media.image_errors:
        notes.append(f"{media.image_errors} image file(s) could not be embedded (see the items)")
    if media.audio_left_out:
        notes.append(
            f"{media.audio_left_out} recording(s) not embedded: the page's recording budget is spent"
        )
    return notes


def build_report(run_dirs: list[Path], out: Path, *, figures_dir: Path | None = None) -> Path:
    """Write one self-contained HTML page of the runs to `out` and return its path. With `figures_dir`,
    also write the figures as PNG and PDF there (needs matplotlib: `safebench[figures]`); the page is
    written first, so it exists even if that fails."""
    runs = load_runs([Path(p) for p in run_dirs])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written next to its place and renamed, so a browser or the runner never sees half a page.
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as fh:
        for piece in page_stream(runs):
            fh.write(piece)
    partial.replace(out)
    if figures_dir is not None:
        from safebench.html_report.figures import write_figures

        comparison = compare_conditions(runs)
        targets = page_targets(runs, comparison.labels if comparison else None)
        write_figures(
            {t.key: t.metrics for t in targets if t.metrics}, _merged_taxonomy(runs), Path(figures_dir)
        )
    return out
