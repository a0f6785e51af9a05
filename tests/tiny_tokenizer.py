"""The WordLevel tokenizer of the tiny test models (tests/tiny_models.py, tests/tiny_audio_model.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers is imported lazily: a test module that skips should not pay for it
    from transformers import PreTrainedTokenizerFast

# A neutral filler vocabulary, so random weights have more than the template's words to emit.
FILLER = [f"w{i}" for i in range(48)]


def word_level_tokenizer(
    special_tokens: list[str], words: list[str], **roles: Any
) -> PreTrainedTokenizerFast:
    """Special tokens, then `words`, then the filler (everything else maps to `<unk>`, which must be in
    `special_tokens`); `roles` name the special tokens (pad_token=..., extra_special_tokens=...)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*special_tokens, *words, *FILLER])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    # On the `tokenizers` object itself, so runs like `<image><image>` split into one token each.
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", padding_side="left", **roles)
