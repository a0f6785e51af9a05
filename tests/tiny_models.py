"""Tiny random-weight models built offline in about a second, for tests of local providers.

Weights are never committed: `build_tiny_llava` writes a LLaVA (llama text model + CLIP vision tower,
hidden size 32, two layers) with `save_pretrained`, so `Auto*.from_pretrained` round-trips offline.
Import the `tiny_llava_path` fixture into a test module (or a conftest) to share one build per session.
"""

from __future__ import annotations

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
