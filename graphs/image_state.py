"""State and runtime context of the image graph (one run per generated query)."""

from __future__ import annotations

import operator
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from graphs.context import Agent, make_agent
from graphs.state import add_usage
from safebench.agents import load_stage_card
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy

DEFAULT_MAX_ROUNDS = 3  # the SafeBench paper's cap on critic rounds


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


def default_image_context() -> ImageContext:
    """The bundled cards with their default models (LangGraph Studio runs the graph without a context)."""
    return ImageContext(
        interpreter=image_agent("interpreter", None),
        critic=image_agent("critic", None),
        out_dir=Path(tempfile.gettempdir()) / "safebench-images",
    )
