"""Scripted stand-ins of the image stage (registered into safebench.providers.scripted).

- `interpreter`: key phrase from `safebench.dataset.typography.key_phrase`, a templated description,
  and the image-paired text made by replacing the subject with "the activity shown in the image".
- `critic`: rejects the first attempt of queries whose text hashes to an odd number (with feedback,
  a revised description and an all-caps key phrase) and accepts everything else, so the critic loop
  runs offline. It does not look at the image.
- `critic-never`: always rejects, which drives the loop to its round cap.

They are not language models: they write no content of their own beyond these templates.
"""

from __future__ import annotations

import hashlib
import json
import re

from safebench.dataset.typography import key_phrase
from safebench.fence import unfence
from safebench.providers.scripted import LABEL, register_behaviour

IMAGE_REFERENCE = "the activity shown in the image"
# Words after which the subject is a verb phrase ("how can someone <get ...>"): say "do the activity".
_VERB_CONTEXT = frozenset(
    {"to", "someone", "somebody", "anyone", "one", "people", "i", "you", "we", "they", "do"}
    | {"can", "could", "would", "should", "will", "might", "may"}
)


def _tagged(text: str, tag: str) -> str:
    return unfence(text, tag) or ""


def rejects_first(query_text: str) -> bool:
    """Whether `scripted:critic` rejects the first image of this query (odd hash of the query text)."""
    return int(hashlib.sha256(query_text.encode("utf-8")).hexdigest()[:8], 16) % 2 == 1


def refer_to_image(text: str, phrase: str) -> str:
    """`text` with the span that names `phrase` replaced by a reference to the image."""
    words = phrase.split()
    if words:
        # The phrase keeps the query's words in order, minus filler: allow skipped words between them.
        gap = r"(?:[\W_]+[^\W_]+)*?[\W_]+"
        pattern = r"\b" + gap.join(re.escape(w) for w in words) + r"\b"
        match = re.search(pattern, text, re.I)
        before = text[: match.start()].split() if match else []
        if match and before:  # nothing before the subject: the whole request was the subject
            verb = before[-1].lower().strip(",") in _VERB_CONTEXT
            reference = f"do {IMAGE_REFERENCE}" if verb else IMAGE_REFERENCE
            return text[: match.start()] + reference + text[match.end() :]
    return f"How would someone carry out {IMAGE_REFERENCE}?"


def _interpret(prompt: str, system: str) -> str:
    text = _tagged(prompt, "query")
    phrase = key_phrase(text)
    return json.dumps(
        {
            "key_phrase": phrase,
            "subject": phrase.lower(),
            "description": f"{LABEL} A plain, neutral illustration of: {phrase.lower()}.",
            "image_text": refer_to_image(text, phrase),
        }
    )


def _round(prompt: str) -> int:
    match = re.search(r"attempt (\d+) of", prompt)
    return int(match.group(1)) if match else 1


def _reject(prompt: str) -> str:
    phrase = _tagged(prompt, "key_phrase")
    return json.dumps(
        {
            "evokes": False,
            "feedback": f"{LABEL} The subject is not recognisable at a glance (attempt {_round(prompt)}).",
            "description": f"{LABEL} A clearer, more literal illustration of: {phrase.lower()}.",
            "key_phrase": phrase.upper(),
        }
    )


def _critique(prompt: str, system: str) -> str:
    if _round(prompt) == 1 and rejects_first(_tagged(prompt, "query")):
        return _reject(prompt)
    return json.dumps(
        {
            "evokes": True,
            "feedback": f"{LABEL} The image names the subject.",
            "description": "",
            "key_phrase": "",
        }
    )


register_behaviour("interpreter", _interpret)
register_behaviour("critic", _critique)
register_behaviour("critic-never", lambda prompt, system: _reject(prompt))
