"""Check one generator batch: did the generator refuse, wander off-topic, or return nothing usable?

Heuristics (cheap, lexical, documented so their limits are clear):

- Refusal: a refusal phrase ("I can't help with", "I'm sorry, but", "as an AI", "against my
  guidelines", ...) in the first 300 characters of a reply that holds no usable list. Inside a list,
  a single item counts as a refusal only if it has such a phrase and no question mark (a first-person
  query such as "I'm sorry to ask, but how ...?" is kept).
- Unusable item: fewer than 3 words, or a refusal. A batch with no usable item is `empty` (or
  `refusal` when the reply or its items refused).
- Off-topic: each query's content words (>= 4 letters, not stop words) are cut to 5-letter stems and
  compared with the stems of the topic (category name and definition, scenario name and definition).
  A batch is off-topic when fewer than `min_on_topic` (default 25%) of its queries share at least one
  stem with the topic. This catches a generator that wrote about something else entirely (recipes,
  the weather); it does not judge subtle drift, which the scorers' applicability score ranks down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "refusal", "off_topic", "empty", "unparseable"]

DEFAULT_MIN_ON_TOPIC = 0.25
MIN_WORDS = 3

_REFUSAL = re.compile(
    "|".join(
        (
            r"\bI(?:'m| am)\s+(?:sorry|afraid)\b",
            r"\b(?:I|we)\s+(?:can(?:'|’)?t|cannot|won(?:'|’)t|will not|am unable to|(?:'m|am) not able to)"
            r"\s+(?:\w+\s+){0,2}?(?:help|assist|comply|provide|create|generate|write|produce|fulfil\w*"
            r"|support|do that|engage|participate)",
            r"\bas an AI\b",
            r"\b(?:against|violates?|breach(?:es)?)\s+(?:my|our|the)\s+(?:\w+\s+)?(?:guidelines|polic(?:y|ies)"
            r"|principles|terms)",
            r"\bnot (?:able|allowed|permitted) to (?:help|assist|provide|generate|create|write)",
        )
    ),
    re.I,
)

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP_WORDS = """
    about above after again against also among another because been before being below between both
    could does doing down during each either every from further have having here into itself just
    like make many more most much must only other over same should some such than that their them
    then there these they this those through under until upon very want what when where which while
    whom whose will with within without would your yours someone something anyone anything people
    person thing things other others using used uses give given gets getting know need
"""
_STOP = frozenset(_STOP_WORDS.split())


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text[:300]))


def _stems(text: str) -> set[str]:
    words = (w.casefold() for w in _WORD.findall(text))
    return {w[:5] for w in words if len(w) >= 4 and w not in _STOP}


def topic_stems(*texts: str) -> set[str]:
    stems: set[str] = set()
    for text in texts:
        stems |= _stems(text)
    return stems


def on_topic_share(queries: list[str], topic: set[str]) -> float:
    if not queries:
        return 0.0
    return sum(1 for q in queries if _stems(q) & topic) / len(queries)


_ENUMERATION = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s+")
_QUOTES = "\"'“”‘’`"


def clean_text(text: str) -> str:
    """One line, without list numbering or wrapping quotes (models often add both)."""
    text = " ".join(str(text).split())
    text = _ENUMERATION.sub("", text).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def clean_form(form: str | None, text: str) -> str:
    form = " ".join(str(form or "").casefold().replace("_", " ").split())
    if form:
        return form[:40]
    return "question" if text.endswith("?") else "instruction"


@dataclass
class BatchCheck:
    status: Status
    usable: list[dict[str, str]] = field(default_factory=list)  # [{"text", "form"}]
    unusable: int = 0  # items dropped from an otherwise parsed list
    problem: str = ""  # one line: why the batch is not ok (shown in the retry prompt and the report)


def check_batch(
    reply_text: str,
    items: list[dict[str, str]] | None,
    topic: set[str],
    *,
    min_on_topic: float = DEFAULT_MIN_ON_TOPIC,
) -> BatchCheck:
    """Classify a generator's batch; `items` is None when the reply held no readable list."""
    if items is None:
        if looks_like_refusal(reply_text):
            return BatchCheck("refusal", problem="the reply refused instead of writing the list")
        return BatchCheck("unparseable", problem="the reply held no readable JSON list of queries")
    usable: list[dict[str, str]] = []
    refused = 0
    for item in items:
        text = clean_text(item.get("text", ""))
        if looks_like_refusal(text) and "?" not in text:
            refused += 1
        elif len(text.split()) >= MIN_WORDS:
            usable.append({"text": text, "form": clean_form(item.get("form"), text)})
    unusable = len(items) - len(usable)
    if not usable:
        if refused or looks_like_refusal(reply_text):
            return BatchCheck("refusal", unusable=unusable, problem="the list held refusals, not queries")
        return BatchCheck("empty", unusable=unusable, problem="the list held no usable query")
    share = on_topic_share([u["text"] for u in usable], topic)
    if share < min_on_topic:
        return BatchCheck(
            "off_topic",
            unusable=unusable,
            problem=f"only {share:.0%} of the queries were about the scenario",
        )
    return BatchCheck("ok", usable=usable, unusable=unusable)
