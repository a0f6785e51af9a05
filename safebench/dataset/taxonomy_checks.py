"""Checks of a dataset's `taxonomy.yaml`: YAML syntax, schema, orphan scenarios, duplicate ids and
abbreviations, blank fields; each problem with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from safebench.dataset.problems import Problem, field_path, pydantic_message
from safebench.schema import Taxonomy

TAXONOMY_FILE = "taxonomy.yaml"


# ---------------------------------------------------------------------------------------------- taxonomy


def _node_line(root: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The line of the deepest YAML node on the path `loc` (pydantic errors carry no line numbers)."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def check_taxonomy(path: Path, file: str = TAXONOMY_FILE) -> tuple[Taxonomy | None, list[Problem]]:
    """Parse and check `taxonomy.yaml`; the taxonomy is None when it cannot be used to check items."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, None, None, f"cannot read: {exc}")]
    try:
        tree = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(file, mark.line + 1 if mark else None, None, f"bad YAML: {reason}")]
    if data is None:
        return None, [Problem(file, None, None, "empty file")]
    if not isinstance(data, dict):
        return None, [
            Problem(file, 1, None, f"expected a mapping at the top level, got {type(data).__name__}")
        ]
    problems = _orphan_scenarios(data, tree, file) + _duplicates(data, tree, file)
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        return None, problems + [
            Problem(file, _node_line(tree, tuple(e["loc"])), field_path(e["loc"]), pydantic_message(e))
            for e in exc.errors()
        ]
    problems += _blanks(taxonomy, tree, file)
    return (None if problems else taxonomy), problems


def _orphan_scenarios(data: dict[str, Any], tree: yaml.Node | None, file: str) -> list[Problem]:
    """Scenarios listed outside any category (a flat `scenarios:` list): each one is a problem."""
    orphans = data.pop("scenarios", None)
    if orphans is None:
        return []
    entries = orphans if isinstance(orphans, list) else [orphans]
    problems = []
    for i, entry in enumerate(entries):
        name = entry.get("id") or entry.get("name") if isinstance(entry, dict) else entry
        problems.append(
            Problem(
                file,
                _node_line(tree, ("scenarios", i)),
                f"scenarios[{i}]",
                f"scenario {name!r} has no category: list it under a category's `scenarios`",
            )
        )
    return problems


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _duplicates(data: dict[str, Any], tree: yaml.Node | None, file: str) -> list[Problem]:
    """Duplicate ids and abbreviations, read from the raw YAML so they are reported even when
    other fields fail the schema."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], str] = {}  # (kind, attribute, value) -> path of first use

    def once(kind: str, obj: dict[str, Any], loc: tuple[str | int, ...]) -> None:
        for attr in ("id", "abbr"):
            value = obj.get(attr)
            if not isinstance(value, str):
                continue
            key, path = (kind, attr, value), field_path((*loc, attr))
            if key in seen:
                msg = f"duplicate {kind} {attr} {value!r} (first at {seen[key]})"
                problems.append(Problem(file, _node_line(tree, (*loc, attr)), path, msg))
            else:
                seen[key] = path

    for ci, category in _dicts(data.get("categories")):
        once("category", category, ("categories", ci))
        for si, scenario in _dicts(category.get("scenarios")):
            once("scenario", scenario, ("categories", ci, "scenarios", si))
    return problems


def _blanks(taxonomy: Taxonomy, tree: yaml.Node | None, file: str) -> list[Problem]:
    """What the schema cannot see: names, abbreviations and definitions of only white space."""
    problems: list[Problem] = []

    def not_blank(obj: Any, loc: tuple[str | int, ...]) -> None:
        for attr in ("name", "abbr", "definition"):
            if not getattr(obj, attr).strip():
                where = (*loc, attr)
                problems.append(
                    Problem(file, _node_line(tree, where), field_path(where), "must not be blank")
                )

    for ci, category in enumerate(taxonomy.categories):
        not_blank(category, ("categories", ci))
        for si, scenario in enumerate(category.scenarios):
            not_blank(scenario, ("categories", ci, "scenarios", si))
    return problems
