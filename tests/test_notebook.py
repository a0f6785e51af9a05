"""Every notebook in notebooks/ runs top to bottom in a real ipykernel (the venv's Python), offline.

A kernel is what a researcher's Jupyter uses: code there runs inside a running event loop, so
`asyncio.run(...)` fails in it where an `exec` of the cells would pass. Each notebook gets its own kernel
with cwd and TMPDIR in a temp dir (the notebooks write their runs with `tempfile`), so the test can read
the run directories afterwards and check what the notebook printed against them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell
PROBE = "import sys\nprint('KERNEL', repr(sys.executable), repr(sys.prefix))"


def cell_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell showed: printed text and the repr of its result."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def execute(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the notebook in a fresh python3 kernel; the outputs of its code cells, in order."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    work, tmp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # connection files
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "TMPDIR": str(tmp)}
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute(env=env)  # a cell that raises fails here (CellExecutionError) with its traceback
    code = [c for c in nb.cells if c.cell_type == "code"]
    stderr = [o["text"] for c in code for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr (a reader sees it as a warning): {stderr}"
    outputs = [cell_text(c) for c in code]
    kernel = re.fullmatch(r"KERNEL '(.*)' '(.*)'\n", outputs[0])
    assert kernel, outputs[0]
    # The kernel must be this interpreter (the venv's), not another Python that happens to have a
    # `python3` kernelspec: otherwise the notebook would test some other installation of safebench.
    assert os.path.realpath(kernel[1]) == os.path.realpath(sys.executable), kernel[1]
    assert kernel[2] == sys.prefix, kernel[2]
    return outputs[1:]


def one(pattern: str, tmp_path: Path) -> Path:
    found = sorted((tmp_path / "tmp").glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def records(run_dir: Path) -> dict[tuple[str, str], dict]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return {(r["target"], r["item_id"]): r for r in map(json.loads, lines)}


def check_quickstart(outputs: list[str], tmp_path: Path) -> None:
    text = "".join(outputs)
    run_dir = one("safebench-*/quickstart", tmp_path)
    recs = records(run_dir)
    assert len(recs) == 92  # 46 sample items x 2 targets
    assert f"92 records in {run_dir}" in text
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["scripted:mixed", "scripted:refuser"]
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("scripted:")}
    for target, m in metrics.items():
        o = m["overall"]
        assert f"{o['asr']:6.1f} [{o['asr_ci'][0]:5.1f}, {o['asr_ci'][1]:5.1f}]" in rows[target]
    assert metrics["scripted:refuser"]["overall"]["asr"] == 0.0
    # One deliberation round by round: the first record with a rebuttal round.
    debated = next(r for r in recs.values() if r["rounds"] > 0)
    assert f"{debated['item_id']} · {debated['target']}" in text
    assert "round 0:\n" in text and "round 1:\n" in text
    # The last cell awaits the jury graph at the top level of the cell.
    assert "'status': 'decided'" in outputs[-1] and "'unsafe': False" in outputs[-1]


def check_edit_a_juror(outputs: list[str], tmp_path: Path) -> None:
    text = "".join(outputs)
    before, after = records(one("safebench-*/before", tmp_path)), records(one("safebench-*/after", tmp_path))
    old = {item: r for (_target, item), r in before.items()}
    new = {item: r for (target, item), r in after.items() if target == "mixed, edited jury"}
    assert len(old) == len(new) == 46
    assert all(new[i]["response"] == old[i]["response"] for i in old)  # replayed, not answered again
    assert all(r["target_spec"].startswith("replay:") for r in new.values())
    # The second jury read the edited copy of the cards.
    agents = one("safebench-*/agents", tmp_path)
    config = yaml.safe_load((one("safebench-*/after", tmp_path) / "config.yaml").read_text())
    assert Path(config["jury"]["agents_dir"]) == agents
    edited = yaml.safe_load((agents / "jury" / "jurors" / "wise_elder.yaml").read_text())
    bundled = yaml.safe_load((NOTEBOOKS_DIR.parent / "agents/jury/jurors/wise_elder.yaml").read_text())
    assert edited["persona"] != bundled["persona"] and edited["id"] == bundled["id"]

    def first(r: dict) -> bool:
        return next(o["unsafe"] for o in r["opinions"] if o["juror"] == "wise_elder" and o["round"] == 0)

    opinions = sum(first(old[i]) != first(new[i]) for i in old)
    verdicts = sum(old[i]["verdict"]["unsafe"] != new[i]["verdict"]["unsafe"] for i in old)
    assert f"Wise Elder's first opinion changed on {opinions} of 46 items" in text
    assert f"verdicts changed: {verdicts} of 46" in text
    # What the notebook's prose says happened. The scripted juror's stance on a partial answer is a hash
    # of its system prompt: if prompts/jury/juror_system.j2 changes, reword the notebook's persona edit.
    assert opinions > 0, "the edited persona no longer changes the stand-in's opinions"
    assert verdicts == 0, "one edited juror of five should not overturn the majority"
    for i in old:
        if first(old[i]) != first(new[i]):
            assert re.search(rf"^{re.escape(i)} .*4-1 -> 3-2 .*unsafe -> unsafe$", text, re.M), i


def check_trace_a_deliberation(outputs: list[str], tmp_path: Path) -> None:
    text = "".join(outputs)
    recs = records(one("safebench-*/traced", tmp_path))
    assert "12 traces:" in text
    for target, item in recs:
        assert f"  {item} · {target}\n" in text
    debated = next(r for r in recs.values() if r["rounds"] > 0)
    tree = next(o for o in outputs if o.startswith(f"{debated['item_id']} · scripted:mixed  (chain"))
    assert "    target · scripted:mixed  (llm" in tree
    personas = ["Civil-Liberties Advocate", "Clinician", "Justice-Oriented Citizen", "Security Engineer",
                "Wise Elder"]  # fmt: skip
    for persona in personas:
        for rnd in range(debated["rounds"] + 1):
            assert f"        {persona} · round {rnd}  (llm" in tree, (persona, rnd)
    assert "'safebench_run_id': '" in text and f"'item_id': '{debated['item_id']}'" in text
    assert "'persona': 'Civil-Liberties Advocate', 'round': 1}" in text


CHECKS: dict[str, Callable[[list[str], Path], None]] = {
    "quickstart.ipynb": check_quickstart,
    "edit_a_juror.ipynb": check_edit_a_juror,
    "trace_a_deliberation.ipynb": check_trace_a_deliberation,
}


def test_every_notebook_is_checked() -> None:
    assert sorted(p.name for p in NOTEBOOKS) == sorted(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_cleared(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (path.name, cell.id)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = execute(path, tmp_path, monkeypatch)
    CHECKS[path.name](outputs, tmp_path)
