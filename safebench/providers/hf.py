"""`hf:` provider: a local transformers model (image/audio-text-to-text, or text-only) as a LangChain
chat model.

Image models load through AutoModelForImageTextToText, audio-language models (e.g. Qwen2-Audio)
through AutoModelForMultimodalLM, text-only models through AutoModelForCausalLM and their tokenizer's
chat template (which of the three is read from the config: safebench.providers.hf_text, which also
locates folders, hub ids and GGUF files). Audio content blocks (WAV) are decoded and handed to the
processor at its feature extractor's sampling rate.

torch and transformers are imported inside functions only: the registry imports this module for every
user, and most users never install the `hf` extra.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from safebench.models import ModelConfig
from safebench.providers.hf_batching import Generated, GenerationSettings, MicroBatcher, generate_batch
from safebench.providers.hf_text import (
    MediaNotSupported,
    check_inputs,
    check_location,
    model_kind,
    parse_location,
    text_conversation,
)
from safebench.providers.registry import ModelSpecError, Provider

INSTALL_HINT = "pip install torch==2.13.0 'safebench[hf]'"
DTYPES = ("auto", "float32", "bfloat16", "float16")


# --- preflight ---------------------------------------------------------------------------------------


def hf_preflight(config: ModelConfig) -> None:
    """Fail fast on a missing `hf` extra, a bad dtype/device or a model path that does not exist."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelSpecError(f"{config.spec!r} needs {' and '.join(missing)}: {INSTALL_HINT}")
    if config.dtype not in DTYPES:
        raise ModelSpecError(f"{config.spec!r}: dtype {config.dtype!r} is not one of {', '.join(DTYPES)}")
    _check_device(config)
    check_location(config)


def _check_device(config: ModelConfig) -> None:
    device = config.device.split(":", 1)[0]
    if device == "cpu":
        return
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ModelSpecError(f"{config.spec!r}: device {config.device!r} requested but CUDA is not available")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ModelSpecError(f"{config.spec!r}: device {config.device!r} requested but MPS is not available")


# --- loading (once per path/device/dtype, shared by every chat model instance) ------------------------


@dataclass
class LoadedModel:
    # The processor of a multimodal model; the tokenizer of a text-only one (`text_only`).
    processor: Any
    model: Any
    # One generate at a time per model: concurrent calls would only fight over the same cores/GPU.
    lock: threading.Lock
    text_only: bool = False


LoadKey = tuple[str, str, str, bool]
_LOADED: dict[LoadKey, LoadedModel] = {}
_LOAD_LOCKS: dict[LoadKey, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def load_model(
    path: str, device: str = "cpu", dtype: str = "auto", trust_remote_code: bool = False
) -> LoadedModel:
    """Load (or reuse) the processor and model; thread-safe, each key loads exactly once."""
    key: LoadKey = (path, device, dtype, trust_remote_code)
    with _REGISTRY_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        key_lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _REGISTRY_LOCK:
            if key in _LOADED:
                return _LOADED[key]
        loaded = _load(path, device, dtype, trust_remote_code)
        with _REGISTRY_LOCK:
            _LOADED[key] = loaded
        return loaded


def unload_models() -> None:
    """Forget every loaded model (frees memory once no chat model holds them)."""
    with _REGISTRY_LOCK:
        _LOADED.clear()
        _LOAD_LOCKS.clear()


def _load(path: str, device: str, dtype: str, trust_remote_code: bool) -> LoadedModel:
    """`path` is the spec without its `hf:` prefix (a folder, a hub id, a GGUF file or `?gguf_file=`)."""
    import torch
    import transformers
    from transformers import AutoProcessor, AutoTokenizer

    if dtype not in DTYPES:
        raise ModelSpecError(f"hf:{path}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    location = parse_location(path)
    kind = model_kind(location, trust_remote_code)
    options = {"trust_remote_code": trust_remote_code, **location.load_kwargs()}
    if kind == "text":
        processor = AutoTokenizer.from_pretrained(location.source, **options)
        if not processor.chat_template:
            raise ModelSpecError(f"hf:{path}: the tokenizer has no chat template, so it cannot chat")
    else:
        processor = AutoProcessor.from_pretrained(location.source, **options)
    auto_class = getattr(transformers, _AUTO_CLASSES[kind])
    model = auto_class.from_pretrained(location.source, dtype=torch_dtype, **options)
    model.to(device)
    model.eval()
    tokenizer = _tokenizer(processor)
    # Batches are left-padded so every prompt ends where generation starts.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(processor=processor, model=model, lock=threading.Lock(), text_only=kind == "text")


# Per kind (safebench.providers.hf_text.kind_of).
_AUTO_CLASSES = {
    "image": "AutoModelForImageTextToText",
    "multimodal": "AutoModelForMultimodalLM",
    "text": "AutoModelForCausalLM",
}


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


# --- LangChain messages -> processor chat format --------------------------------------------------------

ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_conversation(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the processor's chat-template input; images become decoded PIL images,
    audio (WAV) float32 samples with their `sampling_rate` (resampled in `generate_batch`)."""
    conversation = []
    for index, message in enumerate(messages):
        role = ROLES.get(message.type)
        if role is None or not isinstance(message, SystemMessage | HumanMessage | AIMessage):
            raise ValueError(f"hf: message {index} has unsupported type {message.type!r}")
        conversation.append({"role": role, "content": _parts(message.content, index)})
    return conversation


def _parts(content: str | list[Any], index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind in ("image", "image_url"):
            parts.append(_image_part(block, index))
        elif kind in ("audio", "input_audio"):
            parts.append(_audio_part(block, index))
        else:
            raise ValueError(
                f"hf: message {index} has a {kind!r} content block; only text, image and audio are supported"
            )
    return parts


def _image_part(block: dict[str, Any], index: int) -> dict[str, Any]:
    if block["type"] == "image_url":
        url = block.get("image_url")
        url = url.get("url", "") if isinstance(url, dict) else url
    else:
        data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
        if data:
            return {"type": "image", "image": decode_image(data)}
        url = block.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError(f"hf: message {index} has an image block without base64 data or url")
    if url.startswith("data:"):
        _, _, data = url.partition(",")
        return {"type": "image", "image": decode_image(data)}
    # http(s) URLs and local paths: the processor loads them itself.
    return {"type": "image", "url": url}


WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")


def _audio_part(block: dict[str, Any], index: int) -> dict[str, Any]:
    if block["type"] == "input_audio":  # the OpenAI Chat Completions shape
        inner = block.get("input_audio") or {}
        data, kind = inner.get("data"), f"audio/{inner.get('format', '')}"
    else:
        data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
        kind = block.get("mime_type") or "audio/wav"
    if not data:
        raise ValueError(f"hf: message {index} has an audio block without base64 data")
    if kind not in WAV_TYPES:
        raise ValueError(f"hf: message {index} has {kind} audio; only WAV is supported")
    try:
        samples, rate = decode_audio(data)
    except ValueError as exc:
        raise ValueError(f"hf: message {index} has unreadable audio: {exc}") from exc
    return {"type": "audio", "audio": samples, "sampling_rate": rate}


def decode_audio(data: str) -> tuple[Any, int]:
    """(float32 mono samples, sampling rate) of base64 WAV bytes."""
    from safebench.generation.speech import read_wav

    return read_wav(base64.b64decode(data))


def decode_image(data: str) -> Any:
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data)))
    # Palette/alpha PNGs and CMYK JPEGs: processors expect RGB.
    return image.convert("RGB")


# --- the chat model ------------------------------------------------------------------------------------


@dataclass
class _Request:
    conversation: list[dict[str, Any]]
    settings: GenerationSettings


class HFChatModel(BaseChatModel):
    """A local transformers model (image/audio-text-to-text or text-only); concurrent `ainvoke` calls
    share batched generation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    device: str = "cpu"
    dtype: str = "auto"
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    batch_size: int = Field(default=8, ge=1)
    trust_remote_code: bool = False
    # How long the first request of an idle spell waits for others to join its batch.
    batch_window: float = Field(default=0.02, ge=0.0)

    _batcher: MicroBatcher[_Request, Generated | Exception] | None = PrivateAttr(default=None)
    _batcher_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "hf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "device": self.device, "dtype": self.dtype}

    def loaded(self) -> LoadedModel:
        return load_model(self.model_path, self.device, self.dtype, self.trust_remote_code)

    def _run_batch(self, requests: list[_Request]) -> list[Generated | Exception]:
        """Generate for every request the model can take; a request it cannot (an image for a text-only
        model) gets its error in its own slot, so it does not fail the batch it happened to join."""
        loaded = self.loaded()
        prepared: list[list[dict[str, Any]] | Exception] = []
        for request in requests:
            try:
                prepared.append(self._prepared(loaded, request.conversation))
            except MediaNotSupported as exc:
                prepared.append(exc)
        ready = [p for p in prepared if not isinstance(p, Exception)]
        # The batcher groups requests by settings, so one batch has one set.
        generated = iter(generate_batch(loaded, ready, requests[0].settings) if ready else [])
        return [p if isinstance(p, Exception) else next(generated) for p in prepared]

    def _prepared(self, loaded: LoadedModel, conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return text_conversation(f"hf:{self.model_path}", conversation) if loaded.text_only else conversation

    def _request(self, messages: list[BaseMessage]) -> _Request:
        settings = GenerationSettings(max_new_tokens=self.max_tokens, temperature=self.temperature)
        return _Request(conversation=to_conversation(messages), settings=settings)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(self._run_batch([self._request(messages)])[0], stop)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages)
        generated = await self._get_batcher().submit(request, group=request.settings)
        return self._result(generated, stop)

    def _get_batcher(self) -> MicroBatcher[_Request, Generated | Exception]:
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = MicroBatcher(self._run_batch, self.batch_size, self.batch_window)
            return self._batcher

    def _result(self, generated: Generated | Exception, stop: list[str] | None) -> ChatResult:
        if isinstance(generated, Exception):
            raise generated
        text = _cut_at_stop(generated.text, stop)
        usage = UsageMetadata(
            input_tokens=generated.input_tokens,
            output_tokens=generated.output_tokens,
            total_tokens=generated.input_tokens + generated.output_tokens,
        )
        message = AIMessage(
            content=text,
            usage_metadata=usage,
            response_metadata={"model_name": self.model_path, "finish_reason": generated.finish_reason},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    cuts = [i for s in stop or [] if s and (i := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text


def create_hf_chat_model(config: ModelConfig) -> HFChatModel:
    return HFChatModel(
        model_path=config.name,
        device=config.device,
        dtype=config.dtype,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        batch_size=config.batch_size,
        trust_remote_code=config.trust_remote_code,
    )


PROVIDER = Provider(
    name="hf",
    chat=create_hf_chat_model,
    preflight=hf_preflight,
    check_inputs=check_inputs,
    description=(
        "local transformers model (image/audio+text, or text-only): hf:<folder, hub id or .gguf file>"
        " (needs the hf extra)"
    ),
)
