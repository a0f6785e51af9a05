"""Targets: the models under evaluation. Most are chat models; `replay:` answers from a recorded file."""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from safebench.models import ModelConfig
from safebench.providers.registry import create_chat_model, get_provider
from safebench.schema import Item

Modality = Literal["text", "image"]


class Target(ABC):
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @property
    def spec(self) -> str:
        return self.config.spec

    @abstractmethod
    async def respond(self, item: Item, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        """Answer one item; raise on failure (the caller retries transient errors)."""


class ChatTarget(Target):
    def __init__(self, config: ModelConfig, model: BaseChatModel) -> None:
        super().__init__(config)
        self.model = model

    async def respond(self, item: Item, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        reply = await self.model.ainvoke(messages, config=config)
        assert isinstance(reply, AIMessage)
        return reply


def create_target(config: ModelConfig) -> Target:
    provider = get_provider(config)
    if provider.target is not None:
        return provider.target(config)
    return ChatTarget(config, create_chat_model(config))


def image_block(path: Path) -> dict[str, str]:
    """A provider-neutral image content block; langchain-openai turns it into a data-URI `image_url`."""
    mime = (
        "image/jpeg"
        if path.suffix.lower() in {".jpg", ".jpeg"}
        else f"image/{path.suffix.lower().lstrip('.')}"
    )
    return {"type": "image", "base64": base64.b64encode(path.read_bytes()).decode("ascii"), "mime_type": mime}


def target_messages(item: Item, dataset_dir: Path, modality: Modality = "image") -> list[BaseMessage]:
    """The query as a user turn: its text, plus its image unless the modality is text-only."""
    content: list[str | dict] = [{"type": "text", "text": item.text}]
    if modality == "image" and item.image:
        content.append(image_block(dataset_dir / item.image))
    return [HumanMessage(content=content)]
