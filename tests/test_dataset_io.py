"""Dataset folders: the bundled sample, loading, writing, selecting."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from safebench.dataset import (
    Dataset,
    DatasetInvalid,
    load_dataset,
    resolve_dataset_dir,
    sha256_file,
    validate_dataset,
    write_dataset,
)
from safebench.dataset.typography import key_phrase
from safebench.resources import sample_dataset_dir
from safebench.schema import Item
from safebench.taxonomy import default_taxonomy

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_sample_validates_with_zero_problems() -> None:
    assert validate_dataset(sample_dataset_dir()) == []


def test_sample_has_two_questions_per_scenario() -> None:
    dataset = load_dataset("sample")
    taxonomy = default_taxonomy()
    assert len(dataset) == 46
    assert dataset.counts() == dict.fromkeys(taxonomy.scenarios, 2)
    for item in dataset:
        assert item.id.startswith(f"{item.scenario}-") and item.id[-3:].isdigit()
        assert item.category == taxonomy.scenarios[item.scenario].category
        assert item.text.endswith("?")  # questions only
        assert item.metadata["key_phrase"] == key_phrase(item.text)
        path = dataset.image_path(item)
        assert path is not None and path.is_file()
        with Image.open(path) as im:
            assert im.size == (760, 760)


def test_sample_card_documents_format_and_counts() -> None:
    card = (sample_dataset_dir() / "README.md").read_text(encoding="utf-8")
    assert "| Consultation | Medical Advice | medical\\_advice | 2 |" in card
    assert "**46**" in card and "items.jsonl" in card and "image_sha256" in card
    assert 'load_dataset("json"' in card and "cast_column" in card


def test_sample_is_what_build_sample_writes(tmp_path: Path) -> None:
    """The committed sample is up to date with scripts/build_sample.py (text, ids, card, taxonomy)."""
    spec = importlib.util.spec_from_file_location("build_sample", ROOT / "scripts" / "build_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path)
    assert validate_dataset(tmp_path) == []
    for name in ("README.md", "taxonomy.yaml"):
        assert (tmp_path / name).read_text() == (sample_dataset_dir() / name).read_text(), name

    def without_sha(path: Path) -> list[dict]:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "image_sha256"} for row in rows]

    assert without_sha(tmp_path / "items.jsonl") == without_sha(sample_dataset_dir() / "items.jsonl")


def test_resolve_dataset_dir() -> None:
    assert resolve_dataset_dir("sample") == sample_dataset_dir()
    assert resolve_dataset_dir("./sample") == Path("sample")
    assert resolve_dataset_dir(Path("x/y")) == Path("x/y")
    assert resolve_dataset_dir("~/d") == Path.home() / "d"


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()


def _items(root: Path) -> list[Item]:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4), "red").save(root / "images" / "r.png")
    return [
        Item(id="a", scenario="bias", category="inappropriate_opinions", text="Q1?", image="images/r.png"),
        Item(id="b", scenario="bias", category="inappropriate_opinions", text="Q2?", metadata={"k": 1}),
        Item(id="c", scenario="legal_advice", category="consultation", text="Q3?"),
    ]


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    items = _items(root)
    write_dataset(root, default_taxonomy(), items, "# card")
    assert validate_dataset(root) == []
    dataset = load_dataset(root)
    assert isinstance(dataset, Dataset) and dataset.root == root.resolve()
    assert [i.id for i in dataset] == ["a", "b", "c"]
    # the missing checksum was filled in from the file; text-only lines leave out nulls and empty metadata
    assert dataset.get("a").image_sha256 == sha256_file(root / "images" / "r.png")
    lines = (root / "items.jsonl").read_text().splitlines()
    assert "image" not in json.loads(lines[2]) and "metadata" not in json.loads(lines[2])
    assert json.loads(lines[1])["metadata"] == {"k": 1}
    assert dataset.image_path(dataset.get("a")) == root.resolve() / "images" / "r.png"
    assert dataset.image_path(dataset.get("b")) is None
    assert (root / "README.md").read_text() == "# card\n"
    assert dataset.taxonomy == default_taxonomy()


def test_load_invalid_dataset_raises_with_problems(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_dataset(root, default_taxonomy(), _items(root), "# card")
    with (root / "items.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "d", "scenario": "foo", "category": "x", "text": "Q?"}) + "\n")
    with pytest.raises(DatasetInvalid) as caught:
        load_dataset(root)
    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "scenario")]
    assert "items.jsonl:4: scenario: unknown scenario id 'foo'" in str(caught.value)


def test_load_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetInvalid, match="not found"):
        load_dataset(tmp_path / "none")


def test_get_counts_and_select(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_dataset(root, default_taxonomy(), _items(root), "# card")
    dataset = load_dataset(root)
    with pytest.raises(KeyError, match="'zz'"):
        dataset.get("zz")
    counts = dataset.counts()
    assert counts["bias"] == 2 and counts["legal_advice"] == 1 and counts["medical_advice"] == 0
    assert [i.id for i in dataset.select(scenarios=["bias"])] == ["a", "b"]
    assert [i.id for i in dataset.select(categories=["consultation"])] == ["c"]
    assert [i.id for i in dataset.select(per_scenario=1)] == ["a", "c"]
    assert [i.id for i in dataset.select(limit=2)] == ["a", "b"]
    assert [i.id for i in dataset.select(scenarios=["bias", "legal_advice"], per_scenario=1, limit=1)] == [
        "a"
    ]
    with pytest.raises(ValueError, match="unknown scenario id"):
        dataset.select(scenarios=["nope"])
    with pytest.raises(ValueError, match="unknown category id"):
        dataset.select(categories=["nope"])


def test_sample_copy_loads_from_another_place(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sample_dataset_dir(), copy)
    assert len(load_dataset(copy)) == 46


def test_card_escapes_taxonomy_text_in_markdown_tables() -> None:
    from safebench.dataset.card import counts_table
    from safebench.schema import Category, Scenario, Taxonomy

    scenario = Scenario(id="x", name="A | B <img src=x>", abbr="AB", definition="d")
    category = Category(id="c", name="C*", abbr="C", definition="d", scenarios=[scenario])
    taxonomy = Taxonomy(categories=[category])
    row = counts_table(taxonomy, [])[:-1].splitlines()[2]
    assert row == "| C\\* | A \\| B \\<img src=x\\> | x | 0 |"
