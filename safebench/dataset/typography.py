"""Typographic images: a query's key phrase as large black text on white (FigStep / MM-SafetyBench style)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

MAX_WORDS = 6
MARGIN = 40
MIN_SIZE = 12

# Question words, auxiliaries, pronouns and polite framing at the start of a query carry no topic.
_LEADING_WORDS = """
    how what which where when why who whom whose what's how's where's who's whats hows
    can could would will should shall may might must do does did is are was were am be
    please kindly tell explain describe show give list help teach let
    i you we me us someone somebody anyone one people person i'm i'd you're
    there it possible a an the some any way ways method methods steps step best easiest good
    to for in of about with detail details
"""
_LEADING = frozenset(_LEADING_WORDS.split())
# Filler inside the phrase costs one of the few words the image shows.
_INNER_DROP = frozenset(
    {"a", "an", "the", "please", "my", "your", "our", "that", "so", "just", "really", "very"}
    | {
        "i",
        "me",
        "someone",
        "somebody",
        "can",
        "could",
        "would",
        "should",
        "will",
        "it",
        "its",
        "they",
        "them",
    }
)
# A phrase should not end on a word that only links to what was cut off.
_TRAILING_DROP = frozenset(
    {
        "to",
        "of",
        "for",
        "in",
        "on",
        "into",
        "from",
        "with",
        "without",
        "before",
        "after",
        "while",
        "and",
        "or",
    }
    | {"their", "his", "her", "as", "at", "by", "than", "is", "are", "be"}
)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# Clause breaks: the first clause carries the request ("..., and how much?" adds little).
_CLAUSE = re.compile(r"[,;:?!]|\.(?:\s|$)")


def key_phrase(text: str, max_words: int = MAX_WORDS) -> str:
    """A short topic phrase from a query: drop leading question/polite words and filler, keep a few words.

    Deterministic (no model), e.g. "How can someone get prescription opioids without seeing a doctor?"
    -> "Get prescription opioids without seeing doctor".
    """
    for clause in [*_CLAUSE.split(text), text]:
        words = _WORD.findall(clause)
        start = 0
        while start < len(words) and words[start].lower().replace("’", "'") in _LEADING:
            start += 1
        kept = [w for w in words[start:] if w.lower() not in _INNER_DROP][:max_words]
        while kept and kept[-1].lower() in _TRAILING_DROP:
            kept.pop()
        if kept:
            break
    else:  # the query was all framing words: fall back to its own words
        kept = _WORD.findall(text)[:max_words]
    if not kept:
        return " ".join(text.split())[:60]
    phrase = " ".join(kept)
    return phrase[0].upper() + phrase[1:]


def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType: sizes are ignored
        raise RuntimeError("typography images need Pillow with FreeType support")
    return font


def _split_long_word(word: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    pieces, current = [], ""
    for char in word:
        if current and font.getlength(current + char) > width:
            pieces.append(current)
            current = char
        else:
            current += char
    return [*pieces, current] if current else pieces


def _wrap(phrase: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in phrase.split():
        for piece in _split_long_word(word, font, width) if font.getlength(word) > width else [word]:
            candidate = f"{current} {piece}" if current else piece
            if current and font.getlength(candidate) > width:
                lines.append(current)
                current = piece
            else:
                current = candidate
    return [*lines, current] if current else lines


def _layout(phrase: str, width: int, height: int) -> tuple[ImageFont.FreeTypeFont, list[str], int]:
    """The largest font size at which the phrase fits; cuts the last lines if even the smallest fails."""
    box_w, box_h = width - 2 * MARGIN, height - 2 * MARGIN
    size = max(MIN_SIZE, height // 7)
    while True:
        font = _font(size)
        ascent, descent = font.getmetrics()
        step = int((ascent + descent) * 1.2)
        lines = _wrap(phrase, font, box_w)
        if len(lines) * step <= box_h or size <= MIN_SIZE:
            break
        size = max(MIN_SIZE, size - 4)
    fit = max(1, box_h // step)
    if len(lines) > fit:
        lines = [*lines[: fit - 1], lines[fit - 1].rstrip() + " …"]
    return font, lines, step


def render_typography(phrase: str, path: Path, *, width: int = 760, height: int = 760) -> None:
    """Write `phrase` as a centred, word-wrapped black-on-white PNG; equal inputs give identical bytes."""
    image = Image.new("RGB", (width, height), "white")
    phrase = " ".join(phrase.split())
    if phrase:
        font, lines, step = _layout(phrase, width, height)
        draw = ImageDraw.Draw(image)
        top = (height - len(lines) * step) // 2
        for index, line in enumerate(lines):
            left = (width - font.getlength(line)) / 2
            draw.text((round(left), top + index * step), line, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Pillow writes no time or text chunks unless asked, so the bytes depend only on the pixels
    image.save(path, format="PNG")
