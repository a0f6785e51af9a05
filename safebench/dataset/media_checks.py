"""Checks of the media files items point to: safe relative paths, images that decode, spoken queries
that are 16 kHz mono 16-bit PCM WAV, and their sha256 digests."""

from __future__ import annotations

import hashlib
import io
import re
import wave
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from PIL import Image

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
AUDIO_RATE = 16_000  # spoken queries: 16 kHz mono 16-bit PCM WAV


def _check_file(root: Path, path: str, kind: str) -> tuple[str | None, bytes | None]:
    """(problem, file bytes): the path must stay inside the dataset folder and name a readable file."""
    if "\\" in path:
        return f"{kind} path {path!r} must use forward slashes", None
    rel = PurePosixPath(path)
    if rel.is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
        return f"{kind} path {path!r} is absolute; it must be relative to the dataset folder", None
    if ".." in rel.parts:
        return f"{kind} path {path!r} must not contain '..'", None
    full = root / rel
    base = root.resolve()
    if not full.resolve().is_relative_to(base):
        return f"{kind} path {path!r} resolves outside the dataset folder (through a symlink)", None
    if not full.exists():
        return f"{kind} file not found: {path}", None
    if not full.is_file():
        return f"{kind} path {path!r} is not a regular file", None
    try:
        return None, full.read_bytes()
    except OSError as exc:
        return f"cannot read {kind} {path}: {exc.strerror or exc}", None


# sha256 -> what decoding those bytes found (None: a good image). Identical bytes decode identically, so
# items sharing an image (or a dataset validated again before a run) decode it once; small entries, capped.
_DECODED: dict[str, str | None] = {}
_DECODED_MAX = 50_000


def check_image(root: Path, image: str) -> tuple[str | None, str | None]:
    """(problem, sha256 of the file): one problem at most, since each rules out the next checks."""
    if not image.strip():
        return "empty image path (use null for an item without an image)", None
    problem, data = _check_file(root, image, "image")
    if data is None:
        return problem, None
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _DECODED:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[digest] = _decode_problem(data)
    reason = _DECODED[digest]
    if reason is not None:
        return f"image {image} is corrupt or not a supported image: {reason}", None
    return None, digest


def _decode_problem(data: bytes) -> str | None:
    try:
        # verify() checks structure without decoding; load() decodes every pixel (truncated data fails here)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return str(exc)
    return None


def check_audio(root: Path, audio: str) -> tuple[str | None, str | None]:
    """(problem, sha256 of the file) for a spoken query: a readable 16 kHz mono 16-bit PCM WAV."""
    if not audio.strip():
        return "empty audio path", None
    problem, data = _check_file(root, audio, "audio")
    if data is None:
        return problem, None
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate, frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            samples = wav.readframes(frames)
    except (wave.Error, EOFError) as exc:
        return f"audio {audio} is corrupt or not a PCM WAV file: {str(exc) or 'unexpected end of file'}", None
    if (rate, channels, width) != (AUDIO_RATE, 1, 2):
        found = f"{rate} Hz, {channels} channel(s), {8 * width}-bit"
        return f"audio {audio} is {found}; it must be {AUDIO_RATE} Hz mono 16-bit", None
    if frames == 0:
        return f"audio {audio} has no samples (duration 0 s)", None
    if len(samples) < frames * width * channels:
        return f"audio {audio} is truncated: the header says {frames} frames, the file holds fewer", None
    return None, hashlib.sha256(data).hexdigest()


def _check_audio_entries(raw_audio: Any, root: Path, add: Callable[[str | None, str], None]) -> None:
    """File checks for each well-formed `audio` entry (the schema reports the malformed ones)."""
    if not isinstance(raw_audio, list):
        return
    voices: dict[str, int] = {}
    for index, entry in enumerate(raw_audio):
        if not isinstance(entry, dict):
            continue
        where = f"audio[{index}]"
        voice, path, sha = entry.get("voice"), entry.get("path"), entry.get("sha256")
        if isinstance(voice, str) and voice:
            if voice in voices:
                add(f"{where}.voice", f"duplicate voice {voice!r} (first in audio[{voices[voice]}])")
            else:
                voices[voice] = index
        if isinstance(sha, str) and not SHA256_PATTERN.match(sha):
            add(f"{where}.sha256", "must be 64 lowercase hex digits")
            sha = None
        if not isinstance(path, str):
            continue
        problem, actual = check_audio(root, path)
        if problem:
            add(f"{where}.path", problem)
        elif isinstance(sha, str) and sha != actual:
            add(f"{where}.sha256", f"sha256 mismatch for {path}: file has {actual}")
