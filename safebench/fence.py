"""Fences for untrusted text (model answers, dataset queries, other jurors' reasoning) in prompts.

A fence is a pair of tags with a nonce, `<answer-3f9a1c2b7d04>` … `</answer-3f9a1c2b7d04>`. The nonce is
a hash of the fenced text itself (and a key such as the item id), so whoever wrote the text cannot
know it in advance and so cannot close the fence: a `</answer>`, `</Answer>` or `</ answer>` inside
stays inside. Chat-template control tokens (`<|im_end|>`, `[/INST]`, …) are made visibly inert, since
some servers would read them as the end of the user's turn.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fence", "fence_tag", "neutralise_control_tokens", "unfence"]

# Turn and sequence markers of the common chat templates (ChatML, Llama 2/3, Mistral, Gemma, Phi).
_CONTROL_TOKEN = re.compile(
    r"<\|[^<>|\n]{1,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(?:start|end)_of_turn>|<\|?(?:begin|end)_of_text\|?>",
    re.I,
)
_INERT = str.maketrans({"<": "‹", ">": "›", "[": "⟦", "]": "⟧"})
NONCE_CHARS = 12


def neutralise_control_tokens(text: str) -> str:
    """`<|im_end|>` → `‹|im_end|›`, `[/INST]` → `⟦/INST⟧`: still readable, no longer a token."""
    return _CONTROL_TOKEN.sub(lambda m: m.group(0).translate(_INERT), text)


def fence_tag(name: str, text: str, key: str = "") -> str:
    """The tag name fencing `text`: `name-<nonce>`, the nonce never occurring in `text`."""
    for attempt in range(100):
        digest = hashlib.sha256(f"{name}\x1f{key}\x1f{attempt}\x1f{text}".encode()).hexdigest()
        tag = f"{name}-{digest[:NONCE_CHARS]}"
        if tag not in text:
            return tag
    raise ValueError("cannot find a fence tag absent from the text")  # pragma: no cover - 1 in 16^12


def fence(text: str, name: str, key: str = "") -> str:
    """`text` between `<name-nonce>` and `</name-nonce>` lines, control tokens neutralised."""
    body = neutralise_control_tokens(str(text))
    tag = fence_tag(name, body, key)
    return f"<{tag}>\n{body}\n</{tag}>"


def unfence(prompt: str, name: str) -> str | None:
    """The body of the first `name` fence in `prompt` (how the scripted stand-ins read a prompt)."""
    match = re.search(rf"<({re.escape(name)}-[0-9a-f]{{{NONCE_CHARS}}})>\n(.*?)\n</\1>", prompt, re.S)
    return match.group(2) if match else None
