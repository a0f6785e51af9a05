"""The `hf:` provider on a tiny random-weight LLaVA: real processor, real generate, no downloads."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from PIL import Image

from safebench.models import ModelConfig
from safebench.providers import hf
from safebench.providers.registry import ModelSpecError, create_chat_model, preflight
from safebench.schema import Item
from safebench.targets import create_target, target_messages

# The session-scoped `tiny_llava_path` fixture (one tiny model build per test run).
pytest_plugins = ["tests.tiny_models"]

PATCHES = 25  # (30 // 6) ** 2 image tokens per picture in the tiny LLaVA


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_block(color: tuple[int, int, int]) -> dict[str, str]:
    return {"type": "image", "base64": base64.b64encode(_png(color)).decode(), "mime_type": "image/png"}


def _ask(text: str, color: tuple[int, int, int] | None = None) -> list[BaseMessage]:
    content: list[str | dict] = [{"type": "text", "text": text}]
    if color is not None:
        content.append(_image_block(color))
    return [HumanMessage(content=content)]


def _model(path: Path, **settings: Any) -> hf.HFChatModel:
    model = create_chat_model(ModelConfig(spec=f"hf:{path}", **{"max_tokens": 8, **settings}))
    assert isinstance(model, hf.HFChatModel)
    return model


def test_module_does_not_import_torch() -> None:
    code = (
        "import sys, safebench.providers.hf; print('torch' in sys.modules or 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_target_answers_an_item_with_its_image(
    tiny_llava_path: Path, tmp_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "q1.png").write_bytes(_png((200, 30, 30)))
    item = Item(id="q1", scenario="s", category="c", text="describe the image ?", image="images/q1.png")
    target = create_target(ModelConfig(spec=f"hf:{tiny_llava_path}", max_tokens=8))

    reply = await target.respond(item, target_messages(item, tmp_path), {})

    assert isinstance(reply, AIMessage) and isinstance(reply.content, str) and reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > PATCHES and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    (call,) = generate_calls
    assert call["pixel_values"].shape == (1, 3, 30, 30)
    image_token = hf.load_model(str(tiny_llava_path)).processor.image_token_id
    assert int((call["input_ids"] == image_token).sum()) == PATCHES


def test_the_image_changes_greedy_output(tiny_llava_path: Path) -> None:
    model = _model(tiny_llava_path, max_tokens=12)
    dark = model.invoke(_ask("describe the image ?", (0, 0, 0))).content
    light = model.invoke(_ask("describe the image ?", (255, 255, 255))).content
    assert dark != light
    # Deterministic: greedy decoding of the same input gives the same answer.
    assert model.invoke(_ask("describe the image ?", (0, 0, 0))).content == dark


def test_image_url_data_uri_matches_base64_block(tiny_llava_path: Path) -> None:
    model = _model(tiny_llava_path, max_tokens=12)
    data = base64.b64encode(_png((0, 0, 0))).decode()
    as_url = [
        HumanMessage(
            content=[
                {"type": "text", "text": "describe the image ?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            ]
        )
    ]
    assert model.invoke(as_url).content == model.invoke(_ask("describe the image ?", (0, 0, 0))).content


def test_text_only_conversation_for_jurors(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    model = _model(tiny_llava_path)
    messages = [
        SystemMessage(content="answer the question"),
        HumanMessage(content="w1 w2 ?"),
        AIMessage(content="w3"),
        HumanMessage(content="w4 ?"),
    ]
    reply = model.invoke(messages)
    assert isinstance(reply.content, str) and reply.content
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    (call,) = generate_calls
    assert "pixel_values" not in call
    prompt = hf.load_model(str(tiny_llava_path)).processor.tokenizer.decode(call["input_ids"][0])
    assert "system : answer the question" in prompt and "assistant : w3" in prompt


def test_stop_sequence_cuts_the_reply(tiny_llava_path: Path) -> None:
    model = _model(tiny_llava_path, max_tokens=12)
    full = str(model.invoke(_ask("describe the image ?", (0, 0, 0))).content)
    word = full.split()[2]
    cut = model.invoke(_ask("describe the image ?", (0, 0, 0)), stop=[word]).content
    assert cut == full[: full.find(word)]


def test_unsupported_content_is_a_clear_error(tiny_llava_path: Path) -> None:
    model = _model(tiny_llava_path)
    with pytest.raises(ValueError, match="'file' content block"):
        model.invoke(
            [HumanMessage(content=[{"type": "file", "base64": "AA==", "mime_type": "application/pdf"}])]
        )
    with pytest.raises(ValueError, match="unsupported type 'tool'"):
        model.invoke([ToolMessage(content="x", tool_call_id="1")])


PROMPTS: list[tuple[str, tuple[int, int, int] | None]] = [
    ("describe the image ?", (0, 0, 0)),
    ("w1 ?", None),
    ("w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 ?", (255, 255, 255)),
    ("answer the question w20", None),
    ("w30 w31", (10, 200, 10)),
]


async def test_batched_generation_equals_one_by_one(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    one_by_one = _model(tiny_llava_path, max_tokens=10, batch_size=1)
    singles = [await one_by_one.ainvoke(_ask(text, color)) for text, color in PROMPTS]
    assert [c["input_ids"].shape[0] for c in generate_calls] == [1] * len(PROMPTS)

    batched = _model(tiny_llava_path, max_tokens=10, batch_size=8)
    generate_calls.clear()
    together = await asyncio.gather(*(batched.ainvoke(_ask(text, color)) for text, color in PROMPTS))

    assert [c["input_ids"].shape[0] for c in generate_calls] == [len(PROMPTS)]
    assert [r.content for r in together] == [r.content for r in singles]
    assert [r.usage_metadata for r in together] == [r.usage_metadata for r in singles]
    assert len({r.content for r in singles}) > 1  # the prompts really differ


async def test_rows_that_stop_early_match_their_unbatched_usage(
    tiny_llava_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make a word some prompts emit the end-of-sequence token, so only part of the batch stops early.
    loaded = hf.load_model(str(tiny_llava_path))
    monkeypatch.setattr(
        loaded.model.generation_config, "eos_token_id", loaded.processor.tokenizer.vocab["w39"]
    )
    one_by_one = _model(tiny_llava_path, max_tokens=10, batch_size=1)
    singles = [await one_by_one.ainvoke(_ask(text, color)) for text, color in PROMPTS]
    batched = _model(tiny_llava_path, max_tokens=10, batch_size=8)
    together = await asyncio.gather(*(batched.ainvoke(_ask(text, color)) for text, color in PROMPTS))

    reasons = [r.response_metadata["finish_reason"] for r in singles]
    assert "stop" in reasons and "length" in reasons
    assert [r.response_metadata["finish_reason"] for r in together] == reasons
    assert [r.usage_metadata for r in together] == [r.usage_metadata for r in singles]
    assert [r.content for r in together] == [r.content for r in singles]


async def test_requests_arriving_within_the_window_join_one_batch(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    model = _model(tiny_llava_path, batch_size=4)
    model.batch_window = 0.5

    async def staggered(i: int) -> BaseMessage:
        await asyncio.sleep(0.02 * i)
        return await model.ainvoke(_ask(f"w{i} ?"))

    await asyncio.gather(*(staggered(i) for i in range(4)))
    assert [c["input_ids"].shape[0] for c in generate_calls] == [4]


async def test_concurrent_ainvoke_share_one_generate_call(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    model = _model(tiny_llava_path, batch_size=4)
    replies = await asyncio.gather(*(model.ainvoke(_ask(f"w{i} ?", (i * 60, 0, 0))) for i in range(4)))
    assert all(r.content for r in replies)
    assert [c["input_ids"].shape[0] for c in generate_calls] == [4]
    assert generate_calls[0]["pixel_values"].shape[0] == 4


async def test_batches_never_exceed_batch_size(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    model = _model(tiny_llava_path, batch_size=2)
    await asyncio.gather(*(model.ainvoke(_ask(f"w{i} ?")) for i in range(5)))
    assert sorted(c["input_ids"].shape[0] for c in generate_calls) == [1, 2, 2]


async def test_event_loop_stays_free_while_generating(
    tiny_llava_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import LlavaForConditionalGeneration

    ticks = 0
    during: list[int] = []
    original = LlavaForConditionalGeneration.generate

    def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = ticks
        time.sleep(0.1)  # a slow model; the loop must keep ticking meanwhile
        during.append(ticks - start)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "generate", slow)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await _model(tiny_llava_path).ainvoke(_ask("w1 ?"))
    task.cancel()
    assert len(during) == 1 and during[0] > 10


def test_models_load_once_per_key_across_threads(
    tiny_llava_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf.unload_models()
    loads: list[str] = []
    original = hf._load

    def counting(*args: Any) -> hf.LoadedModel:
        loads.append(args[0])
        return original(*args)

    monkeypatch.setattr(hf, "_load", counting)
    got: list[hf.LoadedModel] = []
    threads = [
        threading.Thread(target=lambda: got.append(hf.load_model(str(tiny_llava_path)))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len({id(g) for g in got}) == 1
    assert _model(tiny_llava_path).loaded() is got[0]


@pytest.mark.parametrize("opt_in", [False, True])
def test_trust_remote_code_only_when_opted_in(
    tiny_llava_path: Path, monkeypatch: pytest.MonkeyPatch, opt_in: bool
) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    seen: dict[str, Any] = {}
    for cls in (AutoModelForImageTextToText, AutoProcessor):
        original = cls.from_pretrained.__func__  # type: ignore[attr-defined]

        def spy(
            klass: Any, *args: Any, _original: Any = original, _name: str = cls.__name__, **kwargs: Any
        ) -> Any:
            seen[_name] = kwargs
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    hf.unload_models()
    model = _model(tiny_llava_path, trust_remote_code=opt_in, dtype="float32")
    assert model.invoke(_ask("w1 ?")).content
    assert seen["AutoProcessor"]["trust_remote_code"] is opt_in
    assert seen["AutoModelForImageTextToText"]["trust_remote_code"] is opt_in
    import torch

    assert seen["AutoModelForImageTextToText"]["dtype"] is torch.float32


def test_preflight_accepts_the_tiny_model(tiny_llava_path: Path) -> None:
    preflight(ModelConfig(spec=f"hf:{tiny_llava_path}"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./no/such/model", "does not exist"),
        ("/nowhere/at-all", "does not exist"),
        ("some-org/not-cached-model", "not in the local cache"),
    ],
)
def test_preflight_rejects_missing_models(name: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message) as error:
        preflight(ModelConfig(spec=f"hf:{name}"))
    assert "\n" not in str(error.value) and name in str(error.value)


def test_preflight_rejects_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match=r"no config\.json"):
        preflight(ModelConfig(spec=f"hf:{tmp_path}"))


def test_preflight_rejects_bad_dtype(tiny_llava_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="dtype 'float8'"):
        preflight(ModelConfig(spec=f"hf:{tiny_llava_path}", dtype="float8"))


def test_preflight_without_the_hf_extra(tiny_llava_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # what an uninstalled package looks like
    with pytest.raises(
        ModelSpecError, match=r"needs transformers: pip install torch==2\.13\.0 'safebench\[hf\]'"
    ):
        preflight(ModelConfig(spec=f"hf:{tiny_llava_path}"))
