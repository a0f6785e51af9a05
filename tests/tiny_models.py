"""Tiny random-weight models built offline in about a second, for tests of local providers.

Weights are never committed: `build_tiny_llava` writes a LLaVA (llama text model + CLIP vision tower,
hidden size 32, two layers) with `save_pretrained`, so `Auto*.from_pretrained` round-trips offline.
`build_tiny_text_llama` writes a text-only Llama (config + tokenizer with a chat template), random, or
wired to always answer one fixed reply (a juror that returns parsable JSON through real generation).
Import the fixtures (`tiny_llava_path`, `tiny_text_llama_path`, `tiny_json_llama_path`) into a test
module (or a conftest) to share one build per session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.tiny_tokenizer import word_level_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

IMAGE_SIZE = 30
PATCH_SIZE = 6
HIDDEN = 32
SEED = 1234

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
# Words the chat template emits (tiny_tokenizer adds a filler vocabulary); everything else maps to <unk>.
WORDS = ["system", "user", "assistant", ":", ".", ",", "?", "describe", "the", "image", "answer", "question"]

# Plain `role: text` lines; image parts become one `<image>` the processor expands to the patch tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }} : "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% elif part['type'] == 'text' %}{{ part['text'] }} {% endif %}"
    "{% endfor %}{% endif %}"
    "</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def _tokenizer() -> PreTrainedTokenizerFast:
    return word_level_tokenizer(
        SPECIAL_TOKENS,
        WORDS,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )


def _image_processor():  # -> a CLIP image processor (the PIL backend when torchvision is absent)
    import transformers

    try:
        import torchvision  # noqa: F401

        cls = transformers.CLIPImageProcessor
    except ImportError:
        # Importing the PIL variant directly avoids transformers' fallback warning.
        cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    return cls(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )


def build_tiny_llava(directory: Path) -> Path:
    """Write a random-weight LLaVA (model + processor) to `directory` and return it."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(SEED)
    tokenizer = _tokenizer()
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    processor = LlavaProcessor(
        image_processor=_image_processor(),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        # CLIP prepends a CLS token; "default" drops it again, so features == patches.
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision_config = CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=HIDDEN,
    )
    config = LlavaConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llava_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny LLaVA per test session (built in about a second, never downloaded)."""
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


# What the wired text Llama always answers, one vocabulary entry per token (a juror's JSON verdict; the
# decoder joins tokens with spaces). Entries are never encoded, so they may hold any characters.
JSON_REPLY = ['{"unsafe":', "false,", '"rating":', "5,", '"reasoning":', '"[details', 'withheld]"}']


def build_tiny_text_llama(directory: Path, reply: Sequence[str] | None = None) -> Path:
    """Write a text-only LlamaForCausalLM and its tokenizer (chat template included) to `directory`.

    Random weights by default. With `reply`, the weights make greedy decoding emit exactly `reply` then
    `</s>` after any prompt: the layers' output projections are zero, so each position's hidden state is
    its token's (one-hot) embedding, and the LM head maps every token to its successor in the reply."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    tokenizer = word_level_tokenizer(
        ["<pad>", "<unk>", "<s>", "</s>"],
        [*WORDS, *(reply or [])],
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    vocab = len(tokenizer)
    hidden = HIDDEN if reply is None else 4 * -(-vocab // 4)  # one-hot embeddings need hidden >= vocab
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,  # juror prompts are a few hundred words
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    if reply is not None:
        _wire_reply(model, [tokenizer.convert_tokens_to_ids(t) for t in reply], tokenizer.eos_token_id)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _wire_reply(model: object, ids: list[int], eos: int) -> None:
    import torch

    with torch.no_grad():
        for layer in model.model.layers:  # type: ignore[attr-defined]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight  # type: ignore[attr-defined]
        embed.zero_()
        embed[:, : embed.shape[0]] = torch.eye(embed.shape[0])
        head = model.lm_head.weight  # type: ignore[attr-defined]
        head.zero_()
        successor = {token: ids[0] for token in range(embed.shape[0])}  # any prompt token: start the reply
        successor.update(zip(ids, [*ids[1:], eos], strict=True))
        for token, following in successor.items():
            head[following, token] = 1.0


@pytest.fixture(scope="session")
def tiny_text_llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One random text-only Llama per test session."""
    return build_tiny_text_llama(tmp_path_factory.mktemp("tiny-text-llama"))


@pytest.fixture(scope="session")
def tiny_json_llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One text-only Llama per session that always answers JSON_REPLY (a parsable juror verdict)."""
    return build_tiny_text_llama(tmp_path_factory.mktemp("tiny-json-llama"), JSON_REPLY)
