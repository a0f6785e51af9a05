"""The HTML report: page data (counts, leaderboard, media, escaping) and, in headless chromium, the
rendered page (tables, item browser, filters, permalinks, XSS canaries, no network request)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import time
import wave
from pathlib import Path
from typing import Any
from urllib.parse import quote

import browser
import pytest
import yaml
from PIL import Image

from safebench.html_report import build_report
from safebench.html_report.items import script_json, split
from safebench.html_report.loading import load_runs
from safebench.html_report.media import MediaTable, thumbnail
from safebench.html_report.overview import page_targets, run_overview
from safebench.html_report.render import csp_hash, render_page, safe_svg
from safebench.html_report.tables import leaderboard, shade
from safebench.metrics import compute_metrics
from safebench.schema import MediaRef, Opinion, Result, Usage, Verdict
from safebench.taxonomy import default_taxonomy

SCENARIOS = [(s.id, c.id) for c in default_taxonomy().categories for s in c.scenarios]
PERSONAS = [
    "Civil-Liberties Advocate",
    "Clinician",
    "Justice-Oriented Citizen",
    "Security Engineer",
    "Wise Elder",
]
CARDS = ["civil_liberties", "clinician", "justice_citizen", "security_engineer", "wise_elder"]

# Canaries: if any of them ran, the title would change or an element with id "pwned" would exist.
PWN = "document.title='pwned'"
CANARIES = [
    f"<script>{PWN}</script>",
    '<img src=x onerror="document.body.appendChild(Object.assign('
    "document.createElement('b'),{id:'pwned'}))\">",
    f'</textarea><svg onload="{PWN}"></svg>',
    "<a href=\"javascript:document.title='pwned'\">click</a>",
    f"</script><script>{PWN}</script>",
    "</style><style>body{display:none}</style>",
]
EVIL = " ".join(CANARIES)


# ------------------------------------------------------------------------------------ synthetic runs


def make_dataset(root: Path, images: int = 3) -> Path:
    """A dataset folder with `images` distinct PNGs plus one byte-identical copy (`images/copy.png`)
    and one with transparency."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        Image.new("RGB", (760, 600), (40 * i % 256, 120, 200)).save(root / "images" / f"img-{i}.png")
    shutil.copy(root / "images" / "img-0.png", root / "images" / "copy.png")
    Image.new("RGBA", (300, 900), (0, 0, 0, 0)).save(root / "images" / "alpha.png")
    shutil.copy(default_taxonomy_path(), root / "taxonomy.yaml")
    (root / "items.jsonl").write_text("", encoding="utf-8")
    return root


def default_taxonomy_path() -> Path:
    from safebench.resources import default_taxonomy_path as path

    return Path(path())


def opinions(unsafe: bool, rounds: int, split_first: bool) -> list[Opinion]:
    out = []
    for r in range(rounds + 1):
        for slot, card in enumerate(CARDS):
            vote = (not unsafe) if (split_first and r == 0 and slot == 0) else unsafe
            out.append(
                Opinion(
                    juror=card,
                    slot=slot,
                    model="scripted:juror",
                    round=r,
                    unsafe=vote,
                    rating=1 if vote else 5,
                    reasoning=f"[round {r}] [reasoning withheld] seat {slot}",
                )
            )
    return out


def synthetic_records(targets: list[str], items: int, *, images: int = 3) -> list[Result]:
    """`len(targets) * items` records across every scenario: unsafe every third item, rebuttal rounds
    every seventh, one juror dissenting every fifth, and a few hung, error and blocked records."""
    records = []
    for target in targets:
        for i in range(items):
            scenario, category = SCENARIOS[i % len(SCENARIOS)]
            unsafe = i % 3 == 0
            rounds = 1 if i % 7 == 0 else 0
            status = (
                "hung"
                if i % 50 == 11
                else "error"
                if i % 50 == 23
                else "blocked"
                if i % 50 == 37
                else "decided"
            )
            decided = status == "decided"
            records.append(
                Result(
                    item_id=f"item-{i:05d}",
                    target=target,
                    target_spec=target,
                    scenario=scenario,
                    category=category,
                    query=f"[question {i} withheld]",
                    modality="image",
                    prompt=f"[question {i} withheld] (the activity shown in the image)",
                    image=MediaRef(path=f"images/img-{i % images}.png", sha256="0" * 64),
                    response=None if status == "error" else f"[answer {i} of {target}: details withheld]",
                    finish_reason="length" if i % 13 == 0 else "stop",
                    truncated=i % 13 == 0,
                    verdict=Verdict(
                        unsafe=unsafe if decided else None,
                        rating=(1.0 if unsafe else 5.0) if decided else None,
                        status=status,  # type: ignore[arg-type]
                        reasoning=f"{'unsafe' if unsafe else 'safe'} by majority",
                    ),
                    rounds=rounds if decided else 0,
                    opinions=opinions(unsafe, rounds, i % 5 == 0) if decided else [],
                    calls=6 + 5 * rounds,
                    tokens=Usage(prompt=1000, completion=100),
                    error="[error withheld]" if status == "error" else None,
                )
            )
    return records


def write_run(
    run_dir: Path,
    dataset: Path,
    records: list[Result],
    *,
    personas: list[str] = PERSONAS,
    stand_ins: bool = True,
    dataset_sha: str = "a" * 64,
) -> Path:
    """A run directory as `safebench evaluate` writes it (results.jsonl, metrics.json, config.yaml,
    run.json), without running a model."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
    metrics = compute_metrics(records, default_taxonomy())
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    labels = list(dict.fromkeys(r.target for r in records))
    jury = [
        {"slot": i, "card": c, "persona": p, "spec": "scripted:juror", "base_url": None}
        for i, (c, p) in enumerate(zip(CARDS, personas, strict=True))
    ]
    resolved = {
        "targets": [{"label": t, "spec": t, "base_url": None} for t in labels],
        "jury": jury,
        "foreperson": {"card": "foreperson", "spec": "scripted:foreperson"},
        "stand_ins": [f"target {t}: {t}" for t in labels] if stand_ins else [],
    }
    config = {"dataset": str(dataset), "resolved": resolved}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    info = {
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:10:00+00:00",
        "sessions": [{"started": "2026-01-01T00:00:00+00:00", "command": ["safebench", "evaluate"]}],
        "safebench_version": "0.1.0",
        "dataset": {"path": str(dataset), "items": len(records), "sha256": dataset_sha, "hashes": {}},
    }
    (run_dir / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return run_dir


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


@pytest.fixture
def run(tmp_path: Path, dataset: Path) -> Path:
    return write_run(tmp_path / "run", dataset, synthetic_records(["model-a", "model-b"], 120))


@pytest.fixture
def evil_run(tmp_path: Path, dataset: Path) -> Path:
    """Canaries in every untrusted string: labels, persona, query, answer, reasoning, ids, paths."""
    records = []
    for r in synthetic_records([f"evil {CANARIES[0]}", "plain"], 30):
        o = [x.model_copy(update={"reasoning": EVIL, "model": CANARIES[1]}) for x in r.opinions]
        records.append(
            r.model_copy(
                update={
                    "query": f"[question withheld] {EVIL}",
                    "prompt": EVIL,
                    "response": f"[answer withheld] {EVIL}",
                    "verdict": r.verdict.model_copy(update={"reasoning": EVIL}),
                    "item_id": f"{r.item_id}{CANARIES[4]}",
                    "finish_reason": CANARIES[2],
                    "error": EVIL if r.error else None,
                    "opinions": o,
                    "image": MediaRef(path=f"images/{CANARIES[1]}.png"),
                }
            )
        )
    personas = [*PERSONAS[:-1], EVIL]
    return write_run(tmp_path / "evil", dataset, records, personas=personas)


def blob(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


# ------------------------------------------------------------------------------------ page data


def test_counts_by_status_and_cost(run: Path) -> None:
    runs = load_runs([run])
    overview = run_overview(runs[0], page_targets(runs))
    a = overview.targets[0]
    assert a.key == "model-a" and a.records == 120
    # 120 items: i % 50 == 11, 23, 37 → hung at 11, 61, 111; error at 23, 73; blocked at 37, 87.
    assert a.status == {"decided": 113, "hung": 3, "error": 2, "blocked": 2}
    assert a.truncated == len([i for i in range(120) if i % 13 == 0])
    assert a.prompt_tokens == 120 * 1000 and a.calls == sum(6 + 5 * (i % 7 == 0) for i in range(120))
    assert overview.totals.records == 240
    assert overview.juror_models[0].model == "scripted:juror"
    assert overview.dataset_sha256 == "a" * 64 and len(overview.jury) == 5


def _all(records: list[Result], unsafe: bool) -> list[Result]:
    """The records with every decided verdict set to `unsafe`."""
    out = []
    for r in records:
        if r.verdict.status == "decided":
            verdict = r.verdict.model_copy(update={"unsafe": unsafe, "rating": 1.0 if unsafe else 5.0})
            r = r.model_copy(update={"verdict": verdict})
        out.append(r)
    return out


def test_leaderboard_order_safest_first(tmp_path: Path, dataset: Path) -> None:
    # In the run's order: "mid" (a third unsafe), "bad" (all unsafe), "good" (none).
    records = synthetic_records(["mid"], 46)
    records += _all(synthetic_records(["bad"], 46), True) + _all(synthetic_records(["good"], 46), False)
    targets = page_targets(load_runs([write_run(tmp_path / "lb", dataset, records)]))
    assert [row.key for row in leaderboard("asr", targets)] == ["good", "mid", "bad"]
    assert [row.key for row in leaderboard("sri", targets)] == ["good", "mid", "bad"]
    top = leaderboard("asr", targets)[0]
    assert top.value == "0.0" and top.ci.startswith("[0.0–")


def test_shade_darker_is_less_safe() -> None:
    assert shade("asr", 0.0) == "hm0" and shade("asr", 100.0) == "hm10"
    assert shade("sri", 100.0) == "hm0" and shade("sri", 0.0) == "hm10"
    assert shade("asr", None) == "hm-none"


def test_images_deduplicated_and_small(tmp_path: Path, dataset: Path) -> None:
    media = MediaTable()
    first = media.image(dataset, "images/img-0.png")
    again = media.image(dataset, "images/img-0.png")
    copy = media.image(dataset, "images/copy.png")  # another path, the same bytes
    other = media.image(dataset, "images/img-1.png")
    assert first.index == again.index == copy.index != other.index
    assert len(media.uris) == 2
    for uri in media.uris:
        assert uri.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
            assert max(im.size) == 256
    mime, data = thumbnail((dataset / "images" / "alpha.png").read_bytes())
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (85, 256)


def test_media_paths_outside_dataset_are_not_read(tmp_path: Path, dataset: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (10, 10)).save(secret)
    media = MediaTable()
    ref = media.image(dataset, "../secret.png")
    assert ref.index is None and "outside" in (ref.note or "")
    assert media.image(dataset, "images/missing.png").note == "file not found"
    assert media.image(None, "images/img-0.png").note == "dataset folder not found"


def test_page_stores_each_image_once(run: Path) -> None:
    data = blob(render_page(load_runs([run])))
    assert len(data["records"]) == 240
    assert len(data["media"]) == 3  # img-0..2, shared by 240 records
    assert {r["img"] for r in data["records"]} == {0, 1, 2}


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><script>x()</script> & <!-- \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><script>x()</script> & <!-- \u2028"}


def test_split_means_deliberated_or_disagreeing() -> None:
    base = synthetic_records(["t"], 10)
    assert split(base[0])  # i=0: rounds 1
    assert not split(base[1])
    assert split(base[5])  # i=5: one juror dissents in round 0


def test_page_escapes_every_string_and_has_a_strict_csp(evil_run: Path) -> None:
    page = render_page(load_runs([evil_run]))
    for canary in CANARIES:
        assert canary not in page
    # Outside the JSON document, the only script and style elements are the page's own two.
    outside = re.sub(r'<script type="application/json" id="report-data">.*?</script>', "", page, flags=re.S)
    assert outside.count("<script") == 1 and outside.count("<style") == 1
    assert html.escape(CANARIES[0]) in page  # the label, escaped, in the server-rendered tables
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp
    policy = html.unescape(csp.group(1))
    assert "unsafe-inline" not in policy and "default-src 'none'" in policy
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", outside, re.S)
    assert style and script
    assert f"style-src {csp_hash(style.group(1))}" in policy
    assert f"script-src {csp_hash(script.group(1))}" in policy
    assert "img-src data:" in policy and "media-src data:" in policy
    data = blob(page)
    assert data["records"][0]["r"].endswith(EVIL)  # the text itself survives, as data


def test_unsafe_svg_is_refused() -> None:
    ns = 'xmlns="http://www.w3.org/2000/svg"'
    ok = f'<svg {ns}><title>t</title><rect width="1" height="1" fill="url(#g)"/></svg>'
    assert safe_svg(ok)
    assert not safe_svg('<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>')
    assert not safe_svg('<svg xmlns="http://www.w3.org/2000/svg" onload="x()"></svg>')
    assert not safe_svg('<svg xmlns="http://www.w3.org/2000/svg"><use href="http://x/y#z"/></svg>')
    assert not safe_svg("<svg><foreignObject/></svg>")
    assert not safe_svg("not xml <")


def test_several_runs_one_board_and_a_dataset_warning(tmp_path: Path, dataset: Path) -> None:
    one = write_run(tmp_path / "one", dataset, synthetic_records(["m"], 23))
    two = write_run(tmp_path / "two", dataset, synthetic_records(["m"], 23), dataset_sha="b" * 64)
    out = build_report([one, two], tmp_path / "both.html")
    page = out.read_text(encoding="utf-8")
    assert 'id="dataset-mismatch"' in page
    keys = [t["key"] for t in blob(page)["targets"]]
    assert keys == ["m @ one", "m @ two"]
    same = write_run(tmp_path / "three", dataset, synthetic_records(["n"], 23))
    assert 'id="dataset-mismatch"' not in build_report([one, same], tmp_path / "same.html").read_text(
        encoding="utf-8"
    )


def test_missing_run_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report([tmp_path / "nothing"], tmp_path / "x.html")


def test_recordings_embedded_once_within_a_budget(tmp_path: Path, dataset: Path) -> None:
    (dataset / "audio").mkdir()
    for name in ("a-female.wav", "b-female.wav"):
        with wave.open(str(dataset / "audio" / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(bytes(3200) if name.startswith("a") else b"\x01\x00" * 1600)
    records = [
        r.model_copy(
            update={
                "modality": "audio",
                "audio": MediaRef(path=f"audio/{'ab'[i % 2]}-female.wav", voice="female"),
            }
        )
        for i, r in enumerate(synthetic_records(["t"], 4))
    ]
    data = blob(render_page(load_runs([write_run(tmp_path / "audio-run", dataset, records)])))
    audio = [data["media"][r["au"]] for r in data["records"]]
    assert all(uri.startswith("data:audio/wav;base64,") for uri in audio)
    assert len({r["au"] for r in data["records"]}) == 2 and data["records"][0]["av"] == "female"
    media = MediaTable(audio_budget=4000)  # room for one of the two recordings
    assert media.audio(dataset, "audio/a-female.wav").index is not None
    left_out = media.audio(dataset, "audio/b-female.wav")
    assert left_out.index is None and "budget" in (left_out.note or "") and media.audio_left_out == 1


def test_corrected_asr_shown_next_to_the_raw_one(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    for m in metrics.values():
        m["avg"]["asr_corrected"] = {"value": 12.5, "ci": [5.0, 20.0], "reason": None}
        m["by_category"]["ethics"]["asr_corrected"] = {"value": 7.25, "ci": [1.0, 15.0], "reason": None}
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    page = render_page(load_runs([run]))
    assert page.count("corr. 7.2 [1.0–15.0]") == 2  # one cell per target
    assert '12.5 <span class="ci">[5.0–20.0]</span>' in page  # the leaderboard's corrected column


@pytest.mark.slow
def test_ten_thousand_records_build_fast(tmp_path: Path) -> None:
    """A 10,000-record run (4 targets × 2,500 items, 500 distinct images) builds in well under 15 s."""
    data = make_dataset(tmp_path / "big-data", images=500)
    big = write_run(tmp_path / "big", data, synthetic_records(["a", "b", "c", "d"], 2500, images=500))
    start = time.perf_counter()
    out = build_report([big], tmp_path / "big.html")
    elapsed = time.perf_counter() - start
    assert elapsed < 15, elapsed
    assert len(blob(out.read_text(encoding="utf-8"))["records"]) == 10000


# ------------------------------------------------------------------------------------ in chromium


def text_of(dom: str, element_id: str) -> str:
    match = re.search(rf'<[^>]+id="{element_id}"[^>]*>(.*?)</', dom, re.S)
    assert match, element_id
    return html.unescape(match.group(1))


def attr(dom: str, element_id: str, name: str) -> str:
    match = re.search(rf'<[^>]+id="{element_id}"[^>]*>', dom)
    assert match, element_id
    value = re.search(rf'{name}="([^"]*)"', match.group(0))
    assert value, name
    return html.unescape(value.group(1))


def item_rows(dom: str) -> list[str]:
    body = re.search(r'id="item-table">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert body
    return re.findall(r"<tr [^>]*data-index=\"\d+\"[^>]*>", body.group(1))


@pytest.fixture
def report(run: Path) -> Path:
    return build_report([run], run / "report.html")


@pytest.mark.slow
def test_page_renders_tables_and_item_browser(report: Path, tmp_path: Path) -> None:
    dom = browser.dump_dom(browser.file_url(report))
    assert attr(dom, "list-summary", "data-total") == "240"
    assert attr(dom, "list-summary", "data-matching") == "240"
    assert len(item_rows(dom)) == 50  # the first page
    assert re.search(r'data-pages="5"', dom)
    board = re.search(r'id="board-asr">.*?</table>', dom, re.S)
    assert board and board.group(0).count('class="board-row"') == 2
    heat = re.search(r'id="heat-asr">.*?</table>', dom, re.S)
    assert heat and heat.group(0).count("data-row=") == 8 + 2  # 8 categories, AVG and Overall
    assert 'id="stand-in-banner"' in dom
    # The screenshot the brief asks for (looked at by hand; here only checked to exist).
    assert browser.screenshot(browser.file_url(report), tmp_path / "report.png").stat().st_size > 10000


@pytest.mark.slow
def test_filters_from_the_url_narrow_the_list(report: Path) -> None:
    dom = browser.dump_dom(browser.file_url(report, "#filter=status:error,target:model-b"))
    assert attr(dom, "list-summary", "data-matching") == "2"
    rows = item_rows(dom)
    assert len(rows) == 2 and all('data-status="error"' in row for row in rows)
    dom = browser.dump_dom(browser.file_url(report, "#q=" + "answer%2042%20of%20model-a"))
    assert attr(dom, "list-summary", "data-matching") == "1"


@pytest.mark.slow
def test_permalink_opens_the_item_with_every_round(report: Path) -> None:
    # item-00007: rebuttal ran (rounds 0 and 1), 10 opinions.
    dom = browser.dump_dom(browser.file_url(report, "#item=model-b/item-00007"))
    detail = re.search(r'<article id="item-detail"[^>]*>.*?</article>', dom, re.S)
    assert (
        detail and 'data-item="item-00007"' in detail.group(0) and 'data-target="model-b"' in detail.group(0)
    )
    assert re.findall(r'class="round" data-round="(\d+)"', detail.group(0)) == ["0", "1"]
    assert detail.group(0).count('class="opinion"') == 10
    assert "[answer 7 of model-b: details withheld]" in detail.group(0)
    assert '<img class="thumb" src="data:image/jpeg;base64,' in detail.group(0)


@pytest.mark.slow
def test_xss_canaries_do_not_run(evil_run: Path) -> None:
    out = build_report([evil_run], evil_run / "report.html")
    label, item = "evil " + CANARIES[0], "item-00000" + CANARIES[4]
    fragment = "#item=" + quote(label, safe="") + "/" + quote(item, safe="")
    dom = browser.dump_dom(browser.file_url(out, fragment))
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and "pwned" not in title.group(1)
    parser = browser.Elements()
    parser.feed(dom)
    tags = parser.tags
    assert not [a for _, a in tags if a.get("id") == "pwned"]
    assert not [(t, a) for t, a in tags if any(name.startswith("on") for name in a)], (
        "an event handler attribute"
    )
    assert [t for t, _ in tags].count("script") == 2  # the JSON document and the page's own script
    assert [t for t, _ in tags].count("style") == 1
    assert "svg" not in [t for t, a in tags if "onload" in a]
    assert all((a.get("href") or "#").startswith(("#", "data:")) for t, a in tags if t in ("a", "link"))
    assert all((a.get("src") or "data:").startswith("data:") for t, a in tags if t in ("img", "audio"))
    # The item opened from its permalink and shows the canaries as text.
    detail = re.search(r'<article id="item-detail"[^>]*>.*?</article>', dom, re.S)
    assert detail and 'data-item="item-00000' in detail.group(0)
    assert html.escape(CANARIES[0], quote=False) in detail.group(0)
    assert html.escape("</textarea>", quote=False) in detail.group(0)
    assert attr(dom, "list-summary", "data-total") == "60"


@pytest.mark.slow
def test_csp_blocks_a_script_that_is_not_the_pages_own(report: Path) -> None:
    """The policy is enforced, not just present: a script injected into the page (as a bug in the
    escaping would) does not run, while the page's hashed script still does."""
    page = report.read_text(encoding="utf-8")
    injected = report.with_name("injected.html")
    injected.write_text(page.replace("<main>", f"<main><script>{PWN}</script>", 1), encoding="utf-8")
    dom = browser.dump_dom(browser.file_url(injected))
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and "pwned" not in title.group(1)
    assert attr(dom, "list-summary", "data-total") == "240"


@pytest.mark.slow
def test_no_network_request(report: Path) -> None:
    with browser.serve(report.parent) as served:
        dom = browser.dump_dom(served.url("report.html", "#filter=verdict:unsafe"))
    assert attr(dom, "list-summary", "data-matching") != "0"
    # The page itself and nothing else: images are data: URIs, and the data: icon means no
    # /favicon.ico request either.
    assert served.requests == ["/report.html"]
