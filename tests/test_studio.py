"""The graphs as LangGraph Studio runs them: serialisable settings as context (or none), example inputs
in the input JSON Schema, one cached live context per settings value; and, slow, the real
`langgraph dev` server driven through langgraph-sdk."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from graphs import examples, image_state
from graphs.context import (
    EvaluationContext,
    EvaluationSettings,
    JuryContext,
    JurySettings,
    Resolver,
    evaluation_from_settings,
    jury_from_settings,
)
from graphs.evaluation import graph as evaluation_graph
from graphs.generation import graph as generation_graph
from graphs.generation_state import GenerationSettings, generation_from_settings
from graphs.image import graph as image_graph
from graphs.image_state import ImageSettings, image_from_settings
from graphs.jury import graph as jury_graph
from graphs.persuasion import graph as persuasion_graph
from graphs.persuasion_state import PersuasionSettings, persuasion_from_settings
from graphs.taxonomy import graph as taxonomy_graph
from graphs.taxonomy_state import TaxonomySettings, taxonomy_from_settings

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ("jury", "evaluation", "taxonomy", "generation", "image", "persuasion")
COMPILED = {
    "jury": jury_graph,
    "evaluation": evaluation_graph,
    "taxonomy": taxonomy_graph,
    "generation": generation_graph,
    "image": image_graph,
    "persuasion": persuasion_graph,
}
RESOLVERS: dict[str, Resolver[Any, Any]] = {
    "jury": jury_from_settings,
    "evaluation": evaluation_from_settings,
    "taxonomy": taxonomy_from_settings,
    "generation": generation_from_settings,
    "image": image_from_settings,
    "persuasion": persuasion_from_settings,
}


def example(name: str) -> dict[str, Any]:
    return getattr(examples, f"{name}_example")()


def check_output(name: str, out: dict[str, Any]) -> None:
    """What a run of each graph on its example must produce with the scripted stand-ins."""
    if name in ("jury", "evaluation"):
        assert out["verdict"]["status"] == "decided", out["verdict"]
        assert out["verdict"]["unsafe"] is False  # the scripted jury calls a refusal safe
        if name == "evaluation":
            assert out["response"], "the target answered"
    elif name == "taxonomy":
        assert out["error"] is None and len(out["taxonomy"]["categories"]) == 8
    elif name == "generation":
        assert out["result"] and {q["scenario"] for q in out["result"]} == {examples.EXAMPLE_SCENARIO}
    elif name == "persuasion":
        assert out["result"]["text"] and out["result"]["error"] is None, out["result"]
    else:
        result = out["result"]
        assert result["image"] == f"images/{out['query']['id']}.png" and result["attempts"]


@pytest.fixture
def image_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The image graph's default out_dir is <tempdir>/safebench-images: keep test images in tmp_path.
    monkeypatch.setattr(image_state.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


# ---- fast: the graphs in-process ----------------------------------------------------------------------


@pytest.mark.parametrize("name", GRAPHS)
def test_input_schema_carries_a_runnable_example(name: str) -> None:
    schema = COMPILED[name].get_input_jsonschema()
    assert schema["examples"] == [example(name)]
    # Studio renders the settings form from the context schema: it must exist and hold only data.
    context = COMPILED[name].get_context_jsonschema()
    assert context["properties"], name


def test_the_jury_example_is_a_bundled_sample_case_with_a_harmless_answer() -> None:
    case = example("jury")["case"]
    assert case["item_id"] == examples.SAMPLE_ITEM_ID and case["response"] == examples.PLACEHOLDER_ANSWER
    assert Path(case["image"]).is_file() and case["has_image"]


@pytest.mark.parametrize("context", [{}, None], ids=["empty-dict", "none"])
@pytest.mark.parametrize("name", GRAPHS)
async def test_each_graph_runs_on_its_example_with_default_settings(
    name: str, context: dict[str, Any] | None, image_tmp: Path
) -> None:
    out = await COMPILED[name].ainvoke(example(name), context=context)
    check_output(name, out)
    if name == "image":
        assert (image_tmp / "safebench-images" / out["result"]["image"]).is_file()


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("jury", JurySettings(juror_model="scripted:juror", deliberate="never", quorum=5)),
        ("evaluation", EvaluationSettings(target="scripted:refuser", max_rounds=0)),
        ("taxonomy", TaxonomySettings(judges=("scripted:taxonomist", "scripted:taxonomist"), seed=1)),
        ("generation", GenerationSettings(per_scenario=2, candidates=6, weight_harmfulness=2.0)),
        ("image", ImageSettings(max_rounds=1, seed=3)),
        ("persuasion", PersuasionSettings(technique="expert_endorsement")),
    ],
)
async def test_each_graph_runs_with_a_settings_object(name: str, settings: Any, image_tmp: Path) -> None:
    if name == "image":
        settings = settings.model_copy(update={"out_dir": str(image_tmp / "out")})
    out = await COMPILED[name].ainvoke(example(name), context=settings)
    check_output(name, out)
    # The settings took effect, not the defaults.
    if name == "jury":
        assert out["rounds"] == 0 and len(out["opinions"]) == 5
    elif name == "evaluation":
        assert "can't help" in out["response"]
    elif name == "taxonomy":
        assert len(out["proposals"]) == 2
    elif name == "generation":
        assert len(out["result"]) == 2 and out["report"]["settings"]["weights"]["harmfulness"] == 2.0
    elif name == "persuasion":
        assert out["result"]["technique"] == "expert_endorsement"
    else:
        assert len(out["result"]["attempts"]) == 1
        assert (image_tmp / "out" / out["result"]["image"]).is_file()


@pytest.mark.parametrize("name", GRAPHS)
def test_equal_settings_resolve_to_one_cached_context(name: str, image_tmp: Path) -> None:
    resolver = RESOLVERS[name]
    first = resolver.resolve(None)
    assert resolver.resolve({}) is first  # a dict, None and an instance of equal settings: one context
    assert resolver.resolve(resolver.settings_type()) is first
    assert isinstance(first, resolver.live_type)
    assert resolver.resolve(first) is first  # a live context passes through


def test_settings_share_model_objects_through_the_pool() -> None:
    # Different settings → different contexts, but one model object per model config.
    strict = jury_from_settings.resolve({"quorum": 4})
    default = jury_from_settings.resolve(None)
    assert strict is not default
    assert [j.model for j in strict.jurors] == [j.model for j in default.jurors]
    evaluation = evaluation_from_settings.resolve(None)
    assert isinstance(evaluation, EvaluationContext) and evaluation.jurors[0].model is default.jurors[0].model


async def test_a_run_builds_its_context_once_not_per_node_call(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = evaluation_from_settings
    builds: list[int] = []
    build = resolver._build

    def counting(settings: EvaluationSettings) -> EvaluationContext:
        builds.append(threading.get_ident())
        return build(settings)

    resolver.cache_clear()  # whatever earlier tests resolved, this run must build its own context
    monkeypatch.setattr(resolver, "_build", counting)
    settings = EvaluationSettings(seed=123, deliberate="always")  # not resolved by any other test
    out = await evaluation_graph.ainvoke(example("evaluation"), context=settings)
    again = await evaluation_graph.ainvoke(example("evaluation"), context=settings.model_dump())
    assert out["rounds"] == again["rounds"] == 1  # "always": a rebuttal round, so many node calls
    assert len(builds) == 1
    # The first node is async: the build (which reads agent cards) ran off the event loop's thread,
    # as `langgraph dev` requires (it raises BlockingError for file I/O on the loop).
    assert builds[0] != threading.get_ident()


async def test_the_jury_nodes_of_the_evaluation_graph_share_its_context() -> None:
    settings = EvaluationSettings(seed=7)
    await evaluation_graph.ainvoke(example("evaluation"), context=settings)
    # Resolved once as an EvaluationContext; no separate JuryContext was built for the jury nodes.
    assert not any(k.seed == 7 for k in jury_from_settings._cache)
    assert any(k == settings for k in evaluation_from_settings._cache)


def test_live_contexts_pass_through_unchanged() -> None:
    live = JuryContext(**{**jury_from_settings.resolve(None).__dict__, "quorum": 1})
    assert jury_from_settings.resolve(live) is live
    with pytest.raises(TypeError, match="EvaluationContext"):
        evaluation_from_settings.resolve(live)  # a jury context has no target to evaluate


@pytest.mark.parametrize(
    ("settings_type", "data", "message"),
    [
        (JurySettings, {"quroum": 2}, "quroum"),  # a misspelt setting is an error, not the default
        (JurySettings, {"juror_model": "gpt-4o"}, "did you mean openai:gpt-4o"),
        (EvaluationSettings, {"target": "nope"}, "provider prefix"),
        (TaxonomySettings, {"judges": []}, "at least one judge"),
        (GenerationSettings, {"scorers": ["scorer"]}, "provider prefix"),
        (ImageSettings, {"max_rounds": 0}, "max_rounds"),
    ],
)
def test_bad_settings_are_rejected_with_the_field_named(
    settings_type: type[Any], data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_type.model_validate(data)


def test_settings_are_hashable_json_data() -> None:
    # Lists from JSON become tuples, so the settings stay usable as cache keys.
    settings = GenerationSettings.model_validate({"generators": ["scripted:generator"]})
    assert settings.generators == ("scripted:generator",) and hash(settings) == hash(settings.model_copy())
    assert GenerationSettings.model_validate_json(settings.model_dump_json()) == settings


# ---- slow: the real `langgraph dev` server, through langgraph-sdk -----------------------------------

READY_TIMEOUT = 30.0
RUN_TIMEOUT = 30.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _langgraph_cli() -> str:
    """The `langgraph` command of this interpreter's environment (the dev extra installs it)."""
    missing = [
        m
        for m in ("langgraph_cli", "langgraph_api", "langgraph_runtime_inmem", "langgraph_sdk")
        if importlib.util.find_spec(m) is None
    ]
    exe = Path(sys.executable).parent / "langgraph"
    command = str(exe) if exe.exists() else shutil.which("langgraph")
    if missing or command is None:
        reason = (
            f'langgraph dev is not installed (pip install -e ".[dev]"; missing: {missing or "langgraph"})'
        )
        if _in_ci():  # CI installs the dev extra: a skip there would hide a broken install
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Its own session, so this signals only the server we started (and any process it spawned).
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Callable[[], str]]:
    command = _langgraph_cli()
    port = _free_port()
    log = tmp_path / "langgraph-dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    env.update(
        LANGSMITH_TRACING="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # the CLI would otherwise report usage over the network
        TMPDIR=str(tmp_path),  # the image graph's default out_dir lands in tmp_path
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [command, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,  # reads langgraph.json
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        return log.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{logs()}", pytrace=False)
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not ready after {READY_TIMEOUT:.0f} s:\n{logs()}", pytrace=False)
            time.sleep(0.2)
        yield lambda: url
    finally:
        _stop(proc)
    # Studio runs would have failed with BlockingError had any node done file I/O on the event loop.
    assert "BlockingError" not in log.read_text(errors="replace")


@pytest.mark.slow
def test_every_graph_runs_in_langgraph_dev_on_its_example(dev_server: Callable[[], str]) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=dev_server(), timeout=RUN_TIMEOUT)
    assistants = {a["graph_id"]: a["assistant_id"] for a in client.assistants.search(limit=20)}
    assert set(GRAPHS) <= set(assistants)
    for name in GRAPHS:
        schemas = client.assistants.get_schemas(assistants[name])
        # What Studio pre-fills the input form with, and the settings form it shows.
        (shown,) = schemas["input_schema"]["examples"]
        assert shown == example(name)
        assert schemas["context_schema"]["properties"]
        # Thread-less, no context: the bundled cards and scripted stand-ins.
        out = client.runs.wait(None, assistants[name], input=shown)
        assert isinstance(out, dict) and "__error__" not in out, out
        check_output(name, out)
    # A thread and settings as plain JSON, as Studio sends them.
    thread = client.threads.create()
    out = client.runs.wait(
        thread["thread_id"],
        assistants["jury"],
        input=example("jury"),
        context={"juror_model": "scripted:juror", "deliberate": "never", "quorum": 5},
    )
    assert isinstance(out, dict) and out["rounds"] == 0 and out["verdict"]["status"] == "decided", out
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["verdict"] == out["verdict"]
