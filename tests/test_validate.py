"""validate_dataset: every kind of problem, each located by file, line and field."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safebench.dataset.validate import DatasetInvalid, Problem, format_problems, validate_dataset
from safebench.resources import default_taxonomy_path


def _png(path: Path, color: str = "black") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path, format="PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _item(n: int, **changes: Any) -> dict[str, Any]:
    item = {"id": f"item-{n}", "scenario": "medical_advice", "category": "consultation", "text": "Q?"}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not _DROP}


_DROP = object()


def _write_items(root: Path, rows: list[Any]) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (root / "items.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    """A valid dataset: default taxonomy, one item with an image, one without."""
    root = tmp_path / "ds"
    root.mkdir()
    shutil.copyfile(default_taxonomy_path(), root / "taxonomy.yaml")
    sha = _png(root / "images" / "a.png")
    _write_items(root, [_item(1, image="images/a.png", image_sha256=sha), _item(2)])
    return root


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, format_problems(problems)
    return problems[0]


def test_valid_dataset_has_no_problems(ds: Path) -> None:
    assert validate_dataset(ds) == []


def test_problem_str_names_file_line_and_field() -> None:
    assert str(Problem("items.jsonl", 12, "scenario", "unknown scenario id 'foo'")) == (
        "items.jsonl:12: scenario: unknown scenario id 'foo'"
    )
    assert str(Problem("taxonomy.yaml", None, None, "file not found")) == "taxonomy.yaml: file not found"
    assert str(Problem("items.jsonl", 3, None, "bad JSON")) == "items.jsonl:3: bad JSON"


def test_dataset_invalid_lists_every_problem() -> None:
    problems = [Problem("items.jsonl", 1, "id", "one"), Problem("items.jsonl", 2, "text", "two")]
    error = DatasetInvalid(problems, "somewhere")
    assert error.problems == problems
    assert "items.jsonl:1: id: one" in str(error) and "items.jsonl:2: text: two" in str(error)
    assert "somewhere" in str(error) and "2 problem" in str(error)


# ---------------------------------------------------------------------------------------------- folder


def test_missing_folder(tmp_path: Path) -> None:
    problem = _only(validate_dataset(tmp_path / "nope"))
    assert problem.file.endswith("nope") and "not found" in problem.message


def test_folder_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "not a folder" in _only(validate_dataset(tmp_path / "f")).message


def test_missing_items_and_taxonomy_both_reported(tmp_path: Path) -> None:
    problems = validate_dataset(tmp_path)
    assert {(p.file, p.message) for p in problems} == {
        ("items.jsonl", "file not found"),
        ("taxonomy.yaml", "file not found"),
    }


# ---------------------------------------------------------------------------------------------- taxonomy


def test_taxonomy_bad_yaml_has_line(ds: Path) -> None:
    (ds / "taxonomy.yaml").write_text("name: x\ncategories:\n  - id: a\n    name: [unclosed\n")
    problem = _only([p for p in validate_dataset(ds) if p.file == "taxonomy.yaml"])
    assert problem.message.startswith("bad YAML") and problem.line is not None and problem.line >= 4


def test_taxonomy_empty_and_not_a_mapping(ds: Path) -> None:
    (ds / "taxonomy.yaml").write_text("")
    assert _only([p for p in validate_dataset(ds) if p.file == "taxonomy.yaml"]).message == "empty file"
    (ds / "taxonomy.yaml").write_text("- a\n- b\n")
    assert "mapping" in _only([p for p in validate_dataset(ds) if p.file == "taxonomy.yaml"]).message


TAXONOMY = """\
name: t
categories:
  - id: c1
    name: C one
    abbr: C1
    definition: first
    scenarios:
      - id: s1
        name: S one
        abbr: S1
        definition: first scenario
      - id: s2
        name: S two
        abbr: S2
        definition: second scenario
"""


def test_taxonomy_schema_errors_have_field_paths_and_lines(ds: Path) -> None:
    text = TAXONOMY.replace("definition: second scenario", 'definition: ""').replace("id: s1", "id: Bad Id")
    text += "  - id: c2\n    name: C two\n    abbr: C2\n    colour: red\n    scenarios: []\n"
    (ds / "taxonomy.yaml").write_text(text)
    found = {(p.field, p.line, p.message) for p in validate_dataset(ds) if p.file == "taxonomy.yaml"}
    assert ("categories[0].scenarios[1].definition", 15, "must not be empty") in found
    assert any(f == "categories[0].scenarios[0].id" and line == 8 for f, line, _ in found)
    assert ("categories[1].colour", 19, "unknown field") in found
    assert ("categories[1].definition", 16, "missing required field") in found
    assert any(f == "categories[1].scenarios" and line == 20 for f, line, _ in found)  # empty list


def test_taxonomy_duplicates_and_blank_text(ds: Path) -> None:
    text = TAXONOMY.replace("id: s2", "id: s1").replace("abbr: S2", "abbr: S1")
    text = text.replace("definition: first scenario", "definition: '   '")
    text += (
        TAXONOMY.split("categories:\n", 1)[1]
        .replace("s1", "s3")
        .replace("s2", "s4")
        .replace("S1", "S3")
        .replace("S2", "S4")
    )
    (ds / "taxonomy.yaml").write_text(text)
    found = {(p.field, p.line, p.message) for p in validate_dataset(ds) if p.file == "taxonomy.yaml"}
    assert (
        "categories[0].scenarios[1].id",
        12,
        "duplicate scenario id 's1' (first at categories[0].scenarios[0].id)",
    ) in found
    assert (
        "categories[0].scenarios[1].abbr",
        14,
        "duplicate scenario abbr 'S1' (first at categories[0].scenarios[0].abbr)",
    ) in found
    assert ("categories[0].scenarios[0].definition", 11, "must not be blank") in found
    assert ("categories[1].id", 16, "duplicate category id 'c1' (first at categories[0].id)") in found
    assert ("categories[1].abbr", 18, "duplicate category abbr 'C1' (first at categories[0].abbr)") in found


def test_broken_taxonomy_still_checks_items(ds: Path) -> None:
    (ds / "taxonomy.yaml").write_text("name: [\n")
    _write_items(ds, ["not json"])
    files = {p.file for p in validate_dataset(ds)}
    assert files == {"taxonomy.yaml", "items.jsonl"}


# ---------------------------------------------------------------------------------------------- items


def test_bad_json_and_not_an_object(ds: Path) -> None:
    _write_items(ds, [_item(1), "{not json", "[1, 2]", _item(4)])
    problems = validate_dataset(ds)
    assert [(p.line, p.field) for p in problems] == [(2, None), (3, None)]
    assert problems[0].message.startswith("bad JSON") and "array" in problems[1].message


def test_missing_wrong_type_and_unknown_fields(ds: Path) -> None:
    _write_items(ds, [_item(1, text=_DROP, id=7, colour="red", metadata=[1])])
    found = {(p.line, p.field, p.message) for p in validate_dataset(ds)}
    assert (1, "text", "missing required field") in found
    assert (1, "colour", "unknown field") in found
    assert any(line == 1 and field == "id" for line, field, _ in found)
    assert any(line == 1 and field == "metadata" for line, field, _ in found)


def test_empty_text_is_a_problem(ds: Path) -> None:
    _write_items(ds, [_item(1, text="")])
    assert _only(validate_dataset(ds)) == Problem("items.jsonl", 1, "text", "must not be empty")


def test_unknown_scenario(ds: Path) -> None:
    _write_items(ds, [_item(1), _item(2, scenario="foo")])
    assert str(_only(validate_dataset(ds))) == "items.jsonl:2: scenario: unknown scenario id 'foo'"


def test_category_must_match_scenario(ds: Path) -> None:
    _write_items(ds, [_item(1, category="ethics")])
    problem = _only(validate_dataset(ds))
    assert (problem.line, problem.field) == (1, "category") and "'consultation'" in problem.message


def test_duplicate_id_names_first_line(ds: Path) -> None:
    _write_items(ds, [_item(1), _item(2), _item(1)])
    problem = _only(validate_dataset(ds))
    assert (problem.line, problem.field) == (3, "id") and "first on line 1" in problem.message


def test_blank_lines_keep_line_numbers(ds: Path) -> None:
    (ds / "items.jsonl").write_text(
        json.dumps(_item(1)) + "\n\n" + json.dumps(_item(3, scenario="foo")) + "\n"
    )
    assert _only(validate_dataset(ds)).line == 3


def test_empty_items_file(ds: Path) -> None:
    (ds / "items.jsonl").write_text("\n  \n")
    assert _only(validate_dataset(ds)) == Problem("items.jsonl", None, None, "empty file: no items")


def test_items_not_utf8(ds: Path) -> None:
    (ds / "items.jsonl").write_bytes(json.dumps(_item(1)).encode() + b"\n\xff\xfe\n")
    problem = _only(validate_dataset(ds))
    assert problem.line == 2 and "UTF-8" in problem.message


# ---------------------------------------------------------------------------------------------- images


def _image_problem(ds: Path, image: str, sha: str | None = "0" * 64) -> Problem:
    _write_items(ds, [_item(1, image=image, image_sha256=sha)])
    return _only(validate_dataset(ds))


def test_absolute_image_path(ds: Path) -> None:
    problem = _image_problem(ds, str((ds / "images" / "a.png").resolve()))
    assert (problem.line, problem.field) == (1, "image") and "absolute" in problem.message


def test_image_path_with_dotdot(ds: Path) -> None:
    _png(ds.parent / "outside.png")
    problem = _image_problem(ds, "../outside.png")
    assert problem.field == "image" and "'..'" in problem.message


def test_image_symlink_escaping_folder(ds: Path) -> None:
    sha = _png(ds.parent / "outside.png")
    (ds / "images" / "link.png").symlink_to(ds.parent / "outside.png")
    problem = _image_problem(ds, "images/link.png", sha)
    assert problem.field == "image" and "outside the dataset folder" in problem.message


def test_symlink_inside_folder_is_fine(ds: Path) -> None:
    sha = _png(ds / "images" / "b.png")
    (ds / "images" / "link.png").symlink_to(ds / "images" / "b.png")
    _write_items(ds, [_item(1, image="images/link.png", image_sha256=sha)])
    assert validate_dataset(ds) == []


def test_missing_image(ds: Path) -> None:
    problem = _image_problem(ds, "images/nope.png")
    assert problem.field == "image" and "not found" in problem.message


def test_image_is_a_directory(ds: Path) -> None:
    assert "not a regular file" in _image_problem(ds, "images").message


def test_unreadable_image(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # root can read any file, so refuse the read itself for this one path
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "a.png":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    problem = _image_problem(ds, "images/a.png")
    assert (
        problem.field == "image"
        and "cannot read" in problem.message
        and "Permission denied" in problem.message
    )


def test_corrupt_image(ds: Path) -> None:
    (ds / "images" / "bad.png").write_bytes(b"this is not a png at all")
    problem = _image_problem(ds, "images/bad.png")
    assert problem.field == "image" and "corrupt" in problem.message


def test_truncated_image(ds: Path) -> None:
    big = ds / "images" / "big.png"
    Image.effect_noise((200, 200), 64).save(big, format="PNG")
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    assert "corrupt" in _image_problem(ds, "images/big.png").message


def test_sha_mismatch(ds: Path) -> None:
    problem = _image_problem(ds, "images/a.png", "1" * 64)
    assert problem.field == "image_sha256" and "mismatch" in problem.message


def test_sha_missing_for_image(ds: Path) -> None:
    problem = _image_problem(ds, "images/a.png", None)
    assert problem.field == "image_sha256" and "missing" in problem.message


def test_sha_malformed(ds: Path) -> None:
    problem = _image_problem(ds, "images/a.png", "ABC")
    assert problem.field == "image_sha256" and "hex" in problem.message


def test_sha_without_image(ds: Path) -> None:
    _write_items(ds, [_item(1, image_sha256="0" * 64)])
    assert _only(validate_dataset(ds)).field == "image_sha256"


def test_backslash_and_empty_image_paths(ds: Path) -> None:
    assert "forward slashes" in _image_problem(ds, "images\\a.png").message
    assert "empty image path" in _image_problem(ds, "").message


def test_every_problem_reported_at_once(ds: Path) -> None:
    _write_items(
        ds,
        [
            _item(1, scenario="foo"),
            "oops",
            _item(3, image="images/missing.png", image_sha256="0" * 64),
            _item(1),
            _item(5, text=_DROP),
        ],
    )
    problems = validate_dataset(ds)
    assert [(p.line, p.field) for p in problems] == [
        (1, "scenario"),
        (2, None),
        (3, "image"),
        (4, "id"),
        (5, "text"),
    ]
