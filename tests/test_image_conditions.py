"""Image conditions (`--image-condition`): each condition's pixels, seeds stable across runs, `random`
never the item's own image, `none` shows no image to anyone, the jury sees exactly the target's
image (request bodies of a loopback stub), and `first-attempt` from a dataset that keeps it."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from safebench.cli import app
from safebench.config import RunConfig
from safebench.dataset import Dataset, load_dataset
from safebench.dataset.io import sha256_file, write_dataset
from safebench.image_conditions import (
    ConditionError,
    check,
    condition_image,
    prepare_images,
)
from safebench.models import ModelConfig
from safebench.resources import sample_dataset_dir
from safebench.runner import evaluate
from safebench.schema import Item
from safebench.testing import OpenAIStub, structured_responder

JUDGMENT = {"unsafe": False, "rating": 5, "reasoning": "The answer refuses."}
ANSWER = "I can't help with that: [details withheld]."


def sample() -> Dataset:
    return load_dataset(sample_dataset_dir())


def pixels(path: Path) -> set[tuple[int, ...]]:
    with Image.open(path) as image:
        return {colour for _, colour in image.convert("RGB").getcolors(1 << 24) or []}


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_black_and_white_are_solid_and_the_size_of_the_items_image(tmp_path: Path) -> None:
    dataset = sample()
    for item in dataset.items[:3]:
        own = dataset.root / str(item.image)
        black = condition_image(item, dataset, "black", 0, tmp_path)
        white = condition_image(item, dataset, "white", 0, tmp_path)
        assert black is not None and white is not None
        assert black.is_relative_to(tmp_path / "conditions" / "black") and black.suffix == ".png"
        assert pixels(black) == {(0, 0, 0)} and pixels(white) == {(255, 255, 255)}
        assert size(black) == size(white) == size(own)


def test_noise_differs_per_item_and_is_the_same_in_every_run(tmp_path: Path) -> None:
    dataset = sample()
    items = dataset.items[:3]
    first = prepare_images(items, dataset, "noise", 0, tmp_path / "a")
    second = prepare_images(items, dataset, "noise", 0, tmp_path / "b")
    shas = [sha256_file(path) for path in first.values() if path]
    assert len(set(shas)) == 3  # one noise per item
    assert shas == [sha256_file(path) for path in second.values() if path]  # and the same across runs
    for item in items:
        path = first[item.id]
        assert path is not None and size(path) == size(dataset.root / str(item.image))
        assert len(pixels(path)) > 100  # noise, not a flat colour
    other_seed = prepare_images(items[:1], dataset, "noise", 7, tmp_path / "c")[items[0].id]
    assert other_seed is not None and sha256_file(other_seed) != shas[0]


def test_random_is_another_items_image_never_its_own(tmp_path: Path) -> None:
    dataset = sample()
    shas = {item.image_sha256 for item in dataset.items}
    chosen = prepare_images(dataset.items, dataset, "random", 0, tmp_path)
    for item in dataset.items:
        path = chosen[item.id]
        assert path is not None
        sha = sha256_file(path)
        assert sha != item.image_sha256 and sha in shas  # a real dataset image, copied byte for byte
    again = prepare_images(dataset.items, dataset, "random", 0, tmp_path / "again")
    assert [sha256_file(p) for p in chosen.values() if p] == [sha256_file(p) for p in again.values() if p]


def _tiny_dataset(root: Path, colours: list[tuple[int, int, int]], **metadata: Any) -> Dataset:
    """Items of the sample's first scenario, with solid images of `colours` (equal colours: byte-identical
    copies) and placeholder queries."""
    base = sample()
    source = base.items[0]
    (root / "images").mkdir(parents=True)
    items = []
    for n, colour in enumerate(colours):
        rel = f"images/item-{n}.png"
        Image.new("RGB", (24, 16), colour).save(root / rel)
        items.append(
            Item(
                id=f"item-{n}",
                scenario=source.scenario,
                category=source.category,
                text=f"[placeholder query {n}]",
                image=rel,
                metadata=dict(metadata),
            )
        )
    write_dataset(root, base.taxonomy, items, "# Tiny test dataset\n")
    return load_dataset(root)


def test_random_skips_byte_identical_copies_and_needs_two_distinct_images(tmp_path: Path) -> None:
    dataset = _tiny_dataset(tmp_path / "ds", [(10, 10, 10), (10, 10, 10), (200, 0, 0)])
    chosen = prepare_images(dataset.items, dataset, "random", 0, tmp_path / "run")
    red = sha256_file(dataset.root / "images/item-2.png")
    # The two grey items are copies of each other: each must get the red one, never the other copy.
    assert sha256_file(chosen["item-0"]) == sha256_file(chosen["item-1"]) == red  # type: ignore[arg-type]
    assert sha256_file(chosen["item-2"]) != red  # type: ignore[arg-type]

    same = _tiny_dataset(tmp_path / "same", [(10, 10, 10), (10, 10, 10)])
    with pytest.raises(ConditionError, match="at least 2 distinct images"):
        check(same.items, same, "random")


def test_modality_other_than_image_refuses_a_condition(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs modality 'image'"):
        RunConfig(out=tmp_path, modality="text", image_condition="black")
    result = CliRunner().invoke(
        app, ["evaluate", "--out", str(tmp_path / "r"), "--image-condition", "sepia", "--limit", "1"]
    )
    assert result.exit_code == 2 and "image_condition" in result.output


def _stub_models(stub: OpenAIStub) -> dict[str, Any]:
    model = {"spec": "openai:stub-model", "base_url": stub.base_url, "api_key": "sk-test-stub-0000"}
    return {"targets": [model], "jury": {"model": model}}


def _responder(request: dict[str, Any]) -> Any:
    if request.get("tools") or request.get("response_format"):
        return structured_responder(JUDGMENT)(request)
    return ANSWER


def _images(request: dict[str, Any]) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in request["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def _is_target(request: dict[str, Any]) -> bool:
    return not (request.get("tools") or request.get("response_format"))


def _records(out: Path) -> list[dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_the_jury_is_shown_exactly_the_image_the_target_was_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    with OpenAIStub(_responder) as stub:
        evaluate(out=out, limit=2, concurrency=1, image_condition="black", **_stub_models(stub))
        requests = list(stub.requests)
    targets = [r for r in requests if _is_target(r)]
    jurors = [r for r in requests if not _is_target(r)]
    assert len(targets) == 2 and len(jurors) == 10
    records = {r["item_id"]: r for r in _records(out)}
    for record in records.values():
        assert record["image_condition"] == "black" and record["verdict"]["status"] == "decided"
        shown = out / record["image"]["path"]
        assert record["image"]["path"].startswith("conditions/black/")
        assert record["image"]["sha256"] == sha256_file(shown)
        uri = "data:image/png;base64," + base64.b64encode(shown.read_bytes()).decode("ascii")
        target = [r for r in targets if record["query"] in json.dumps(r)]
        seen = [r for r in jurors if record["query"] in json.dumps(r)]
        assert len(target) == 1 and len(seen) == 5
        assert _images(target[0]) == [uri]  # the target saw the black image ...
        assert all(_images(r) == [uri] for r in seen)  # ... and every juror the very same bytes
    config = (out / "config.yaml").read_text(encoding="utf-8")
    assert "image_condition: black" in config
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert info["conditions"]["image_condition"] == "black" and info["conditions"]["seed"] == 0


def test_none_sends_no_image_to_the_target_or_the_jury(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    with OpenAIStub(_responder) as stub:
        evaluate(out=out, limit=2, image_condition="none", **_stub_models(stub))
        requests = list(stub.requests)
    assert len(requests) == 12 and not any(_images(r) for r in requests)
    # The jury is not told of an image either (the case's image line is absent).
    assert not any("sent an image" in json.dumps(r) for r in requests)
    for record in _records(out):
        assert record["image"] is None and record["image_condition"] == "none"
        assert record["prompt"] == record["query"]  # text alone: the query, not its image-paired variant


def test_a_resume_with_another_condition_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--limit", "1", "--quiet"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(
        app, ["evaluate", "--out", str(out), "--resume", "--image-condition", "white", "--quiet"]
    )
    assert again.exit_code == 2 and "image_condition differs" in again.output


def test_first_attempt_without_attempts_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["evaluate", "--out", str(out), "--limit", "2", "--image-condition", "first-attempt"]
    )
    assert result.exit_code == 2
    first = sample().items[0].id
    assert f"item {first}: the dataset keeps no first image attempt" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (out / "results.jsonl").exists()  # nothing was started


def test_first_attempt_shows_the_unrefined_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    dataset = _tiny_dataset(root, [(0, 90, 0), (0, 0, 90)])
    # What `safebench generate` keeps (safebench.generation.pipeline.to_item): every attempt, round 1
    # first; here round 2 was chosen and became the item's image.
    (root / "images" / "attempts").mkdir()
    items = []
    for item in dataset.items:
        attempt = f"images/attempts/{item.id}-r1.png"
        Image.new("RGB", (24, 16), (123, 45, 67)).save(root / attempt)
        provenance = [
            {"round": 2, "path": item.image, "sha256": item.image_sha256, "evokes": True},
            {"round": 1, "path": attempt, "sha256": sha256_file(root / attempt), "evokes": False},
        ]
        items.append(item.model_copy(update={"metadata": {"image_provenance": provenance}}))
    write_dataset(root, dataset.taxonomy, items, "# Tiny test dataset\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--out",
            str(out),
            "--dataset",
            str(root),
            "--image-condition",
            "first-attempt",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    for record in _records(out):
        attempt = root / f"images/attempts/{record['item_id']}-r1.png"
        assert record["image"]["sha256"] == sha256_file(attempt)  # the attempt's bytes, copied as is
        assert pixels(out / record["image"]["path"]) == {(123, 45, 67)}
    shutil.rmtree(out)


def test_dataset_condition_keeps_todays_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(out=out, limit=1, targets=[ModelConfig(spec="scripted:mixed")])
    record = _records(out)[0]
    item = sample().items[0]
    assert record["image_condition"] == "dataset"
    assert record["image"] == {"path": item.image, "sha256": item.image_sha256, "voice": None}
