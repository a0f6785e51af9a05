"""Check a dataset folder and report every problem at once, each naming its file, line and field."""

from __future__ import annotations

import hashlib
import io
import json
import re
import wave
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml
from PIL import Image
from pydantic import ValidationError

from safebench.schema import Item, Taxonomy

ITEMS_FILE = "items.jsonl"
TAXONOMY_FILE = "taxonomy.yaml"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
AUDIO_RATE = 16_000  # spoken queries: 16 kHz mono 16-bit PCM WAV


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DatasetInvalid(Exception):
    """A dataset folder failed validation; `.problems` holds every problem found."""

    def __init__(self, problems: list[Problem], root: str | Path | None = None) -> None:
        self.problems = problems
        self.root = root
        head = f"dataset {root} is invalid" if root is not None else "dataset is invalid"
        super().__init__(f"{head} ({len(problems)} problem(s)):\n{format_problems(problems)}")


class DatasetUnsuitable(DatasetInvalid):
    """A valid dataset that cannot be evaluated in the requested modality (e.g. audio without speech)."""

    def __init__(self, problems: list[Problem], root: str | Path, modality: str) -> None:
        super().__init__(problems, root)
        self.modality = modality
        self.args = (
            f"dataset {root} cannot be evaluated with modality {modality!r} ({len(problems)} problem(s)):\n"
            f"{format_problems(problems)}",
        )


def format_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(f"  {p}" for p in problems)


def field_path(loc: Iterable[str | int]) -> str:
    """A pydantic location as `categories[2].scenarios[0].id`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pydantic_message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_too_short":
        return "must not be empty"
    return str(error["msg"])


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


# ---------------------------------------------------------------------------------------------- items


def _check_file(root: Path, path: str, kind: str) -> tuple[str | None, bytes | None]:
    """(problem, file bytes): the path must stay inside the dataset folder and name a readable file."""
    if "\\" in path:
        return f"{kind} path {path!r} must use forward slashes", None
    rel = PurePosixPath(path)
    if rel.is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
        return f"{kind} path {path!r} is absolute; it must be relative to the dataset folder", None
    if ".." in rel.parts:
        return f"{kind} path {path!r} must not contain '..'", None
    full = root / rel
    base = root.resolve()
    if not full.resolve().is_relative_to(base):
        return f"{kind} path {path!r} resolves outside the dataset folder (through a symlink)", None
    if not full.exists():
        return f"{kind} file not found: {path}", None
    if not full.is_file():
        return f"{kind} path {path!r} is not a regular file", None
    try:
        return None, full.read_bytes()
    except OSError as exc:
        return f"cannot read {kind} {path}: {exc.strerror or exc}", None


# sha256 -> what decoding those bytes found (None: a good image). Identical bytes decode identically, so
# items sharing an image (or a dataset validated again before a run) decode it once; small entries, capped.
_DECODED: dict[str, str | None] = {}
_DECODED_MAX = 50_000


def check_image(root: Path, image: str) -> tuple[str | None, str | None]:
    """(problem, sha256 of the file): one problem at most, since each rules out the next checks."""
    if not image.strip():
        return "empty image path (use null for an item without an image)", None
    problem, data = _check_file(root, image, "image")
    if data is None:
        return problem, None
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _DECODED:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[digest] = _decode_problem(data)
    reason = _DECODED[digest]
    if reason is not None:
        return f"image {image} is corrupt or not a supported image: {reason}", None
    return None, digest


def _decode_problem(data: bytes) -> str | None:
    try:
        # verify() checks structure without decoding; load() decodes every pixel (truncated data fails here)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return str(exc)
    return None


def check_audio(root: Path, audio: str) -> tuple[str | None, str | None]:
    """(problem, sha256 of the file) for a spoken query: a readable 16 kHz mono 16-bit PCM WAV."""
    if not audio.strip():
        return "empty audio path", None
    problem, data = _check_file(root, audio, "audio")
    if data is None:
        return problem, None
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate, frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            samples = wav.readframes(frames)
    except (wave.Error, EOFError) as exc:
        return f"audio {audio} is corrupt or not a PCM WAV file: {str(exc) or 'unexpected end of file'}", None
    if (rate, channels, width) != (AUDIO_RATE, 1, 2):
        found = f"{rate} Hz, {channels} channel(s), {8 * width}-bit"
        return f"audio {audio} is {found}; it must be {AUDIO_RATE} Hz mono 16-bit", None
    if frames == 0:
        return f"audio {audio} has no samples (duration 0 s)", None
    if len(samples) < frames * width * channels:
        return f"audio {audio} is truncated: the header says {frames} frames, the file holds fewer", None
    return None, hashlib.sha256(data).hexdigest()


def _check_audio_entries(raw_audio: Any, root: Path, add: Callable[[str | None, str], None]) -> None:
    """File checks for each well-formed `audio` entry (the schema reports the malformed ones)."""
    if not isinstance(raw_audio, list):
        return
    voices: dict[str, int] = {}
    for index, entry in enumerate(raw_audio):
        if not isinstance(entry, dict):
            continue
        where = f"audio[{index}]"
        voice, path, sha = entry.get("voice"), entry.get("path"), entry.get("sha256")
        if isinstance(voice, str) and voice:
            if voice in voices:
                add(f"{where}.voice", f"duplicate voice {voice!r} (first in audio[{voices[voice]}])")
            else:
                voices[voice] = index
        if isinstance(sha, str) and not SHA256_PATTERN.match(sha):
            add(f"{where}.sha256", "must be 64 lowercase hex digits")
            sha = None
        if not isinstance(path, str):
            continue
        problem, actual = check_audio(root, path)
        if problem:
            add(f"{where}.path", problem)
        elif isinstance(sha, str) and sha != actual:
            add(f"{where}.sha256", f"sha256 mismatch for {path}: file has {actual}")


def _check_item(
    raw: dict[str, Any], line: int, root: Path, taxonomy: Taxonomy | None, seen_ids: dict[str, int]
) -> list[Problem]:
    problems: list[Problem] = []

    def add(field: str | None, message: str) -> None:
        problems.append(Problem(ITEMS_FILE, line, field, message))

    try:
        Item.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            add(field_path(e["loc"]) or None, pydantic_message(e))

    item_id, scenario_id, category = raw.get("id"), raw.get("scenario"), raw.get("category")
    if isinstance(item_id, str) and item_id:
        if item_id in seen_ids:
            add("id", f"duplicate id {item_id!r} (first on line {seen_ids[item_id]})")
        else:
            seen_ids[item_id] = line
    if taxonomy is not None and isinstance(scenario_id, str) and scenario_id:
        scenario = taxonomy.scenarios.get(scenario_id)
        if scenario is None:
            add("scenario", f"unknown scenario id {scenario_id!r}")
        elif isinstance(category, str) and category and category != scenario.category:
            expected = scenario.category
            add(
                "category",
                f"category {category!r} does not match scenario {scenario_id!r} (expected {expected!r})",
            )

    image, sha = raw.get("image"), raw.get("image_sha256")
    if isinstance(sha, str) and not SHA256_PATTERN.match(sha):
        add("image_sha256", "must be 64 lowercase hex digits")
        sha = None
    if isinstance(image, str):
        problem, actual = check_image(root, image)
        if problem:
            add("image", problem)
        elif raw.get("image_sha256") is None:
            add("image_sha256", f"missing for image {image} (its sha256 is {actual})")
        elif isinstance(sha, str) and sha != actual:
            add("image_sha256", f"sha256 mismatch for {image}: file has {actual}")
    elif image is None and raw.get("image_sha256") is not None:
        add("image_sha256", "given for an item without an image")
    _check_audio_entries(raw.get("audio"), root, add)
    return problems


def check_items(root: Path, taxonomy: Taxonomy | None) -> list[Problem]:
    path = root / ITEMS_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Problem(ITEMS_FILE, None, None, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return [Problem(ITEMS_FILE, line, None, f"not valid UTF-8: {exc.reason}")]

    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    count = 0
    # split on "\n" only, so line numbers match editors even if a string holds U+2028
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        count += 1
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(ITEMS_FILE, number, None, f"bad JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(raw, dict):
            kind = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
                type(raw), "null"
            )
            problems.append(Problem(ITEMS_FILE, number, None, f"expected a JSON object, got {kind}"))
            continue
        problems.extend(_check_item(raw, number, root, taxonomy, seen_ids))
    if count == 0:
        problems.append(Problem(ITEMS_FILE, None, None, "empty file: no items"))
    return problems


AUDIO_MODALITIES = ("audio", "audio+text")


def check_modality(
    root: Path, modality: str, voice: str, item_ids: Collection[str] | None = None
) -> list[Problem]:
    """What stops a *valid* dataset from being evaluated in `modality`: audio modalities need every item
    evaluated (`item_ids`, default all) to have a recording in `voice`. Empty for other modalities."""
    if modality not in AUDIO_MODALITIES:
        return []
    missing: list[tuple[int, str, list[str]]] = []  # (line, item id, voices it has)
    voices_found: set[str] = set()
    for number, line in enumerate((root / ITEMS_FILE).read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        raw = json.loads(line)
        if item_ids is not None and raw.get("id") not in item_ids:
            continue
        voices = [a.get("voice") for a in raw.get("audio") or []]
        voices_found.update(voices)
        if voice not in voices:
            missing.append((number, raw.get("id"), voices))
    if not missing:
        return []
    if not voices_found:
        return [
            Problem(
                ITEMS_FILE,
                None,
                "audio",
                f"no item has audio; modality {modality!r} needs spoken queries (see safebench generate)",
            )
        ]
    if voice not in voices_found:
        present = ", ".join(sorted(voices_found))
        return [Problem(ITEMS_FILE, None, "audio", f"no item has a {voice!r} voice (voices here: {present})")]
    return [
        Problem(
            ITEMS_FILE,
            number,
            "audio",
            f"item {item_id!r} has no {voice!r} voice (it has: {', '.join(v) or 'none'})",
        )
        for number, item_id, v in missing
    ]


def validate_dataset(root: str | Path) -> list[Problem]:
    """Every problem in the dataset folder `root`; an empty list means it is valid."""
    root = Path(root)
    if not root.exists():
        return [Problem(str(root), None, None, "dataset folder not found")]
    if not root.is_dir():
        return [Problem(str(root), None, None, "not a folder")]
    problems: list[Problem] = []
    taxonomy: Taxonomy | None = None
    if (root / TAXONOMY_FILE).is_file():
        taxonomy, found = check_taxonomy(root / TAXONOMY_FILE)
        problems.extend(found)
    else:
        problems.append(Problem(TAXONOMY_FILE, None, None, "file not found"))
    if (root / ITEMS_FILE).is_file():
        problems.extend(check_items(root, taxonomy))
    else:
        problems.append(Problem(ITEMS_FILE, None, None, "file not found"))
    return problems
