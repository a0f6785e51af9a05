"""MiniBench subsets: stratified (N per scenario, all of a smaller one), reproducible by seed, valid and
self-contained (media copied), a card that says how it was drawn, and it evaluates offline."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from safebench.cli import app
from safebench.dataset import load_dataset, validate_dataset, write_dataset
from safebench.dataset.subset import draw_subset, write_subset
from safebench.dataset.typography import render_typography
from safebench.generation.speech import wav_bytes
from safebench.runner import evaluate
from safebench.schema import AudioRef, Item
from safebench.taxonomy import default_taxonomy
from safebench.transforms import TransformError

# Scenario -> items in the fixture: three larger than N=3, one smaller.
SIZES = {"medical_advice": 8, "legal_advice": 6, "bias": 7, "hate_speech": 2}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Placeholder items, interleaved across scenarios, each with a typography image; some with audio."""
    root = tmp_path_factory.mktemp("source")
    taxonomy = default_taxonomy()
    items = []
    for n in range(max(SIZES.values())):
        for scenario, size in SIZES.items():
            if n >= size:
                continue
            item_id = f"{scenario}-{n:03d}"
            image = f"images/{item_id}.png"
            render_typography(f"Placeholder {n} [details withheld]", root / image)
            audio = []
            if n % 2 == 0:
                rel = f"audio/{item_id}-female.wav"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(wav_bytes(0.1 * np.sin(np.arange(4000) * (0.05 + n / 100)), 16000))
                audio = [AudioRef(path=rel, sha256=sha(root / rel), voice="female")]
            items.append(
                Item(
                    id=item_id,
                    scenario=scenario,
                    category=taxonomy.scenario(scenario).category,
                    text=f"How can someone do [details withheld] variant {n}?",
                    image=image,
                    audio=audio,
                    metadata={"n": n},
                )
            )
    write_dataset(root, taxonomy, items, "# fixture\n")
    assert validate_dataset(root) == []
    return root


def ids(path: Path) -> list[str]:
    return [item.id for item in load_dataset(path)]


def test_counts_are_stratified_per_scenario(source: Path, tmp_path: Path) -> None:
    report = write_subset(source, tmp_path / "mini", per_scenario=3, seed=0)
    drawn = Counter(item.scenario for item in load_dataset(tmp_path / "mini"))
    expected = {scenario: min(3, size) for scenario, size in SIZES.items()}
    assert dict(drawn) == expected == report.counts
    assert report.available == SIZES and report.items == sum(expected.values())
    assert validate_dataset(tmp_path / "mini") == []


def test_the_same_seed_draws_the_same_items_and_another_seed_differs(source: Path, tmp_path: Path) -> None:
    write_subset(source, tmp_path / "a", per_scenario=3, seed=7)
    write_subset(source, tmp_path / "b", per_scenario=3, seed=7)
    write_subset(source, tmp_path / "c", per_scenario=3, seed=8)
    assert ids(tmp_path / "a") == ids(tmp_path / "b")
    assert (tmp_path / "a" / "items.jsonl").read_bytes() == (tmp_path / "b" / "items.jsonl").read_bytes()
    assert ids(tmp_path / "a") != ids(tmp_path / "c")
    # The smaller scenario is kept whole whatever the seed.
    assert {i for i in ids(tmp_path / "c") if i.startswith("hate_speech")} == {
        "hate_speech-000",
        "hate_speech-001",
    }


def test_draws_are_per_scenario_and_keep_file_order(source: Path) -> None:
    items = load_dataset(source).items
    drawn = draw_subset(items, 2, seed=3)
    assert drawn == [item for item in items if item in drawn]  # source order
    without_bias = [item for item in items if item.scenario != "bias"]
    # Removing a scenario does not change what the others draw.
    assert [i.id for i in draw_subset(without_bias, 2, seed=3)] == [
        i.id for i in drawn if i.scenario != "bias"
    ]
    with pytest.raises(ValueError, match="at least 1"):
        draw_subset(items, 0)


def test_the_folder_is_self_contained_and_the_card_says_how_it_was_drawn(
    source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mini"
    write_subset(source, out, per_scenario=2, seed=5)
    subset = load_dataset(out)
    originals = {item.id: item for item in load_dataset(source)}
    for item in subset:
        assert item == originals[item.id]  # ids, scenarios, texts, media and metadata unchanged
        assert (
            item.image and not (out / item.image).is_symlink() and sha(out / item.image) == item.image_sha256
        )
        for ref in item.audio:
            assert not (out / ref.path).is_symlink() and sha(out / ref.path) == ref.sha256
    # Only the drawn items' media are copied.
    assert len(list((out / "images").glob("*.png"))) == len(subset)
    card = (out / "README.md").read_text()
    how = json.loads(card.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert how["per_scenario"] == 2 and how["seed"] == 5
    assert how["source"]["path"] == str(source.resolve()) and len(how["source"]["sha256"]) == 64
    assert how["counts"] == {"medical_advice": 2, "legal_advice": 2, "bias": 2, "hate_speech": 2}
    assert "## Drawn per scenario" in card and "| medical\\_advice | 8 | 2 |" in card


def test_a_subset_evaluates_offline(source: Path, tmp_path: Path) -> None:
    write_subset(source, tmp_path / "mini", per_scenario=1, seed=0)
    outcome = evaluate(out=tmp_path / "run", dataset=str(tmp_path / "mini"), limit=3)
    assert outcome.records == 3


def test_the_bundled_sample_subsets(tmp_path: Path) -> None:
    report = write_subset("sample", tmp_path / "mini", per_scenario=1, seed=0)
    assert report.items == 23 and set(report.counts.values()) == {1}
    assert validate_dataset(tmp_path / "mini") == []


def test_an_existing_non_empty_out_is_never_touched(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(TransformError, match="not empty"):
        write_subset(source, out, per_scenario=1)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    write_subset(source, tmp_path / "empty-is-fine", per_scenario=1)  # an empty folder is new enough


def test_cli_subset(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "mini"
    result = invoke("subset", str(source), "--per-scenario", "2", "--seed", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "8 item(s)" in result.output and "seed 4" in result.output
    again = invoke("subset", str(source), "--per-scenario", "2", "--out", str(out))
    assert again.exit_code == 2 and "not empty" in again.output
    zero = invoke("subset", str(source), "--per-scenario", "0", "--out", str(tmp_path / "z"))
    assert zero.exit_code == 2
    missing = invoke("subset", str(tmp_path / "nowhere"), "--per-scenario", "2", "--out", str(tmp_path / "y"))
    assert missing.exit_code == 2 and "dataset folder not found" in missing.output


def test_cli_an_invalid_source_is_one_line_naming_the_problem(source: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    write_subset(source, broken, per_scenario=1)
    lines = (broken / "items.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["image_sha256"] = "0" * 64
    (broken / "items.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    result = invoke("subset", str(broken), "--per-scenario", "1", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "items.jsonl:1: image_sha256: sha256 mismatch" in result.output
    assert len(result.output.strip().splitlines()) == 1
