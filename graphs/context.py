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
from safebench.config import Deliberation, JuryConfig, Modality
from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model
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
    card: AgentCard, config: ModelConfig | None = None, models: dict[str, BaseChatModel] | None = None
) -> Agent:
    """`card` played by `config` (default: the card's own model); a pre-built model in `models` (keyed by
    spec, e.g. with the pipeline's SQLite cache attached) is used as is, any other is built here."""
    config = config or ModelConfig(spec=card.model)
    model = (models or {}).get(config.spec)
    return Agent(card=card, config=config, model=model if model is not None else create_chat_model(config))


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


def jury_agents(config: JuryConfig) -> tuple[list[Agent], Agent]:
    if config.jurors is None:
        cards = [(card, None) for card in load_jurors(config.agents_dir)]
    else:
        cards = [(load_juror(j.card, config.agents_dir), j.model) for j in config.jurors]
    jurors = [make_agent(card, model or config.model) for card, model in cards]
    return jurors, make_agent(load_foreperson(config.agents_dir), config.foreperson)


def jury_context(config: JuryConfig, retry: RetryPolicy | None = None) -> dict[str, object]:
    """Keyword arguments shared by JuryContext and EvaluationContext, built from a JuryConfig."""
    jurors, foreperson = jury_agents(config)
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


def default_jury_context() -> JuryContext:
    """The bundled agent cards with their default models (used by LangGraph Studio without a context)."""
    return JuryContext(**jury_context(JuryConfig()))  # type: ignore[arg-type]


def default_evaluation_context() -> EvaluationContext:
    """Studio's default for the evaluation graph: the bundled jury judging the `scripted:mixed` stand-in."""
    target = create_target(ModelConfig(spec="scripted:mixed"))
    return EvaluationContext(**jury_context(JuryConfig()), target=target)  # type: ignore[arg-type]
