"""What an `hf:` model is, before any weights load: where it lives and which inputs it takes.

Where: a model folder, a hub id, or one GGUF checkpoint in either (`hf:DIR/NAME.gguf`, or
`hf:FOLDER_OR_HUB_ID?gguf_file=NAME.gguf`; transformers dequantises GGUF weights to torch tensors, which
needs the `gguf` and `accelerate` packages).

Which inputs: read from the model's config (never from its name), through transformers' own auto
mappings: an image-text-to-text architecture takes images, a multimodal-LM one (Qwen2-Audio, ...) audio
(and perhaps images), anything else loads as a text-only causal LM with its tokenizer's chat template.
A text-only model given an image or audio is a one-line error that says to use `--modality text`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError

GGUF_SUFFIX = ".gguf"
GGUF_PACKAGES = ("gguf", "accelerate")
GGUF_INSTALL_HINT = "pip install 'safebench[hf,gguf]'"
# Options a spec may carry after `?`; anything else is a typo we would rather report than ignore.
SPEC_OPTIONS = ("gguf_file",)
# `org/name` or a bare `name`: what the hub accepts as a repo id.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

# "image": AutoModelForImageTextToText; "multimodal": AutoModelForMultimodalLM (audio-language models);
# "text": AutoModelForCausalLM with the tokenizer (no processor, no image or audio input).
Kind = Literal["image", "multimodal", "text"]


class MediaNotSupported(ValueError):
    """A text-only model was sent an image or audio: the request itself cannot work, on any retry."""


# --- where the model is --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """`source` is what `from_pretrained` takes (an expanded folder path or a hub id)."""

    source: str
    gguf_file: str | None = None
    local: bool = True

    def load_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def parse_location(name: str) -> Location:
    """The location named by the part of an `hf:` spec after the prefix (ModelSpecError if malformed)."""
    base, has_query, query = name.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True)) if has_query else {}
    unknown = sorted(set(options) - set(SPEC_OPTIONS))
    if unknown:
        raise ModelSpecError(f"'hf:{name}': unknown option {unknown[0]!r} (known: {', '.join(SPEC_OPTIONS)})")
    gguf_file = options.get("gguf_file") or None
    path = Path(base).expanduser()
    if gguf_file is None and base.lower().endswith(GGUF_SUFFIX):
        # The spec names the checkpoint file itself: transformers wants its folder plus its file name.
        return Location(str(path.parent), path.name, local=True)
    if path.exists():
        return Location(str(path), gguf_file, local=True)
    looks_local = base.startswith((".", "/", "~")) or "\\" in base or base.count("/") > 1
    return Location(base, gguf_file, local=looks_local or not _HUB_ID.match(base))


def check_location(config: ModelConfig) -> Location:
    """The model's location, if its files are there (or it is a hub id we may fetch); else one line."""
    spec = config.spec
    location = parse_location(config.name)
    path = Path(location.source)
    if location.gguf_file:
        missing = [name for name in GGUF_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelSpecError(f"{spec!r}: GGUF files need {' and '.join(missing)}: {GGUF_INSTALL_HINT}")
    if location.local:
        if not path.is_dir():
            problem = "is not a folder" if path.exists() else "does not exist (and it is not a hub id)"
            raise ModelSpecError(f"{spec!r}: model folder {path} {problem}")
        if location.gguf_file:
            if not (path / location.gguf_file).is_file():
                raise ModelSpecError(f"{spec!r}: GGUF file {path / location.gguf_file} does not exist")
        elif not (path / "config.json").is_file():
            raise ModelSpecError(f"{spec!r}: {path} is not a transformers model folder (no config.json)")
        return location
    wanted = location.gguf_file or "config.json"
    if hub_offline() and not _in_hub_cache(location.source, wanted):
        raise ModelSpecError(
            f"{spec!r}: no folder {path}, and hub id {location.source!r} is not in the local cache"
            f"{f' (no {wanted})' if location.gguf_file else ''} (HF_HUB_OFFLINE is set)"
        )
    return location


def hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _in_hub_cache(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)


# --- which inputs it takes -----------------------------------------------------------------------------


@functools.cache
def model_kind(location: Location, trust_remote_code: bool = False) -> Kind:
    """Read the config only (a GGUF's metadata, not its tensors); cached: preflight and loading both ask."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        location.source, trust_remote_code=trust_remote_code, **location.load_kwargs()
    )
    return kind_of(config)


def kind_of(config: Any) -> Kind:
    """By the auto mapping the architecture is registered in, image-text-to-text first: several
    multimodal models are registered as causal LMs too. Remote-code models declare theirs in `auto_map`."""
    from transformers.models.auto import modeling_auto

    model_type = getattr(config, "model_type", None)
    auto_map = getattr(config, "auto_map", None) or {}
    if model_type in modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return "image"
    if "AutoModelForImageTextToText" in auto_map:
        return "image"
    if model_type in modeling_auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES:
        return "multimodal"
    if "AutoModelForMultimodalLM" in auto_map:
        return "multimodal"
    # Architectures in no mapping at all fail in AutoModelForCausalLM with transformers' own message.
    return "text"


def media_error(spec: str, media: str) -> str:
    """The one line a text-only model given `media` ("an image", "audio") answers with."""
    return f"{spec!r} is a text-only model and cannot take {media}: use --modality text"


def check_inputs(config: ModelConfig, media: frozenset[str]) -> None:
    """ModelSpecError when the run would send `media` ({"image", "audio"}) to a text-only model."""
    if not media:
        return
    location = check_location(config)
    if model_kind(location, config.trust_remote_code) == "text":
        raise ModelSpecError(media_error(config.spec, _media_words(media)))


def _media_words(media: frozenset[str] | set[str]) -> str:
    words = {"image": "an image", "audio": "audio"}
    return " or ".join(words.get(m, m) for m in sorted(media))


def text_conversation(spec: str, conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A processor-style conversation (content as parts) as tokenizer chat-template input: plain string
    content, which is what text-only chat templates expect. MediaNotSupported on any image or audio."""
    converted = []
    for message in conversation:
        content = message["content"]
        if not isinstance(content, str):
            kinds = {part.get("type") for part in content} - {"text"}
            if kinds:
                raise MediaNotSupported(media_error(spec, _media_words(kinds)))
            content = "\n".join(part.get("text", "") for part in content)
        converted.append({**message, "content": content})
    return converted
