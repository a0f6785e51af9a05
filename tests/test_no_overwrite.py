"""Nothing a user made is overwritten without --overwrite: taxonomy files, finished datasets, imports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from safebench.cli import app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_taxonomy_refuses_an_existing_file_without_overwrite(tmp_path: Path) -> None:
    edited = tmp_path / "taxonomy.yaml"
    edited.write_text("# hand-edited\n")
    result = invoke("taxonomy", "--out", str(edited), "--quiet")
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert edited.read_text() == "# hand-edited\n"
    replaced = invoke("taxonomy", "--out", str(edited), "--quiet", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert "categories" in edited.read_text()


def test_generate_refuses_a_finished_dataset_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "items.jsonl").write_text(json.dumps({"id": "mine"}) + "\n")
    result = invoke("generate", "--out", str(out), "--scenario", "bias", "--voices", "none", "--quiet")
    assert result.exit_code == 2 and "already holds a dataset" in result.output
    assert (out / "items.jsonl").read_text() == json.dumps({"id": "mine"}) + "\n"


def test_import_says_which_flag_replaces_an_earlier_import(tmp_path: Path) -> None:
    source = tmp_path / "other.csv"
    source.write_text("prompt,risk\nWhat is [withheld]?,Bias\n")
    out = tmp_path / "imported"
    args = ("import", str(source), "--map", "text=prompt,scenario=risk", "--out", str(out))
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert invoke(*args, "--overwrite").exit_code == 0
