"""Name normalisation and similarity: when two proposed items are the same, and what a reference names.

- `tokens`: ASCII-folded, lower-cased words; "&" read as "and"; stop words dropped; a crude plural
  stem ("activities" -> "activity", "opinions" -> "opinion"); a small synonym table (`_SYNONYMS`,
  e.g. guidance/counsel -> advice, behaviour -> behavior, views -> opinion) maps near-synonyms to one
  word. `name_similarity` is 1 when the names' words, concatenated, are equal ("Cyber Security" vs
  "Cybersecurity"), else the Jaccard similarity of their word sets.
- `similarity` = 0.6 x name similarity + 0.4 x Jaccard similarity of the definitions' words.
  Two proposed categories (or two scenarios) are joined when it is >= `MERGE_THRESHOLD` (0.5): equal
  normalised names always join; names sharing one word of three need nearly the same definition.
  It is conservative on purpose: a missed duplicate can still be merged by a judge's `merge` edit in
  the rebuttal rounds, while a wrong join would silently lose a scenario.
- Semantic (with an embedder, see `merge`): cosine similarity of the embeddings of `embedding_text`
  ("Name: definition") >= `SYNONYM_THRESHOLD` (0.75). Measured with all-MiniLM-L6-v2: synonyms the
  word rules miss score 0.84-0.89 ("Malware Generation" / "Malware Creation" 0.89), distinct scenarios
  0.30-0.61 (the closest pair of the default taxonomy, "Political Opinions" / "Religious Opinions",
  0.61); docs/embeddings.md has the table.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

MERGE_THRESHOLD = 0.5
NAME_WEIGHT = 0.6
SYNONYM_THRESHOLD = 0.75

STOPWORDS = frozenset(
    word
    for line in (
        "a an and or of the to for in on with by from as at into about its their any other such that which",
        "who this these those be is are was were been it them they someone something can could should may",
        "e g eg etc including especially without not no own more how what when where via",
    )
    for word in line.split()
)
# Keys are stems (see _stem). Only true near-synonyms: a wrong entry would join distinct scenarios.
_SYNONYMS = {
    stem: word
    for word, stems in {
        "advice": "guidance counsel counseling counselling consultation recommendation",
        "behavior": "behaviour conduct",
        "opinion": "view viewpoint stance",
        "speech": "language",
        "harm": "injury",
        "criminal": "crime",
        "illegal": "unlawful illicit",
        "privacy": "private",
        "confidentiality": "confidential secrecy",
        "fraudulent": "fraud scam",
        "child": "children minor",
        "pornographic": "pornography porn",
        "hate": "hateful",
        "defamatory": "defamation",
        "disinformation": "misinformation",
        "religious": "religion",
        "political": "politic",
        "medical": "health medicine",
        "investment": "financial finance",
        "legal": "law",
    }.items()
    for stem in stems.split()
}
_PHRASES = {"intellectual property": "ip", "malicious software": "malware"}


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def clean(text: str) -> str:
    """Whitespace collapsed and trimmed: how names and definitions are stored."""
    return " ".join(str(text).split())


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    text = ascii_fold(text).lower().replace("&", " and ")
    for phrase, word in _PHRASES.items():
        text = re.sub(rf"\b{phrase}\b", word, text)
    out = []
    for word in re.findall(r"[a-z0-9]+", text):
        if word not in STOPWORDS:
            stem = _stem(word)
            out.append(_SYNONYMS.get(stem, stem))
    return out


def name_key(name: str) -> str:
    """Names equal under this key are the same name ("Medical Guidance" = "medical advice")."""
    return "".join(tokens(name))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def name_similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return 1.0 if "".join(ta) == "".join(tb) else _jaccard(set(ta), set(tb))


def similarity(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Of two items with `name` and `definition` (see the module docstring)."""
    names = name_similarity(a["name"], b["name"])
    definitions = _jaccard(set(tokens(a["definition"])), set(tokens(b["definition"])))
    return NAME_WEIGHT * names + (1 - NAME_WEIGHT) * definitions


def embedding_text(item: Mapping[str, Any]) -> str:
    """What the embedder reads of an item: name and definition together (the name alone confuses
    "Physical Harm" with "Psychological Harm", 0.80; with definitions 0.54)."""
    return f"{clean(item['name'])}: {clean(item['definition'])}"


def slugify(name: str, fallback: str = "item") -> str:
    words = [
        w for w in re.findall(r"[a-z0-9]+", ascii_fold(name).lower().replace("&", " and ")) if w != "and"
    ]
    return "_".join(words)[:60].strip("_") or fallback
