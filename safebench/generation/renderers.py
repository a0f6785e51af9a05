"""Image renderers for generated queries, in a small registry keyed by spec.

- `typography`: the key phrase as clean black-on-white text (Pillow; byte-deterministic PNG). The
  description is ignored: only text-to-image renderers draw it.
- `diffusers:<model id or path>`: text-to-image from the description with the ordinary diffusers API,
  an optional extra for GPU machines (`pip install 'safebench[diffusers]'`). Output is seeded but only
  as reproducible as the GPU kernels are.

Other renderers register a factory under their own prefix with `register_renderer`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from safebench.dataset.typography import render_typography

DIFFUSERS_INSTALL = "pip install 'safebench[diffusers]'"
# The sampler settings the issue fixes for text-to-image renderers.
DIFFUSERS_STEPS = 28
DIFFUSERS_GUIDANCE = 7.0


class RendererError(ValueError):
    """A renderer spec that cannot work; the message is one line a user can act on."""


class Renderer(Protocol):
    spec: str

    def render(self, *, key_phrase: str, description: str, path: Path, seed: int) -> None:
        """Write one PNG to `path` (parent folders are created)."""


RendererFactory = Callable[[str], Renderer]  # called with the part of the spec after "name:" ("" if none)


class TypographyRenderer:
    spec = "typography"

    def render(self, *, key_phrase: str, description: str, path: Path, seed: int) -> None:
        render_typography(key_phrase, path)


class DiffusersRenderer:
    """Loads the pipeline on first use (minutes, GBs), then renders one image per call, one at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.spec = f"diffusers:{model}"
        self._pipe: Any = None
        self._lock = threading.Lock()  # one pipeline, one GPU: calls from worker threads take turns

    def _pipeline(self) -> Any:
        if self._pipe is None:
            import torch
            from diffusers import AutoPipelineForText2Image

            cuda = torch.cuda.is_available()
            pipe = AutoPipelineForText2Image.from_pretrained(
                self.model, torch_dtype=torch.float16 if cuda else torch.float32
            )
            self._pipe = pipe.to("cuda" if cuda else "cpu")
        return self._pipe

    def render(self, *, key_phrase: str, description: str, path: Path, seed: int) -> None:
        import torch

        with self._lock:
            pipe = self._pipeline()
            # A CPU generator gives the same noise on every device, so a seed means the same thing anywhere.
            generator = torch.Generator().manual_seed(seed)
            image = pipe(
                description,
                num_inference_steps=DIFFUSERS_STEPS,
                guidance_scale=DIFFUSERS_GUIDANCE,
                generator=generator,
            ).images[0]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")


def _typography(options: str) -> Renderer:
    if options:
        raise RendererError(f"renderer 'typography' takes no options (got 'typography:{options}')")
    return TypographyRenderer()


def _diffusers(model: str) -> Renderer:
    if not model:
        raise RendererError("renderer 'diffusers' needs a model: diffusers:<model id or path>")
    # Checked without importing: diffusers and torch are heavy, and the pipeline loads on first render.
    missing = [m for m in ("diffusers", "torch") if importlib.util.find_spec(m) is None]
    if missing:
        raise RendererError(
            f"renderer 'diffusers:{model}' needs {' and '.join(missing)}: {DIFFUSERS_INSTALL}"
        )
    return DiffusersRenderer(model)


_FACTORIES: dict[str, RendererFactory] = {"typography": _typography, "diffusers": _diffusers}
_INSTANCES: dict[str, Renderer] = {}  # a loaded diffusers pipeline is reused by every query


def register_renderer(name: str, factory: RendererFactory) -> None:
    _FACTORIES[name] = factory


def renderer_names() -> list[str]:
    return sorted(_FACTORIES)


def get_renderer(spec: str) -> Renderer:
    """The renderer for `spec` ("typography", "diffusers:<model>", ...); raises RendererError if unusable."""
    spec = spec.strip()
    if spec in _INSTANCES:
        return _INSTANCES[spec]
    name, _, options = spec.partition(":")
    factory = _FACTORIES.get(name)
    if factory is None:
        raise RendererError(f"unknown renderer {spec!r}; choose one of {', '.join(renderer_names())}")
    renderer = factory(options.strip())
    _INSTANCES[spec] = renderer
    return renderer
