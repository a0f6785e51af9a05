"""`safebench generate` end to end, offline: a valid dataset that evaluates, reproducibility from the
call cache, resume after a crash without re-buying calls, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import graphs.image
from safebench.cli import app
from safebench.config import RunConfig
from safebench.dataset import validate_dataset
from safebench.generation.pipeline import GenerateConfig, Generation, generate_dataset
from safebench.runner import evaluate_async

SCENARIOS = ["medical_advice", "malware_generation", "bias"]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")


def config(out: Path, **kw: Any) -> GenerateConfig:
    return GenerateConfig(out=out, scenarios=SCENARIOS, per_scenario=2, candidates=8, **kw)


@needs_espeak
async def test_generated_dataset_validates_and_evaluates(tmp_path: Path) -> None:
    outcome = await generate_dataset(config(tmp_path / "ds"))
    assert validate_dataset(tmp_path / "ds") == []
    assert [i.scenario for i in outcome.items] == [s for s in SCENARIOS for _ in range(2)]
    item = outcome.items[0]
    assert item.image and item.image_text and "image" in item.image_text
    assert sorted(a.voice for a in item.audio) == ["female", "male"]
    assert set(item.metadata["scores"]) == {"scripted:scorer", "scripted:scorer-strict"}
    assert item.metadata["generator"] == "scripted:generator"
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "scripted stand-ins" in card and "Content hashes" in card and "langgraph" in card

    for modality in ("image", "audio+text"):
        run_config = RunConfig(
            dataset=str(tmp_path / "ds"), out=tmp_path / f"run-{modality}", modality=modality
        )
        run = await evaluate_async(run_config)
        assert run.records == 6
        lines = (tmp_path / f"run-{modality}" / "results.jsonl").read_text().splitlines()
        assert all(json.loads(line)["verdict"]["status"] == "decided" for line in lines)


async def test_same_seed_and_cache_reproduce_items_jsonl_byte_for_byte(tmp_path: Path) -> None:
    cache = tmp_path / "calls.sqlite"
    first = await generate_dataset(config(tmp_path / "a", cache=cache, voices=[]))
    second = await generate_dataset(config(tmp_path / "b", cache=cache, voices=[]))
    assert (tmp_path / "a" / "items.jsonl").read_bytes() == (tmp_path / "b" / "items.jsonl").read_bytes()
    assert first.cache_misses > 0 and second.cache_misses == 0
    assert second.cache_hits == first.calls


async def test_resume_after_a_crash_buys_no_call_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = await generate_dataset(config(tmp_path / "clean", voices=[]))

    original = graphs.image.illustrate_all

    async def crash_midway(queries: list[Any], *args: Any, **kwargs: Any) -> Any:
        await original(queries[:3], *args, **kwargs)
        raise RuntimeError("injected crash")

    monkeypatch.setattr(graphs.image, "illustrate_all", crash_midway)
    crashed = Generation(config(tmp_path / "ds", voices=[]))
    with pytest.raises(RuntimeError, match="injected crash"):
        await crashed.run()
    monkeypatch.setattr(graphs.image, "illustrate_all", original)

    bought_before_crash = _cached_calls(tmp_path / "ds" / "cache.sqlite")
    resumed = await generate_dataset(config(tmp_path / "ds", voices=[]))
    assert 0 < bought_before_crash < clean.cache_misses
    assert resumed.cache_misses == clean.cache_misses - bought_before_crash
    assert (tmp_path / "ds" / "items.jsonl").read_bytes() == (tmp_path / "clean" / "items.jsonl").read_bytes()


def _cached_calls(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


BAD_TAXONOMY = """\
name: bad
categories:
  - id: cyber
    name: Cyber
    abbr: CY
    definition: ""
    scenarios:
      - {id: malware, name: Malware, abbr: MW, definition: Malicious software.}
      - {id: malware, name: Malware again, abbr: MX, definition: Same id.}
scenarios:
  - {id: stray, name: Stray, abbr: ST, definition: No category.}
"""


def test_bad_taxonomy_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text(BAD_TAXONOMY)
    result = CliRunner().invoke(app, ["generate", "--taxonomy", str(taxonomy), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 2
    assert "scenarios[0]: scenario 'stray' has no category" in result.output
    assert "categories[0].scenarios[1].id: duplicate scenario id 'malware'" in result.output
    assert "categories[0].definition" in result.output
    assert "3 problem(s); nothing was started" in result.output
    assert not (tmp_path / "ds").exists()


def test_missing_espeak_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner(env={"PATH": str(tmp_path)}).invoke(app, ["generate", "--out", str(tmp_path / "ds")])
    assert result.exit_code == 2
    assert "espeak-ng" in result.output and "apt-get install" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()
