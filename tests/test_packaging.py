"""What LangGraph Studio and a wheel install rely on: langgraph.json entries and bundled data."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from langgraph.graph.state import CompiledStateGraph

ROOT = Path(__file__).resolve().parents[1]


def graph_entries() -> dict[str, str]:
    return json.loads((ROOT / "langgraph.json").read_text())["graphs"]


@pytest.mark.parametrize("name", sorted(graph_entries()))
def test_langgraph_json_points_at_compiled_graphs(name: str) -> None:
    path, attribute = graph_entries()[name].split(":")
    module = importlib.import_module(Path(path).with_suffix("").as_posix().lstrip("./").replace("/", "."))
    assert isinstance(getattr(module, attribute), CompiledStateGraph)


def test_wheel_carries_agents_prompts_and_sample(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("safebench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "safebench/_bundled/agents/jury/foreperson.yaml",
        "safebench/_bundled/agents/jury/jurors/wise_elder.yaml",
        "safebench/_bundled/prompts/jury/assess.j2",
        "safebench/data/taxonomy.yaml",
        "safebench/data/sample/items.jsonl",
        "graphs/jury.py",
    }
    assert expected <= names
    assert any(n.startswith("safebench/data/sample/images/") and n.endswith(".png") for n in names)


async def test_studio_runs_the_evaluation_graph_without_a_context(tmp_path: Path) -> None:
    """LangGraph Studio invokes module-level graphs with no context: they fall back to the bundled cards."""
    from graphs.evaluation import graph
    from safebench.dataset import load_dataset
    from safebench.resources import sample_dataset_dir
    from safebench.runner import build_case

    dataset = load_dataset(sample_dataset_dir())
    item = dataset.items[0]
    state = await graph.ainvoke({"item": item.model_dump(), "case": build_case(item, dataset)})
    assert state["response"].startswith("[scripted stand-in]")
    assert state["verdict"]["status"] == "decided"
