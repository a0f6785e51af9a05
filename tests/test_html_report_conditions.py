"""The report of runs that differ only in what the targets were shown (image condition, query template,
transform, voice): the same leaderboard and tables side by side, each labelled by what differs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import browser
import pytest
from typer.testing import CliRunner

from safebench.cli import app
from safebench.html_report import build_report
from safebench.html_report.conditions import compare_conditions
from safebench.html_report.loading import load_runs
from safebench.html_report.render import csp_hash


def run(out: Path, *extra: str, limit: int = 3) -> Path:
    result = CliRunner().invoke(
        app, ["evaluate", "--out", str(out), "--limit", str(limit), "--quiet", *extra]
    )
    assert result.exit_code == 0, result.output
    return out


def test_two_runs_differing_only_in_image_condition_are_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run(tmp_path / "plain")
    black = run(tmp_path / "black", "--image-condition", "black")
    comparison = compare_conditions(load_runs([plain, black]))
    assert comparison is not None and comparison.differing == ["image"]
    assert comparison.labels == ["image: dataset", "image: black"]

    page = build_report([plain, black], tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="conditions"' in page and "Conditions compared" in page
    left, right = "scripted:mixed · image: dataset", "scripted:mixed · image: black"
    for table in ("board-asr", "board-sri", "heat-asr", "heat-sri"):
        body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
        assert left in body and right in body  # both conditions on the same board / in the same table
    heading = page.split('id="heat-asr"', 1)[1].split("</thead>", 1)[0]
    assert heading.index(left) < heading.index(right)  # in the runs' order, side by side
    assert "@ plain" not in page  # labelled by the condition, not by the folder name
    # The black images are embedded from the run directory (not looked for in the dataset folder).
    assert "image file(s) could not be embedded" not in page


def test_template_comparison_escapes_the_file_name(tmp_path: Path) -> None:
    template = tmp_path / "<img src=x onerror=alert(1)>.j2"
    template.write_text("Q: {{ query }}", encoding="utf-8")
    plain = run(tmp_path / "plain")
    wrapped = run(tmp_path / "wrapped", "--target-template", str(template))
    comparison = compare_conditions(load_runs([plain, wrapped]))
    assert comparison is not None and comparison.differing == ["template"]
    assert comparison.labels[0] == "template: none"
    # Named by its file, with its text's hash.
    assert comparison.labels[1].startswith("template: <img src=x onerror=alert(1)>.j2 (")
    page = build_report([plain, wrapped], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.j2" in page


def test_runs_that_differ_in_more_than_a_condition_are_not_labelled_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = run(tmp_path / "a")
    b = run(tmp_path / "b", "--image-condition", "white", "--max-rounds", "1")
    runs = load_runs([a, b])
    assert compare_conditions(runs) is None  # the jury differs too: not a condition comparison
    page = build_report([a, b], tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="conditions"' not in page and re.search(r"scripted:mixed @ a\b", page)


# ------------------------------------------------------------------------------------ the compare view's URL
#
# Three runs differing only in the query template: `scripted:mixed` answers by a hash of the prompt it is
# sent, so the verdicts differ between the runs on some items (22 of 46 between the first two, two pages
# of the compare view).

NONE = "scripted:mixed · template: none"
ASK = "scripted:mixed · template: ask.j2 ("  # then the template's hash
PWN = "document.title='pwned'"
PAYLOADS = [
    f"<script>{PWN}</script>",
    "<img src=x onerror=\"document.body.appendChild(document.createElement('pwned'))\">",
    f'"><svg onload="{PWN}">',
]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The page of the three runs, and its targets' keys: no template, ask.j2, please.j2."""
    root = tmp_path_factory.mktemp("templates")
    (root / "ask.j2").write_text("Q: {{ query }}", encoding="utf-8")
    (root / "please.j2").write_text("Please answer: {{ query }}", encoding="utf-8")
    runs = [
        run(root / "none", limit=46),
        run(root / "ask", "--target-template", str(root / "ask.j2"), limit=46),
        run(root / "please", "--target-template", str(root / "please.j2"), limit=46),
    ]
    page = build_report(runs, root / "report.html")
    keys = [t["key"] for t in page_data(page)["targets"]]
    assert keys[0] == NONE and keys[1].startswith(ASK) and "please.j2" in keys[2]
    return page, keys


def page_data(page: Path) -> dict[str, Any]:
    text = page.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match
    return json.loads(match.group(1))


def differing(page: Path, a: int, b: int) -> list[str]:
    """The items whose outcome differs between targets `a` and `b`, in the order the view lists them."""

    def outcome(r: dict[str, Any]) -> str:
        status = r.get("st") or "decided"
        return status if status != "decided" else {True: "unsafe", False: "safe"}.get(r.get("u"), "none")

    records = page_data(page)["records"]
    right = {r["id"]: outcome(r) for r in records if r["t"] == b}
    return [r["id"] for r in records if r["t"] == a and r["id"] in right and outcome(r) != right[r["id"]]]


def compare_view(dom: str) -> dict[str, Any]:
    """What the compare view shows: the two targets side by side (from each pair's headings), the
    items listed and the page."""
    section = re.search(r'<section id="compare">.*?</section>', dom, re.S)
    assert section
    pairs = re.findall(r'<article class="pair" data-item="([^"]*)">(.*?)</article>', section.group(0), re.S)
    sides = {
        tuple(html.unescape(s) for s in re.findall(r"<strong>(.*?)</strong>", body)) for _, body in pairs
    }
    page = re.search(r'id="compare-pager".*?data-page="(\d+)" data-pages="(\d+)"', section.group(0), re.S)
    assert page
    return {
        "sides": sides,
        "items": [html.unescape(i) for i, _ in pairs],
        "page": int(page.group(1)),
        "pages": int(page.group(2)),
    }


def encode(text: str) -> str:
    """As JavaScript's encodeURIComponent."""
    return quote(text, safe="!~*'()")


def fragment(a: str, b: str, page: int | None = None) -> str:
    return f"#compare={encode(a)},{encode(b)}" + (f"&compare-page={page}" if page else "")


def with_driver(page: Path, script: str) -> Path:
    """A copy of the page that runs `script` after its own (the clicks of a user), the policy allowing
    that script by its hash too. The script leaves what it saw in attributes of <body>."""
    text = page.read_text(encoding="utf-8")
    assert text.count("script-src ") == 1
    text = text.replace("script-src ", f"script-src {csp_hash(script)} ", 1)
    head, tail = text.rsplit("</body>", 1)
    driven = page.with_name("driven.html")
    driven.write_text(f"{head}<script>{script}</script>\n</body>{tail}", encoding="utf-8")
    return driven


def body_attr(dom: str, name: str) -> str:
    match = re.search(rf'<body[^>]* {name}="([^"]*)"', dom)
    assert match, name
    return html.unescape(match.group(1))


@pytest.mark.slow
def test_a_link_opens_the_comparison_it_names(templates: tuple[Path, list[str]]) -> None:
    page, keys = templates
    expected = differing(page, 1, 0)  # ask.j2 as A, no template as B: not the default view
    assert len(expected) > 20  # two pages
    # Next to an item's permalink (report.js's key), which opens as well.
    item = "#item=" + encode(keys[2]) + "/bias-001"
    dom = browser.dump_dom(browser.file_url(page, fragment(keys[1], keys[0], 2) + "&" + item[1:]))
    view = compare_view(dom)
    assert view["sides"] == {(keys[1], keys[0])}
    assert view["items"] == expected[20:40] and (view["page"], view["pages"]) == (2, 2)
    summary = re.search(r'<p [^>]*id="compare-summary"[^>]*>', dom)
    assert summary and f'data-a="{html.escape(keys[1])}"' in summary.group(0)
    assert f'data-differ="{len(expected)}"' in summary.group(0)
    detail = re.search(r'<article id="item-detail"[^>]*>', dom)
    assert detail and 'data-item="bias-001"' in detail.group(0) and "please.j2" in detail.group(0)


DRIVER = """(function () {
  "use strict";
  const body = document.body;
  const seen = (name) => body.setAttribute("data-" + name, location.hash);
  const form = document.getElementById("compare-form");
  const choose = (name, key) => {
    const select = form.elements[name];
    select.value = [...select.options].find((o) => o.textContent === key).value;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  };
  const history0 = history.length;
  seen("hash-start");
  choose("a", KEYS[1]);
  seen("hash-a");
  choose("b", KEYS[0]);
  seen("hash-b");
  [...document.querySelectorAll("#compare-pager button")].find((b) => b.textContent === "Next ›").click();
  seen("hash-page");
  body.setAttribute("data-history", String(history.length - history0));
  const pairs = [...document.querySelectorAll("#compare-list .pair")];
  body.setAttribute("data-items", pairs.map((p) => p.getAttribute("data-item")).join(" "));
  document.querySelector("#compare-list .pair a").click(); // open the first pair's item
  setTimeout(() => seen("hash-item"), 500);
})();
"""


@pytest.mark.slow
def test_changing_the_view_updates_the_link(templates: tuple[Path, list[str]]) -> None:
    page, keys = templates
    driven = with_driver(page, DRIVER.replace("KEYS", json.dumps(keys)))
    dom = browser.dump_dom(browser.file_url(driven))
    assert body_attr(dom, "data-hash-start") == ""  # the default view: nothing in the URL
    assert body_attr(dom, "data-hash-a") == fragment(keys[1], keys[1])
    assert body_attr(dom, "data-hash-b") == fragment(keys[1], keys[0])
    link = body_attr(dom, "data-hash-page")
    assert link == fragment(keys[1], keys[0], 2)
    assert body_attr(dom, "data-history") == "0"  # replaced, not pushed: Back leaves the page
    shown = body_attr(dom, "data-items").split(" ")
    assert shown == differing(page, 1, 0)[20:40]
    # Opening an item keeps the comparison in the URL.
    opened = body_attr(dom, "data-hash-item")
    assert opened == link + "&item=" + encode(keys[1]) + "/" + encode(shown[0])
    # The copied link, opened again, shows the same view.
    for url in (link, opened):
        view = compare_view(browser.dump_dom(browser.file_url(page, url)))
        assert view["sides"] == {(keys[1], keys[0])}
        assert view["items"] == shown and view["page"] == 2


@pytest.mark.slow
def test_a_garbage_or_stale_link_gives_the_default_view(templates: tuple[Path, list[str]]) -> None:
    page, keys = templates
    default = differing(page, 0, 1)[:20]
    asked = differing(page, 1, 0)[:20]
    evil = " ".join(PAYLOADS)
    cases = [
        ("#compare=" + ",".join(PAYLOADS[:2]) + "&compare-page=" + PAYLOADS[2], default),  # raw
        ("#compare=" + quote(PAYLOADS[0], safe="") + "," + quote(PAYLOADS[1], safe=""), default),
        (fragment(keys[1], evil, 2), default),  # one target the page does not have
        (fragment(keys[1], "scripted:mixed · template: gone.j2"), default),  # a stale link
        ("#compare=" + encode(keys[1]) + "," + encode(keys[0]) + ",x", default),
        ("#compare=%E0%A4%A," + encode(keys[0]) + "&compare-page=2", default),  # bad escape
        ("#compare-page=2", default),
        # The targets are valid: they are shown; the page is not, and page 1 is.
        (fragment(keys[1], keys[0]) + "&compare-page=" + quote(evil, safe=""), asked),
        (fragment(keys[1], keys[0]) + "&compare-page=99", asked),
        (fragment(keys[1], keys[0]) + "&compare-page=-1", asked),
    ]
    for url, items in cases:
        dom = browser.dump_dom(browser.file_url(page, url))
        view = compare_view(dom)
        assert view["items"] == items and view["page"] == 1, url
        assert view["sides"] == ({(keys[0], keys[1])} if items is default else {(keys[1], keys[0])}), url
        # Nothing of the fragment is in the page: no element, attribute or text of it.
        assert "pwned" not in dom and "onerror" not in dom and "onload" not in dom, url
        parser = browser.Elements()
        parser.feed(dom)
        assert [t for t, _ in parser.tags].count("script") == 2, url
        assert not [a for _, a in parser.tags if any(name.startswith("on") for name in a)], url
        title = re.search(r"<title>(.*?)</title>", dom, re.S)
        assert title and "pwned" not in title.group(1)
        assert re.search(r'id="list-summary"[^>]*data-matching="138"', dom), url  # the item browser too
