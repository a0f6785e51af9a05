"""`safebench generate`: queries → images → speech → a dataset folder that `safebench validate` accepts.

Each stage is a LangGraph graph (graphs/generation.py, graphs/image.py) or a plain function (speech);
this module wires them, attaches the SQLite call cache to every model (resume and reproducibility),
and writes the folder with its card. UI lives in the CLI, fed by `on_event`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, field_validator

from safebench.config import RetrySettings
from safebench.dataset import validate_dataset, write_dataset
from safebench.dataset.validate import DatasetInvalid, check_taxonomy
from safebench.embeddings import DEFAULT_EMBEDDER, EmbedderSpec
from safebench.generation.card import generation_card
from safebench.generation.dedupe import DEFAULT_SEMANTIC_THRESHOLD
from safebench.generation.records import GeneratedQuery, IllustratedQuery
from safebench.llm_cache import SQLiteLLMCache
from safebench.models import ModelConfig
from safebench.providers.pool import ModelPool, model_key
from safebench.providers.registry import preflight
from safebench.resources import default_taxonomy_path
from safebench.schema import AudioRef, Item, Taxonomy

Event = dict[str, Any]
CACHE_FILE = "cache.sqlite"


def _as_models(value: Any) -> Any:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [{"spec": v.strip()} if isinstance(v, str) else v for v in value]
    return value


class GenerateConfig(BaseModel):
    """Everything `safebench generate` needs; the defaults run offline on the scripted stand-ins."""

    model_config = ConfigDict(extra="forbid")

    out: Path
    taxonomy: Path | None = None  # default: the bundled SafeBench taxonomy
    scenarios: list[str] | None = None  # a subset of scenario ids
    generators: list[ModelConfig] = Field(default_factory=lambda: [ModelConfig(spec="scripted:generator")])
    scorers: list[ModelConfig] = Field(
        default_factory=lambda: [
            ModelConfig(spec="scripted:scorer"),
            ModelConfig(spec="scripted:scorer-strict"),
        ]
    )
    interpreter: ModelConfig = Field(default_factory=lambda: ModelConfig(spec="scripted:interpreter"))
    critic: ModelConfig = Field(default_factory=lambda: ModelConfig(spec="scripted:critic"))
    renderer: str = "typography"
    per_scenario: int = Field(default=2, ge=1)
    candidates: int = Field(default=10, ge=1)
    batch_size: int = Field(default=10, ge=1)
    weights: dict[str, float] | None = None
    # Semantic near-duplicates: `bundled` falls back to lexical only (and says so) when not installed.
    embedder: EmbedderSpec = DEFAULT_EMBEDDER
    duplicate_threshold: float = Field(default=DEFAULT_SEMANTIC_THRESHOLD, gt=0, le=1)
    image_rounds: int = Field(default=3, ge=1, le=10)
    voices: list[Literal["male", "female"]] = Field(default_factory=lambda: ["male", "female"])
    speech_engine: str = "espeak-ng"
    seed: int = 0
    concurrency: int = Field(default=8, ge=1)
    cache: Path | None = None  # default: <out>/cache.sqlite
    retry: RetrySettings = Field(default_factory=RetrySettings)

    _models = field_validator("generators", "scorers", mode="before")(
        classmethod(lambda cls, v: _as_models(v))
    )

    @field_validator("interpreter", "critic", mode="before")
    @classmethod
    def _one_model(cls, value: Any) -> Any:
        return {"spec": value} if isinstance(value, str) else value

    @property
    def cache_path(self) -> Path:
        return self.cache or self.out / CACHE_FILE

    def all_models(self) -> list[ModelConfig]:
        return [*self.generators, *self.scorers, self.interpreter, self.critic]


@dataclass
class GenerateOutcome:
    out: Path
    items: list[Item]
    report: dict[str, Any]
    calls: int  # model calls the stages made, answered by a model or by the cache
    cache_hits: int
    cache_misses: int  # calls that reached a model


def load_generation_taxonomy(path: Path | None) -> Taxonomy:
    """The taxonomy to generate for; every problem in it is listed at once (DatasetInvalid)."""
    path = path or default_taxonomy_path()
    taxonomy, problems = check_taxonomy(path, file=str(path))
    if problems or taxonomy is None:
        raise DatasetInvalid(problems, root=path)
    return taxonomy


class Generation:
    def __init__(self, config: GenerateConfig, on_event: Callable[[Event], None] | None = None) -> None:
        self.config = config
        self.on_event = on_event or (lambda _e: None)

    def prepare(self) -> Taxonomy:
        """Bad input fails here, before any model call: taxonomy, scenario ids, model specs, espeak-ng."""
        taxonomy = load_generation_taxonomy(self.config.taxonomy)
        if self.config.scenarios:
            unknown = sorted(set(self.config.scenarios) - taxonomy.scenarios.keys())
            if unknown:
                raise ValueError(f"unknown scenario id(s): {', '.join(unknown)}")
        for model in self.config.all_models():
            preflight(model)
        if self.config.voices:
            from safebench.generation.speech import check_engine

            check_engine(self.config.speech_engine)
        return taxonomy

    def _counting(self, stage: str, done_event: str) -> Callable[[Event], None]:
        """Pass a stage's own events on, plus a `progress` event each time one unit of it finishes."""

        def forward(event: Event) -> None:
            self.on_event(event)
            if event.get("event") == done_event:
                self.on_event({"event": "progress", "stage": stage, "advance": 1})

        return forward

    def _models(self, cache: SQLiteLLMCache) -> dict[str, BaseChatModel]:
        # This run's own pool: the cache goes on its model objects only, and agents on one model config
        # share one object (one client, one rate limiter). Keyed by model_key, which make_agent looks up
        # first: two configs of one spec (say, two base_urls) stay two models.
        pool = ModelPool(cache=cache)
        return {model_key(config): pool.chat(config) for config in self.config.all_models()}

    async def run(self) -> GenerateOutcome:
        from graphs.generation import generate_queries
        from graphs.image import illustrate_all
        from safebench.generation.speech import speak_all

        taxonomy = self.prepare()
        config = self.config
        config.out.mkdir(parents=True, exist_ok=True)
        retry = config.retry.policy()
        cache = SQLiteLLMCache(config.cache_path)
        try:
            models = self._models(cache)
            scenario_count = len(config.scenarios or taxonomy.scenarios)
            self.on_event({"event": "stage", "stage": "queries", "total": scenario_count})
            generated = await generate_queries(
                taxonomy,
                config.generators,
                config.scorers,
                per_scenario=config.per_scenario,
                candidates=config.candidates,
                batch_size=config.batch_size,
                weights=config.weights,
                seed=config.seed,
                retry=retry,
                models=models,
                scenarios=config.scenarios,
                concurrency=config.concurrency,
                on_event=self._counting("queries", "scenario_done"),
                embedder=config.embedder,
                duplicate_threshold=config.duplicate_threshold,
            )
            queries = generated.queries
            self.on_event({"event": "stage", "stage": "images", "total": len(queries)})
            illustrated = await illustrate_all(
                queries,
                config.out,
                renderer=config.renderer,
                interpreter=config.interpreter,
                critic=config.critic,
                max_rounds=config.image_rounds,
                seed=config.seed,
                retry=retry,
                models=models,
                concurrency=config.concurrency,
                on_event=self._counting("images", "image_done"),
            )
            self.on_event({"event": "stage", "stage": "speech", "total": len(queries) * len(config.voices)})
            audio = (
                await speak_all(
                    queries,
                    config.out,
                    voices=tuple(config.voices),
                    engine=config.speech_engine,
                    on_event=self.on_event,
                )
                if config.voices
                else [[] for _ in queries]
            )
            items = [
                to_item(q, image, refs) for q, image, refs in zip(queries, illustrated, audio, strict=True)
            ]
            report = {"queries": generated.report, "calls": generated.calls}
            card = generation_card(taxonomy, items, config, report, cache)
            write_dataset(config.out, taxonomy, items, card)
            problems = validate_dataset(config.out)
            if problems:  # a bug of ours, not bad input: say so loudly
                raise DatasetInvalid(problems, root=config.out)
            self.on_event({"event": "done", "items": len(items)})
            calls = cache.hits + cache.misses  # every model of every stage goes through the cache
            return GenerateOutcome(config.out, items, report, calls, cache.hits, cache.misses)
        finally:
            cache.close()


def to_item(query: GeneratedQuery, image: IllustratedQuery, audio: list[Any]) -> Item:
    refs = [a if isinstance(a, AudioRef) else AudioRef.model_validate(a) for a in audio]
    return Item(
        id=query.id,
        scenario=query.scenario,
        category=query.category,
        text=query.text,
        image=image.image,
        image_sha256=image.image_sha256,
        image_text=image.image_text,
        audio=refs,
        metadata={
            "form": query.form,
            "generator": query.generator,
            "scores": {k: v.model_dump() for k, v in query.scores.items()},
            "final_score": query.final_score,
            "key_phrase": image.key_phrase,
            "image_provenance": [a.model_dump() for a in image.attempts],
        },
    )


async def generate_dataset(
    config: GenerateConfig, on_event: Callable[[Event], None] | None = None
) -> GenerateOutcome:
    return await Generation(config, on_event).run()
