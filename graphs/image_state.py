"""State and runtime context of the image graph (one run per generated query)."""

from __future__ import annotations

import operator
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict  # see graphs/state.py

from graphs import examples
from graphs.context import Agent, check_spec, make_agent, resolver
from graphs.state import add_usage, studio_example
from safebench.agents import load_stage_card
from safebench.generation.renderers import get_renderer
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy

DEFAULT_MAX_ROUNDS = 3  # the SafeBench paper's cap on critic rounds


@with_config(studio_example(examples.image_example))
class ImageState(TypedDict, total=False):
    query: dict[str, Any]  # GeneratedQuery.model_dump()
    # The current plan: set by the interpreter, revised by the critic.
    key_phrase: str
    subject: str
    description: str
    image_text: str
    round: int  # the attempt being rendered and critiqued, 1-based
    pending: dict[str, Any]  # the rendered attempt awaiting the critic
    attempts: Annotated[list[dict[str, Any]], operator.add]  # ImageAttempt dumps (+ key_phrase)
    done: bool
    errors: Annotated[list[str], operator.add]  # interpreter fallback, critic abstentions
    calls: Annotated[int, operator.add]
    tokens: Annotated[dict[str, int], add_usage]
    result: dict[str, Any]  # IllustratedQuery dump (+ errors)


@dataclass
class ImageContext:
    interpreter: Agent
    critic: Agent
    out_dir: Path  # the dataset folder: images go to <out_dir>/images/
    renderer: str = "typography"
    max_rounds: int = DEFAULT_MAX_ROUNDS
    seed: int = 0
    reasks: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prompts_dir: Path | None = None


def image_agent(
    card_id: str,
    config: ModelConfig | None,
    models: dict[str, Any] | None = None,
    agents_dir: Path | None = None,
) -> Agent:
    """The card `agents/image/<card_id>.yaml` as an agent (`config` and `models` as in `make_agent`)."""
    return make_agent(load_stage_card("image", card_id, agents_dir), config, models)


# Warm tempfile's cache now: its first gettempdir() probes folders, and settings are made on the event
# loop (langgraph dev raises BlockingError for that I/O); later calls return the cached folder.
tempfile.gettempdir()


def default_out_dir() -> str:
    return str(Path(tempfile.gettempdir()) / "safebench-images")


class ImageSettings(BaseModel):
    """The image graph's context as plain data (LangGraph Studio, langgraph-sdk); see graphs/context.py."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # frozen: the resolver's cache key

    interpreter_model: str | None = Field(default=None, description="Model spec; None: the card's default.")
    critic_model: str | None = Field(default=None, description="Model spec; None: the card's default.")
    out_dir: str = Field(
        default_factory=default_out_dir, description="Dataset folder: images go to <out_dir>/images/."
    )
    renderer: str = Field(default="typography", description='"typography" or "diffusers:<model>".')
    max_rounds: int = Field(default=DEFAULT_MAX_ROUNDS, ge=1, le=10, description="Attempts at most.")
    seed: int = 0
    reasks: int = Field(default=1, ge=0, le=5)

    _specs = field_validator("interpreter_model", "critic_model")(classmethod(lambda cls, v: check_spec(v)))


@resolver(ImageSettings, ImageContext)
def image_from_settings(settings: ImageSettings) -> ImageContext:
    get_renderer(settings.renderer)  # an unusable renderer fails before any model is called
    interpreter = ModelConfig(spec=settings.interpreter_model) if settings.interpreter_model else None
    critic = ModelConfig(spec=settings.critic_model) if settings.critic_model else None
    return ImageContext(
        interpreter=image_agent("interpreter", interpreter),
        critic=image_agent("critic", critic),
        out_dir=Path(settings.out_dir).expanduser(),
        renderer=settings.renderer,
        max_rounds=settings.max_rounds,
        seed=settings.seed,
        reasks=settings.reasks,
    )


def default_image_context() -> ImageContext:
    """The bundled cards with their default models (the cached default settings)."""
    return image_from_settings.resolve(None)
