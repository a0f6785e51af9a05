"""Images and recordings embedded in the page as data: URIs, each distinct file stored once.

The page must open with no network and from file://, so media cannot be linked; a 10,000-record run
sends the same image to every target, so each file is read once per path, keyed by the sha256 of its
bytes (two paths with the same content share one entry) and referenced by items through an index.
Images are downscaled thumbnails; recordings are embedded as they are, up to a total budget (a
run of spoken queries would otherwise make the page hundreds of megabytes).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

THUMBNAIL_PX = 256
JPEG_QUALITY = 80
MAX_SOURCE_BYTES = 50 * 2**20  # a file larger than this is not read (a report is no place for it)
AUDIO_BUDGET_BYTES = 64 * 2**20  # all recordings of the page together
AUDIO_MIME = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac"}


@dataclass(frozen=True)
class MediaRef:
    """What an item shows: the index of the data URI in the table, or why there is none."""

    index: int | None
    note: str | None = None


def _inside(root: Path, relative: str) -> Path | None:
    """`root/relative` if it stays inside root: paths come from results.jsonl, which is untrusted, and
    `../../` must not pull an arbitrary file of the machine into a page that may be shared."""
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError):
        return None
    return path if path.is_relative_to(root) else None


def _read(root: Path | None, relative: str) -> tuple[bytes | None, str | None]:
    if root is None:
        return None, "dataset folder not found"
    path = _inside(root, relative)
    if path is None:
        return None, "path outside the dataset folder: not embedded"
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            return None, f"file too large to embed ({size} bytes)"
        return path.read_bytes(), None
    except OSError:
        return None, "file not found"


def thumbnail(data: bytes, max_px: int = THUMBNAIL_PX) -> tuple[str, bytes]:
    """(mime type, bytes) of the image shrunk to fit max_px: JPEG, or PNG when it has transparency
    (JPEG has none; flattening could hide what was drawn in it)."""
    with warnings.catch_warnings():
        # A decompression bomb is refused (an error), not merely warned about.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (max_px, max_px))  # JPEG sources decode at reduced size: much faster
            image.load()
            # A box-filter reduce by an integer factor, then bicubic for the last (< 2x) step: as sharp
            # as a thumbnail needs, and about half the time of a Lanczos resize of the full image.
            factor = max(image.size) // max_px
            if factor > 1:
                image = image.reduce(factor)
            image.thumbnail((max_px, max_px), Image.Resampling.BICUBIC)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                image.mode == "P" and "transparency" in image.info
            )
            out = io.BytesIO()
            if has_alpha:
                image.convert("RGBA").save(out, "PNG", compress_level=6)
                return "image/png", out.getvalue()
            image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=False)
            return "image/jpeg", out.getvalue()


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class MediaTable:
    """Collects the media items refer to, then embeds each distinct file once (`uris[index]`)."""

    def __init__(
        self,
        *,
        max_px: int = THUMBNAIL_PX,
        audio_budget: int = AUDIO_BUDGET_BYTES,
        workers: int | None = None,
    ) -> None:
        self.max_px = max_px
        self.audio_budget = audio_budget
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.uris: list[str] = []
        self._by_sha: dict[str, int] = {}
        self._images: dict[tuple[Path | None, str], MediaRef] = {}
        self._audio: dict[tuple[Path | None, str], MediaRef] = {}
        self.audio_bytes = 0
        self.audio_left_out = 0  # recordings not embedded because the budget was spent
        self.image_errors = 0

    def _add(self, sha: str, uri: str) -> int:
        index = self._by_sha.get(sha)
        if index is None:
            index = self._by_sha[sha] = len(self.uris)
            self.uris.append(uri)
        return index

    def add_images(self, wanted: list[tuple[Path | None, str]]) -> None:
        """Thumbnail every distinct (dataset root, path) once, in threads (PIL releases the GIL while
        decoding and resampling; a run of thousands of images is bounded by this step)."""
        todo = [key for key in dict.fromkeys(wanted) if key not in self._images]
        if not todo:
            return

        def work(key: tuple[Path | None, str]) -> tuple[str | None, str | None, str | None]:
            data, note = _read(*key)
            if data is None:
                return None, None, note
            sha = hashlib.sha256(data).hexdigest()
            try:
                mime, small = thumbnail(data, self.max_px)
            except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
                return None, None, "not a readable image"
            return sha, data_uri(mime, small), None

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            done = list(pool.map(work, todo))
        # Indices are assigned in input order, so the same run always gives the same page.
        for key, (sha, uri, note) in zip(todo, done, strict=True):
            if sha is None or uri is None:
                self.image_errors += 1
                self._images[key] = MediaRef(None, note)
            else:
                self._images[key] = MediaRef(self._add(sha, uri))

    def image(self, root: Path | None, relative: str) -> MediaRef:
        key = (root, relative)
        if key not in self._images:
            self.add_images([key])
        return self._images[key]

    def audio(self, root: Path | None, relative: str) -> MediaRef:
        key = (root, relative)
        known = self._audio.get(key)
        if known is not None:
            return known
        data, note = _read(root, relative)
        if data is None:
            ref = MediaRef(None, note)
        else:
            sha = hashlib.sha256(data).hexdigest()
            if sha in self._by_sha:
                ref = MediaRef(self._by_sha[sha])
            elif self.audio_bytes + len(data) > self.audio_budget:
                self.audio_left_out += 1
                ref = MediaRef(None, "not embedded: the page's recording budget is spent")
            else:
                self.audio_bytes += len(data)
                mime = AUDIO_MIME.get(Path(relative).suffix.lower(), "audio/wav")
                ref = MediaRef(self._add(sha, data_uri(mime, data)))
        self._audio[key] = ref
        return ref
