"""The paper's figures: SVG for the HTML report (radar, heatmap, leaderboard), the data both renderers
share (`figure_data`), and the PNG/PDF files (`write_figures`, matplotlib optional)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from safebench.html_report.figure_data import MISSING_COLOR, figure_data, figure_stems
from safebench.html_report.svg import heatmap_svg, leaderboard_svg, radar_svg, svg_figures
from safebench.schema import Taxonomy
from safebench.taxonomy import default_taxonomy

NS = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(1)</script>"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything ill-formed
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox")
    return root


def find(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if cls is None or e.get("class") == cls]


def all_text(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{NS}text"))


def taxonomy() -> Taxonomy:
    def category(cid: str, abbr: str, scenarios: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "id": cid,
            "name": cid.title(),
            "abbr": abbr,
            "definition": "d",
            "scenarios": [{"id": s, "name": s.title(), "abbr": a, "definition": "d"} for s, a in scenarios],
        }

    return Taxonomy(
        categories=[
            category("alpha", "AL", [("a1", "A1"), ("a2", "A2")]),
            category("beta", "BE", [("b1", "B1")]),
            category("gamma", "GA", [("g1", "G1")]),
        ]
    )


def cell(asr: float | None, sri: float | None, ci: list[float] | None = None) -> dict[str, Any]:
    return {"asr": asr, "asr_ci": ci, "sri": sri, "sri_ci": ci}


def metrics() -> dict[str, dict[str, Any]]:
    """Two targets; keys deliberately out of taxonomy order; `safe` has no `beta` cell and its `a2`
    decided nothing; `zeta` is a category the taxonomy does not know."""
    return {
        "risky": {
            "by_category": {"gamma": cell(30, 60), "alpha": cell(80, 20), "beta": cell(50, 50)},
            "by_scenario": {"g1": cell(30, 60), "a2": cell(70, 30), "a1": cell(90, 10), "b1": cell(50, 50)},
            "avg": cell(53.3, 43.3, [40.0, 66.0]),
        },
        "safe": {
            "by_category": {"alpha": cell(10, 90), "gamma": cell(0, 100), "zeta": cell(5, 95)},
            "by_scenario": {"a1": cell(10, 90), "a2": cell(None, None), "g1": cell(0, 100)},
            "avg": cell(5.0, 95.0, [1.0, 9.0]),
        },
    }


# ------------------------------------------------------------------------------------------- radar


def test_radar_one_polygon_per_target_and_a_marker_per_vertex() -> None:
    series = {"A": {"x": 10.0, "y": 50.0, "z": 100.0}, "B": {"x": 0.0, "y": None, "z": 25.0}}
    root = parse(radar_svg(series, title="ASR by category"))
    assert find(root, "title")[0].text == "ASR by category"
    assert len(find(root, "polygon")) == 2  # the grid is drawn with paths: only targets are polygons
    assert len(find(root, "circle", "point")) == 5
    missing = find(root, "circle", "missing")
    assert len(missing) == 1 and missing[0].findtext(f"{NS}title") == "B — y: no data"
    # The gap is drawn at the centre (value 0) and explained.
    assert float(missing[0].get("cx")) == pytest.approx(float(root.get("viewBox").split()[2]) / 2)
    assert "no decided items" in all_text(root)
    assert [a.findtext(f"{NS}title") for a in find(root, "text", "axis")] == ["x", "y", "z"]


def test_radar_vertices_sit_at_their_value() -> None:
    root = parse(radar_svg({"A": {"top": 50.0, "right": 100.0, "bottom": 0.0, "left": 25.0}}, title="t"))
    (polygon,) = find(root, "polygon")
    points = [tuple(map(float, p.split(","))) for p in polygon.get("points").split()]
    (cx, _), (_, cy) = points[2], points[1]  # the centre (value 0) and the right axis' height
    radius = points[1][0] - cx
    assert points[0] == pytest.approx((cx, cy - radius / 2))  # 50 of 100, straight up
    assert points[3] == pytest.approx((cx - radius / 4, cy))  # 25, to the left


def test_radar_abbreviates_labels_over_ten_axes() -> None:
    names = {f"Scenario number {i}": f"S{i}" for i in range(23)}
    series = {f"t{k}": {name: float(i * 4) for i, name in enumerate(names)} for k in range(10)}
    root = parse(radar_svg(series, title="t", abbreviations=names))
    axes = find(root, "text", "axis")
    assert ["".join(a.find(f"{NS}tspan").itertext()) for a in axes] == list(names.values())
    assert axes[0].findtext(f"{NS}title") == "Scenario number 0"  # the full name stays as a tooltip
    assert len(find(root, "polygon")) == 10
    assert len({p.get("stroke") + (p.get("stroke-dasharray") or "") for p in find(root, "polygon")}) == 10


def test_radar_without_axes_says_so() -> None:
    root = parse(radar_svg({}, title="empty"))
    assert "no data" in all_text(root)


# ----------------------------------------------------------------------------------------- heatmap


def test_heatmap_cells_values_and_missing() -> None:
    rows, cols = ["Alpha", "Beta"], ["m1", "m2", "m3"]
    values = [[0.0, 50.0, 100.0], [12.345, None, 99.95]]
    root = parse(heatmap_svg(rows, cols, values, title="SRI by category"))
    cells = find(root, "rect", "cell")
    assert len(cells) == 6
    assert [c.findtext(f"{NS}title") for c in cells][4] == "Beta × m2: –"
    assert cells[4].get("fill") == MISSING_COLOR
    assert cells[0].get("fill") == "#440154" and cells[2].get("fill") == "#fde725"  # viridis ends
    shown = [t.text for t in find(root, "text") if t.get("class") is None and t.text]
    for text in ("0.0", "50.0", "100.0", "12.3", "–"):
        assert text in shown
    reversed_root = parse(heatmap_svg(rows, cols, values, title="ASR", reverse=True))
    assert find(reversed_root, "rect", "cell")[0].get("fill") == "#fde725"


def test_heatmap_rejects_a_ragged_matrix() -> None:
    with pytest.raises(ValueError, match="2 rows of 3"):
        heatmap_svg(["a", "b"], ["x", "y", "z"], [[1.0, 2.0, 3.0], [1.0]], title="t")


# ------------------------------------------------------------------------------------- leaderboard


def test_leaderboard_bars_in_the_given_order_with_whiskers() -> None:
    entries = [("first", 10.0, (5.0, 20.0)), ("second", 60.0, None), ("third", None, None)]
    root = parse(leaderboard_svg(entries, title="AVG ASR", xlabel="AVG ASR (%)"))
    labels = [e.findtext(f"{NS}title") for e in find(root, "text", "label")]
    assert labels == ["first", "second", "third"]
    bars = find(root, "rect", "bar")
    assert len(bars) == 2
    assert float(bars[1].get("width")) == pytest.approx(6 * float(bars[0].get("width")))
    assert len(find(root, "path", "ci")) == 1
    text = all_text(root)
    assert "10.0 [5.0–20.0]" in text and "no decided items" in text and "AVG ASR (%)" in text


# -------------------------------------------------------------------------------- escaping, output


@pytest.mark.parametrize(
    "render",
    [
        lambda label: radar_svg({label: {label: 50.0, "b": 10.0, "c": None}}, title=label),
        lambda label: heatmap_svg([label], [label], [[50.0]], title=label),
        lambda label: leaderboard_svg([(label, 50.0, (40.0, 60.0))], title=label, xlabel=label),
    ],
    ids=["radar", "heatmap", "leaderboard"],
)
def test_labels_are_escaped(render: Any) -> None:
    svg = render(EVIL + "\x00")  # a NUL cannot be in XML even escaped: it is dropped
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert "<script>" not in svg
    assert find(root, "title")[0].text == EVIL
    assert EVIL in all_text(root)


def test_output_is_deterministic_and_ids_are_per_figure() -> None:
    data = figure_data(metrics(), taxonomy())
    first, second = svg_figures(data), svg_figures(figure_data(metrics(), taxonomy()))
    assert first == second
    assert list(first) == [stem for stem, *_ in figure_stems()]
    ids = [parse(svg).find(f"{NS}title").get("id") for svg in first.values()]
    assert len(set(ids)) == len(ids)  # several SVGs inlined in one page must not share ids


# ------------------------------------------------------------------------------------- figure data


def test_figure_data_follows_the_taxonomy_order() -> None:
    data = figure_data(metrics(), taxonomy())
    assert data.targets == ("risky", "safe")
    # Taxonomy order, whatever the metrics' key order; an unknown id last, labelled by its id.
    assert [a.id for a in data.categories] == ["alpha", "beta", "gamma", "zeta"]
    assert [(a.label, a.abbr) for a in data.categories][-1] == ("zeta", "zeta")
    assert [a.id for a in data.scenarios] == ["a1", "a2", "b1", "g1"]
    assert data.radar("asr", "categories") == {
        "risky": {"Alpha": 80.0, "Beta": 50.0, "Gamma": 30.0, "zeta": None},
        "safe": {"Alpha": 10.0, "Beta": None, "Gamma": 0.0, "zeta": 5.0},
    }
    assert data.radar("sri", "scenarios")["safe"] == {"A1": 90.0, "A2": None, "B1": None, "G1": 100.0}
    assert data.abbreviations("scenarios") == {"A1": "A1", "A2": "A2", "B1": "B1", "G1": "G1"}
    rows, cols, values = data.matrix("sri")
    assert rows == ["Alpha", "Beta", "Gamma", "zeta"] and cols == ["risky", "safe"]
    assert values == [[20.0, 90.0], [50.0, None], [60.0, 100.0], [None, 95.0]]


def test_figure_data_default_taxonomy_order() -> None:
    tax = default_taxonomy()
    ids = [c.id for c in tax.categories]
    shuffled = {"t": {"by_category": {i: cell(1, 1) for i in reversed(ids)}, "by_scenario": {}, "avg": {}}}
    assert [a.id for a in figure_data(shuffled, tax).categories] == ids


def test_leaderboard_puts_the_safest_first() -> None:
    m = metrics()
    m["unknown"] = {"by_category": {}, "by_scenario": {}, "avg": cell(None, None)}
    m["tied"] = {"by_category": {}, "by_scenario": {}, "avg": cell(5.0, 95.0)}
    data = figure_data(m, taxonomy())
    assert [t for t, _, _ in data.leaderboard("asr")] == ["safe", "tied", "risky", "unknown"]
    assert [t for t, _, _ in data.leaderboard("sri")] == ["safe", "tied", "risky", "unknown"]
    assert data.leaderboard("asr")[0] == ("safe", 5.0, (1.0, 9.0))
    assert data.leaderboard("sri")[-1] == ("unknown", None, None)


# ------------------------------------------------------------------------------------ PNG and PDF


def test_write_figures_writes_png_and_pdf(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from safebench.html_report.figures import write_figures

    paths = write_figures(metrics(), taxonomy(), tmp_path / "figures")
    expected = [f"{stem}.{suffix}" for stem, *_ in figure_stems() for suffix in ("png", "pdf")]
    assert [p.name for p in paths] == expected
    assert len(expected) == 16 and "radar_asr_categories.png" in expected
    assert "heatmap_sri_categories.pdf" in expected and "leaderboard_asr.png" in expected
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(expected)
    for path in paths:
        head = path.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if path.suffix == ".png" else head.startswith(b"%PDF")
    # 300 dpi: the pHYs chunk holds pixels per metre (300 / 0.0254 = 11811).
    png = paths[0].read_bytes()
    phys = png.index(b"pHYs") + 4
    assert int.from_bytes(png[phys : phys + 4], "big") == 11811


def test_without_matplotlib_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safebench.html_report.figures import FiguresUnavailable, write_figures

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ModuleNotFoundError) as caught:
        write_figures(metrics(), taxonomy(), tmp_path / "figures")
    assert isinstance(caught.value, FiguresUnavailable)
    assert str(caught.value) == "pip install 'safebench[figures]' to write PNG/PDF figures"
    assert not (tmp_path / "figures").exists()
