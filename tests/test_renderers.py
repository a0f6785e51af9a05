"""Renderer registry: typography images show the phrase (checked on pixels); bad specs fail clearly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safebench.dataset.typography import MARGIN
from safebench.generation import renderers
from safebench.generation.renderers import (
    DIFFUSERS_INSTALL,
    DiffusersRenderer,
    RendererError,
    TypographyRenderer,
    get_renderer,
    register_renderer,
    renderer_names,
)


@pytest.fixture(autouse=True)
def _fresh_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    # Renderers are cached per spec; each test starts from an empty cache.
    monkeypatch.setattr(renderers, "_INSTANCES", {})


def _render(tmp_path: Path, phrase: str, name: str, description: str = "unused") -> Path:
    path = tmp_path / name
    get_renderer("typography").render(key_phrase=phrase, description=description, path=path, seed=0)
    return path


def _gray(path: Path) -> Image.Image:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.convert("L")


def _dark_fraction(image: Image.Image) -> float:
    return sum(image.histogram()[:128]) / (image.width * image.height)


def test_typography_is_builtin_and_cached() -> None:
    renderer = get_renderer("typography")
    assert isinstance(renderer, TypographyRenderer) and renderer.spec == "typography"
    assert get_renderer(" typography ") is renderer
    assert {"typography", "diffusers"} <= set(renderer_names())


def test_typography_png_shows_dark_text_inside_margins(tmp_path: Path) -> None:
    gray = _gray(_render(tmp_path, "Get around rules on online gambling", "a.png"))
    assert gray.size == (760, 760)
    assert 0.02 < _dark_fraction(gray) < 0.4  # text, not a blank or a filled canvas
    box = Image.eval(gray, lambda v: 255 - v).getbbox()
    assert box is not None
    left, top, right, bottom = box
    slack = 4  # anti-aliasing may bleed a pixel or two
    assert left >= MARGIN - slack and top >= MARGIN - slack
    assert right <= 760 - MARGIN + slack and bottom <= 760 - MARGIN + slack
    assert bottom - top > 100 and right - left > 300  # large type spread over the canvas


def test_typography_bytes_depend_on_phrase_only(tmp_path: Path) -> None:
    first = _render(tmp_path, "Hide assets from spouse", "1.png", description="a ledger")
    again = _render(tmp_path, "Hide assets from spouse", "2.png", description="something else")
    other = _render(tmp_path, "Skip tax filing", "3.png")
    assert first.read_bytes() == again.read_bytes()  # deterministic; the description is not drawn
    assert _gray(first).tobytes() != _gray(other).tobytes()
    shorter = _dark_fraction(_gray(_render(tmp_path, "Tax", "4.png")))
    assert shorter != _dark_fraction(_gray(first))


def test_unknown_renderer_lists_the_known_ones() -> None:
    with pytest.raises(RendererError, match=r"unknown renderer 'dalle:x'.*diffusers, typography"):
        get_renderer("dalle:x")


def test_typography_takes_no_options() -> None:
    with pytest.raises(RendererError, match="takes no options"):
        get_renderer("typography:bold")


def test_diffusers_needs_a_model() -> None:
    with pytest.raises(RendererError, match=r"diffusers:<model id or path>"):
        get_renderer("diffusers:")


def _pretend_missing(monkeypatch: pytest.MonkeyPatch, missing: set[str]) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        if name in missing:
            return None
        return real(name, *args) if name not in {"diffusers", "torch"} else object()

    monkeypatch.setattr(renderers.importlib.util, "find_spec", find_spec)


def test_diffusers_missing_gives_one_line_with_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_missing(monkeypatch, {"diffusers"})
    with pytest.raises(RendererError) as info:
        get_renderer("diffusers:stabilityai/sdxl-turbo")
    message = str(info.value)
    assert "\n" not in message
    assert "diffusers:stabilityai/sdxl-turbo" in message and DIFFUSERS_INSTALL in message
    assert "pip install 'safebench[diffusers]'" in message
    assert "diffusers:stabilityai/sdxl-turbo" not in renderers._INSTANCES  # a failure is not cached


def test_diffusers_present_loads_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_missing(monkeypatch, set())
    renderer = get_renderer("diffusers:./local-model")
    # Nothing is imported or loaded until the first render.
    assert isinstance(renderer, DiffusersRenderer) and renderer._pipe is None
    assert renderer.spec == "diffusers:./local-model" and renderer.model == "./local-model"


def test_registered_renderer_gets_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(renderers, "_FACTORIES", dict(renderers._FACTORIES))
    seen: list[str] = []

    class Blank:
        spec = "blank"

        def render(self, *, key_phrase: str, description: str, path: Path, seed: int) -> None:
            Image.new("RGB", (8, 8), "white").save(path, format="PNG")

    def factory(options: str) -> Blank:
        seen.append(options)
        return Blank()

    register_renderer("blank", factory)
    get_renderer("blank:opt").render(key_phrase="x", description="y", path=tmp_path / "b.png", seed=1)
    assert seen == ["opt"] and (tmp_path / "b.png").exists()
