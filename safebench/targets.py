"""Targets: the models under evaluation. Most are chat models; `replay:` answers from a recorded file."""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from safebench.config import Modality
from safebench.models import ModelConfig
from safebench.providers.pool import ModelPool, default_pool
from safebench.schema import AudioRef, Item

# Sent with the recording in the audio-only modality. Given a clip and no text, several audio-language
# models transcribe or caption it instead of answering it; this fixed line says "answer" and carries
# nothing of the query itself, so the request is still heard, not read.
AUDIO_INSTRUCTION = "Please respond to the request in the audio."


class Target(ABC):
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @property
    def spec(self) -> str:
        return self.config.spec

    @property
    def label(self) -> str:
        """The target's unique name in records and metrics (its models-file name, else its spec)."""
        return self.config.id

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


def create_target(config: ModelConfig, pool: ModelPool | None = None) -> Target:
    """The target of `config` from `pool` (default: the process-wide pool): a target on the same model
    config as a juror shares its chat model, client and rate limiter."""
    return (pool if pool is not None else default_pool()).target(config)


def image_block(path: Path) -> dict[str, str]:
    """A provider-neutral image content block; langchain-openai turns it into a data-URI `image_url`."""
    mime = (
        "image/jpeg"
        if path.suffix.lower() in {".jpg", ".jpeg"}
        else f"image/{path.suffix.lower().lstrip('.')}"
    )
    stat = path.stat()
    return {"type": "image", "base64": _encoded(str(path), stat.st_mtime_ns, stat.st_size), "mime_type": mime}


# The target and every juror are sent the same image within moments of each other: read and encode it
# once. Room for the items a run has in flight (its concurrency); keyed by mtime and size, so a file
# changed on disk is read again.
@lru_cache(maxsize=128)
def _encoded(path: str, mtime_ns: int, size: int) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def audio_block(path: Path) -> dict[str, str]:
    """A provider-neutral audio content block (a WAV file); langchain-openai turns it into `input_audio`."""
    return {
        "type": "audio",
        "base64": base64.b64encode(path.read_bytes()).decode("ascii"),
        "mime_type": "audio/wav",
    }


def item_audio(item: Item, voice: str) -> AudioRef:
    """The item's recording in `voice`; ValueError naming the item when it has none."""
    for ref in item.audio:
        if ref.voice == voice:
            return ref
    have = ", ".join(ref.voice for ref in item.audio) or "none"
    raise ValueError(f"item {item.id!r} has no {voice!r} recording (it has: {have})")


def target_messages(
    item: Item,
    dataset_dir: Path,
    modality: Modality = "image",
    *,
    voice: str = "female",
    audio: str | Path | None = None,
    template: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[BaseMessage]:
    """The query as a user turn, by modality:

    - `text`: the query text; `image`: the item's image with its image-paired text (`image_text`,
      else the query text), or the text alone for an item without an image;
    - `audio`: the item's recording in `voice`, then AUDIO_INSTRUCTION (a fixed neutral line);
    - `audio+text`: the recording, then the query text.

    `audio` gives the recording's location directly (the evaluation graph passes absolute paths);
    otherwise it is the `voice` AudioRef under `dataset_dir`.

    `template` (a bundled name or file, safebench.target_templates) replaces the text part, rendered
    with the item's query, image_text and `names` (`scenario`, `category`: their names, else the ids).
    Not in `audio`: there the query is only heard, and a template would put it in writing.
    """
    if modality in ("audio", "audio+text"):
        path = Path(audio) if audio is not None else dataset_dir / item_audio(item, voice).path
        text = AUDIO_INSTRUCTION if modality == "audio" else _text(item, item.text, template, names)
        return [HumanMessage(content=[audio_block(path), {"type": "text", "text": text}])]
    if modality == "image" and item.image:
        # The image-paired variant refers to the image instead of naming the subject, when there is one.
        text = _text(item, item.image_text or item.text, template, names)
        return [HumanMessage(content=[{"type": "text", "text": text}, image_block(dataset_dir / item.image)])]
    # Text alone is a plain string: several servers' chat templates (llama.cpp's) reject lists of parts.
    return [HumanMessage(content=_text(item, item.text, template, names))]


def _text(item: Item, plain: str, template: str | None, names: Mapping[str, str] | None) -> str:
    if template is None:
        return plain
    from safebench.target_templates import load_template, variables

    names = names or {}
    return load_template(template).render(
        **variables(
            item.text,
            item.image_text,
            names.get("scenario", item.scenario),
            names.get("category", item.category),
        )
    )
