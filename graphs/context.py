"""Runtime context of the graphs: live model objects and deliberation settings (never checkpointed).

Two forms of context reach a graph:
- live contexts (`JuryContext`, `EvaluationContext`, ...): built by safebench's runner and pipeline,
  with the run's model pool; passed through as they are;
- settings (`JurySettings`, `EvaluationSettings`, ...): plain, serialisable specs and numbers, the
  graphs' `context_schema`. LangGraph Studio and `langgraph-sdk` can only send JSON, and LangGraph
  coerces a dict context into the schema class (`context={}` and no context give the defaults: the
  bundled cards and their scripted stand-ins). One cached resolver per graph kind turns settings
  into a live context once, its models from `default_pool()`: nodes never rebuild agents.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator

from safebench.agents import AgentCard, load_foreperson, load_juror, load_jurors
from safebench.config import ConfigError, Deliberation, JuryConfig, Modality
from safebench.embeddings import EmbedderStatus, load_embedder
from safebench.models import ModelConfig
from safebench.providers.pool import ModelPool, default_pool, model_key
from safebench.retry import RetryPolicy
from safebench.structured import Outcome, OutputFormat, ask_structured
from safebench.targets import Target, create_target

T = TypeVar("T", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)
C = TypeVar("C")


@dataclass
class Agent:
    card: AgentCard
    config: ModelConfig
    model: BaseChatModel


@dataclass
class JuryContext:
    jurors: list[Agent]
    foreperson: Agent
    summarize: bool = False
    max_rounds: int = 2
    deliberate: Deliberation = "on_disagreement"
    quorum: int = 3
    reasks: int = 1
    seed: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prompts_dir: Path | None = None


@dataclass
class EvaluationContext(JuryContext):
    target: Target | None = None
    modality: Modality = "image"


def make_agent(
    card: AgentCard,
    config: ModelConfig | None = None,
    models: dict[str, BaseChatModel] | None = None,
    pool: ModelPool | None = None,
) -> Agent:
    """`card` played by `config` (default: the card's own model). A pre-built model in `models` (keyed by
    `model_key(config)`, else by spec; e.g. with the pipeline's SQLite cache attached) is used as is; any
    other comes from `pool` (default: the process-wide pool): one model object per model config."""
    config = config or ModelConfig(spec=card.model)
    models = models or {}
    model = models.get(model_key(config))
    if model is None:
        model = models.get(config.spec)
    if model is None:
        model = (pool if pool is not None else default_pool()).chat(config)
    return Agent(card=card, config=config, model=model)


async def ask_agent(
    agent: Agent,
    schema: type[T],
    build_messages: Callable[[OutputFormat], list[BaseMessage]],
    *,
    retry: RetryPolicy,
    reasks: int,
    config: RunnableConfig | None = None,
    parse_text: Callable[[str], T] | None = None,
) -> Outcome[T]:
    """`ask_structured` with the agent's model and output method; never raises for model failures."""
    return await ask_structured(
        agent.model,
        schema,
        build_messages,
        parse_text=parse_text,
        output=agent.config.output,
        retry=retry,
        reasks=reasks,
        config=config,
    )


Seat = tuple[AgentCard, ModelConfig]


def jury_seats(config: JuryConfig) -> tuple[list[Seat], Seat]:
    """(card, model config) of every juror and of the foreperson, without building any model.

    `model` (`--jury SPEC`) seats every juror without a model of its own and, unless `foreperson` is
    set, the foreperson too. ConfigError when `quorum` exceeds the jury: no verdict could ever be reached.
    """
    if config.jurors is None:
        picks: list[tuple[AgentCard, ModelConfig | None]] = [
            (card, None) for card in load_jurors(config.agents_dir)
        ]
    else:
        picks = [(load_juror(j.card, config.agents_dir), j.model) for j in config.jurors]
    if config.quorum > len(picks):
        raise ConfigError(f"jury quorum {config.quorum} is larger than the jury size {len(picks)}")
    jurors = [(card, model or config.model or ModelConfig(spec=card.model)) for card, model in picks]
    fore_card = load_foreperson(config.agents_dir)
    fore_model = config.foreperson or config.model or ModelConfig(spec=fore_card.model)
    return jurors, (fore_card, fore_model)


def jury_agents(config: JuryConfig, pool: ModelPool | None = None) -> tuple[list[Agent], Agent]:
    """The jurors and the foreperson, their models from `pool` (one object per distinct model config)."""
    jurors, (fore_card, fore_model) = jury_seats(config)
    agents = [make_agent(card, model, pool=pool) for card, model in jurors]
    return agents, make_agent(fore_card, fore_model, pool=pool)


def jury_context(
    config: JuryConfig, retry: RetryPolicy | None = None, pool: ModelPool | None = None
) -> dict[str, object]:
    """Keyword arguments shared by JuryContext and EvaluationContext, built from a JuryConfig; pass the
    run's pool so that its targets and jurors share model objects."""
    jurors, foreperson = jury_agents(config, pool)
    return {
        "jurors": jurors,
        "foreperson": foreperson,
        "summarize": config.summarize,
        "max_rounds": config.max_rounds,
        "deliberate": config.deliberate,
        "quorum": config.quorum,
        "reasks": config.reasks,
        "seed": config.seed,
        "retry": retry or RetryPolicy(),
        "prompts_dir": config.prompts_dir,
    }


def default_jury_context(pool: ModelPool | None = None) -> JuryContext:
    """The bundled agent cards with their default models: the cached default settings' context, or a
    new one on `pool`."""
    if pool is None:
        return jury_from_settings.resolve(None)
    return JuryContext(**jury_context(JuryConfig(), pool=pool))  # type: ignore[arg-type]


def default_evaluation_context(pool: ModelPool | None = None) -> EvaluationContext:
    """The bundled jury judging the `scripted:mixed` stand-in (cached without a `pool`, as above)."""
    if pool is None:
        return evaluation_from_settings.resolve(None)
    target = create_target(ModelConfig(spec="scripted:mixed"), pool)
    return EvaluationContext(**jury_context(JuryConfig(), pool=pool), target=target)  # type: ignore[arg-type]


# ---- serialisable settings (LangGraph Studio, langgraph-sdk) ---------------------------------------


def check_spec(value: str | None) -> str | None:
    """A model spec, checked when the settings are made (ModelConfig names the usual slip)."""
    if value is not None:
        ModelConfig(spec=value)
    return value


def resolve_embedder(spec: str) -> EmbedderStatus:
    """The embedder of a settings' `embedder` spec, for the resolvers below and the graphs' Python
    APIs (never a node): one model object per spec, shared by every context (memoised in
    safebench.embeddings). An unavailable status says why, and matching stays lexical."""
    return load_embedder(spec)


class JurySettings(BaseModel):
    """The jury graph's context as plain data; every field has a default (the bundled cards)."""

    # Frozen: the settings object is the resolver's cache key. Extra keys are errors, not ignored:
    # a misspelt setting must not silently run the defaults (langgraph-api drops keys not in the schema
    # before they get here).
    model_config = ConfigDict(frozen=True, extra="forbid")

    juror_model: str | None = Field(
        default=None,
        description="Model spec for every juror (e.g. openai:gpt-4o); None: each card's default model. "
        "Also seats the foreperson unless foreperson_model is set.",
    )
    foreperson_model: str | None = Field(default=None, description="Model spec for the foreperson.")
    max_rounds: int = Field(default=2, ge=0, le=10, description="Rebuttal rounds at most.")
    deliberate: Deliberation = "on_disagreement"
    quorum: int = Field(default=3, ge=1, description="Valid opinions needed for a verdict.")
    reasks: int = Field(default=1, ge=0, le=5, description="Re-asks of a juror whose reply cannot be read.")
    seed: int = 0
    summarize: bool = Field(default=False, description="The foreperson summarises the reasoning.")

    _specs = field_validator("juror_model", "foreperson_model")(classmethod(lambda cls, v: check_spec(v)))

    def jury_config(self) -> JuryConfig:
        return JuryConfig(
            model=ModelConfig(spec=self.juror_model) if self.juror_model else None,
            foreperson=ModelConfig(spec=self.foreperson_model) if self.foreperson_model else None,
            max_rounds=self.max_rounds,
            deliberate=self.deliberate,
            quorum=self.quorum,
            reasks=self.reasks,
            seed=self.seed,
            summarize=self.summarize,
        )


class EvaluationSettings(JurySettings):
    """The evaluation graph's context as plain data: the jury's settings, the target and the modality."""

    target: str = Field(default="scripted:mixed", description="Model spec of the model under test.")
    modality: Modality = "image"

    _target = field_validator("target")(classmethod(lambda cls, v: check_spec(v)))


class Resolver(Generic[S, C]):
    """Settings → live context, built once per distinct settings value and then cached (an LRU of
    `maxsize` contexts, keyed by the frozen settings object). A live context (`live_type`) passes
    through as it is. Thread-safe: sync nodes run in worker threads, and two threads must not build two
    contexts for the same settings."""

    def __init__(
        self, settings_type: type[S], live_type: type[C], build: Callable[[S], C], maxsize: int = 32
    ) -> None:
        self.settings_type, self.live_type, self.maxsize = settings_type, live_type, maxsize
        self._build = build
        self._cache: OrderedDict[S, C] = OrderedDict()
        self._lock = threading.Lock()

    def settings(self, value: object) -> S:
        if isinstance(value, self.settings_type):
            return value
        if value is None or isinstance(value, Mapping):
            return self.settings_type.model_validate(dict(value or {}))
        raise TypeError(
            f"context: expected {self.live_type.__name__}, {self.settings_type.__name__}, a dict or None; "
            f"got {type(value).__name__}"
        )

    def resolve(self, context: object) -> C:
        if isinstance(context, self.live_type):
            return context
        settings = self.settings(context)
        with self._lock:
            built = self._cache.get(settings)
            if built is None:
                built = self._cache[settings] = self._build(settings)
                if len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(settings)
            return built

    async def aresolve(self, context: object) -> C:
        """`resolve` for async nodes: a first build reads agent cards from disk, so it runs in a worker
        thread (`langgraph dev` raises BlockingError for file I/O on the event loop); a cached context
        comes back without the thread hop."""
        if isinstance(context, self.live_type):
            return context
        settings = self.settings(context)
        # A lock-free peek (one dict lookup is atomic): waiting for the lock here would stall the event
        # loop while another thread builds.
        built = self._cache.get(settings)
        return built if built is not None else await asyncio.to_thread(self.resolve, settings)

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()


def resolver(
    settings_type: type[S], live_type: type[C], maxsize: int = 32
) -> Callable[[Callable[[S], C]], Resolver[S, C]]:
    """Decorate the function that builds a live context from settings into its cached `Resolver`."""

    def wrap(build: Callable[[S], C]) -> Resolver[S, C]:
        return Resolver(settings_type, live_type, build, maxsize)

    return wrap


@resolver(JurySettings, JuryContext)
def jury_from_settings(settings: JurySettings) -> JuryContext:
    return JuryContext(**jury_context(settings.jury_config()))  # type: ignore[arg-type]


@resolver(EvaluationSettings, EvaluationContext)
def evaluation_from_settings(settings: EvaluationSettings) -> EvaluationContext:
    target = create_target(ModelConfig(spec=settings.target))
    return EvaluationContext(
        **jury_context(settings.jury_config()),  # type: ignore[arg-type]
        target=target,
        modality=settings.modality,
    )


def jury_resolver(context: object) -> Resolver[Any, JuryContext]:
    """The resolver for the jury nodes' context: evaluation settings resolve to the evaluation context,
    so the jury nodes of the evaluation graph share its agents (an EvaluationContext is a JuryContext
    and passes through either way)."""
    if isinstance(context, EvaluationSettings):
        return evaluation_from_settings  # type: ignore[return-value]
    return jury_from_settings
