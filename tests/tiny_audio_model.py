"""Tiny random-weight audio models built offline in about a second, for tests of the audio paths.

- `build_tiny_qwen2_audio`: a Qwen2-Audio (Whisper-style audio encoder + Qwen2 text model, hidden size
  32, two layers) with a real `Qwen2AudioProcessor` (WhisperFeatureExtractor + a WordLevel tokenizer
  holding the audio special tokens + a chat template) - an audio-language target for `hf:`.
- `build_tiny_vits`: a two-speaker VITS text-to-speech model - the `hf:` speech engine.

Weights are never committed: `save_pretrained` writes them to a temporary folder and
`Auto*.from_pretrained` round-trips offline. Import the fixtures with `pytest_plugins`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.tiny_tokenizer import word_level_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SEED = 1234
HIDDEN = 32
MEL_BINS = 80
# The feature extractor pads every clip to CHUNK_SECONDS; the encoder expects exactly that many frames:
# 100 mel frames per second (hop 160 at 16 kHz), halved by its strided convolution.
CHUNK_SECONDS = 8
MAX_SOURCE_POSITIONS = CHUNK_SECONDS * 100 // 2

AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS = "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"
SPECIAL_TOKENS = ["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS]
WORDS = ["system", "user", "assistant", "please", "respond", "to", "the", "request", "in", "audio", "."]

# Qwen's layout (`<|im_start|>role ... <|im_end|>`); each audio part becomes one audio token between its
# markers, which the processor expands to one token per encoder output frame.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }} "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|> "
    "{% elif part['type'] == 'text' %}{{ part['text'] }} {% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)


def _tokenizer() -> PreTrainedTokenizerFast:
    return word_level_tokenizer(
        SPECIAL_TOKENS,
        WORDS,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        extra_special_tokens={
            "audio_token": AUDIO_TOKEN,
            "audio_bos_token": AUDIO_BOS,
            "audio_eos_token": AUDIO_EOS,
        },
    )


def build_tiny_qwen2_audio(directory: Path) -> Path:
    """Write a random-weight Qwen2-Audio (model + processor) to `directory` and return it."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    torch.manual_seed(SEED)
    tokenizer = _tokenizer()
    extractor = WhisperFeatureExtractor(
        feature_size=MEL_BINS, sampling_rate=16_000, chunk_length=CHUNK_SECONDS
    )
    processor = Qwen2AudioProcessor(
        feature_extractor=extractor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    text_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    audio_config = {
        "model_type": "qwen2_audio_encoder",
        "num_mel_bins": MEL_BINS,
        "d_model": HIDDEN,
        "encoder_layers": 2,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 2 * HIDDEN,
        "max_source_positions": MAX_SOURCE_POSITIONS,
    }
    config = Qwen2AudioConfig(
        audio_config=audio_config,
        text_config=text_config,
        audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN),
    )
    model = Qwen2AudioForConditionalGeneration(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_vits(directory: Path, sampling_rate: int = 22_050, num_speakers: int = 2) -> Path:
    """Write a random-weight VITS text-to-speech model (and its character tokenizer) to `directory`."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    torch.manual_seed(SEED)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(" abcdefghijklmnopqrstuvwxyz'?.,-")}
    vocab["<unk>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = VitsTokenizer(str(directory / "vocab.json"), add_blank=True, phonemize=False, normalize=True)
    config = VitsConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=33,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        duration_predictor_filter_channels=16,
        duration_predictor_num_flows=1,
        depth_separable_num_layers=1,
        sampling_rate=sampling_rate,
        num_speakers=num_speakers,
        speaker_embedding_size=8,
    )
    VitsModel(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_qwen2_audio_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny Qwen2-Audio per test session (built in about a second, never downloaded)."""
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"))


@pytest.fixture(scope="session")
def tiny_vits_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny two-speaker VITS (22.05 kHz, so the 16 kHz resampling runs) per test session."""
    return build_tiny_vits(tmp_path_factory.mktemp("tiny-vits"))
