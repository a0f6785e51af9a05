"""Runtime context of the graphs: live model objects and deliberation settings (never checkpointed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from safebench.agents import AgentCard, load_foreperson, load_juror, load_jurors
from safebench.config import ConfigError, Deliberation, JuryConfig, Modality
from safebench.models import ModelConfig
from safebench.providers.pool import ModelPool, default_pool, model_key
from safebench.retry import RetryPolicy
from safebench.structured import Outcome, OutputFormat, ask_structured
from safebench.targets import Target, create_target

T = TypeVar("T", bound=BaseModel)


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
    """`ask_structured` with the agent's model, spec and output method; never raises for model failures."""
    return await ask_structured(
        agent.model,
        agent.config.spec,
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
    """The bundled agent cards with their default models (used by LangGraph Studio without a context)."""
    return JuryContext(**jury_context(JuryConfig(), pool=pool))  # type: ignore[arg-type]


def default_evaluation_context(pool: ModelPool | None = None) -> EvaluationContext:
    """Studio's default for the evaluation graph: the bundled jury judging the `scripted:mixed` stand-in."""
    target = create_target(ModelConfig(spec="scripted:mixed"), pool)
    return EvaluationContext(**jury_context(JuryConfig(), pool=pool), target=target)  # type: ignore[arg-type]
