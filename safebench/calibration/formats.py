"""Read public human-labelled judge-validation files into a `LabelSet` (True = unsafe everywhere).

`read_labels` checks the whole file and raises `LabelsInvalid` with every problem found (file, line or
field path, message), never only the first. Common rules: an empty human label is missing (None); a
human value that is not a label is a problem. A stored judge's value that is not a label becomes None
(counted in a note); a stored judge column none of whose values reads as a label is skipped and listed
in `LabelSet.skipped` with the reason. `limit` keeps the first N pairs, after the whole file is checked.
`stored_judges`: "auto" (every judge column of the format), "none", "a,b" (those columns; an unknown
name is a problem) or a .csv path (msts only).

jailbreakbench
    JailbreakBench's judge-comparison CSV: `Index, goal, prompt, target_response, human1, human2,
    human3, human_majority, harmbench_cf, gpt4_cf, llamaguard2_cf, llama3_cf`, values 0/1 (1 =
    jailbroken). id = Index (must be unique), query = goal, response = target_response (the jailbreak
    `prompt` is not used). Annotators human1..3; reference = human_majority, or where it is empty (or
    the column absent) the majority of the three. Stored judges: the `*_cf` columns, values 0/1.

harmbench
    HarmBench's classifier validation JSON: `{behavior id: [{test_case, generation, human_0, human_1,
    human_2, <judge>: value, ...}]}`. test_case is the query text, or `[image path, text]` in the
    multimodal set: the image is looked up as `<images_dir or the file's folder>/<image path>`; one not
    found leaves the pair without an image (and a note says how many). id = `<behavior id>/<0-based
    position in its list>`; problems are named by field path, e.g. `behavior[2].human_1`. The behavior
    id is not a category: category comes only from a `category` key. Annotators: every `human_N` key;
    reference = their majority (a tie among the labels present, or none, gives None). Stored judges:
    every other key (`cls`, `gpt-4-0613`, `llama_guard`, ...), read as 0/1, booleans, yes/no, or PAIR's
    `Rating: [[N]]` (only 10 is unsafe, as in the PAIR paper).

msts
    The MSTS response-annotation CSV: `case_id, prompt_type, prompt_text, unsafe_image_description,
    model, response, annot1_name, annot1_label, annot1_note, annot2_name, annot2_label, annot2_note,
    agreement_label, agreement_taxonomy, final_expert, final_label, final_taxonomy, final_note`.
    Annotators annot1_label, annot2_label, codes such as "1.1 - rejection or rebuttal" (1.x safe) or
    "2.2 - advice" (2.x unsafe); reference = final_label ("1 - safe" / "2 - unsafe"), or where it is
    empty the annotators' majority. query = prompt_text. id = case_id when it occurs once in the file,
    else `case_id/model` (then `#2`, `#3`... in file order should even that repeat). Images are not
    shipped: with `images_dir`, a pair's image is the first of `<images_dir>/<case_id>.png|.jpg|.jpeg|
    .webp` that exists; a pair without one gets `image_description` = unsafe_image_description (a note
    says so). Stored judges: only from `stored_judges=<file>.csv`, aligned row by row with the MSTS file
    (same number of data rows, else a problem naming both files), a header of judge names, values
    safe/unsafe (or MSTS codes).

table
    Any CSV/TSV/JSONL with a mapping `query=COL,response=COL,label=COL` or `labels=COL1+COL2+COL3`
    (annotators; reference = their majority, or `label=COL` beside them as the reference where it is
    not empty), optional `image=COL` (a path relative to images_dir or the file's folder),
    `category=COL`, `id=COL` (missing: the 1-based data row number) and `judges=COL1+COL2` (stored
    judges; a stored_judges list may also name any unmapped column). Labels: 0/1, true/false,
    safe/unsafe, yes/no in any case (JSON booleans and numbers too).

`format="auto"` recognises harmbench by shape (a JSON object of lists of objects with `generation`),
jailbreakbench by `goal` and `target_response` columns, msts by `case_id` and `annot1_label`; given a
mapping it reads a table; otherwise it asks for `--format table --map ...`.
"""

from __future__ import annotations

from pathlib import Path

from safebench.calibration.formats_common import JudgeChoice, LabelsInvalid, Source, read_table
from safebench.calibration.formats_harmbench import load_json, looks_like_harmbench, read_harmbench
from safebench.calibration.formats_jbb import read_jailbreakbench
from safebench.calibration.formats_msts import read_msts_file
from safebench.calibration.formats_table import EXAMPLE, MAPPING_KEYS, parse_mapping, read_mapped
from safebench.calibration.labels import LabelSet

__all__ = ["FORMATS", "MAPPING_KEYS", "LabelsInvalid", "detect_format", "parse_mapping", "read_labels"]

FORMATS = ("jailbreakbench", "harmbench", "msts", "table")


def detect_format(src: Source) -> str | None:
    """The format recognised from the file's shape or header; None (and a problem) when none fits."""
    suffix = src.path.suffix.lower()
    if suffix == ".json":
        scratch = Source(src.path)
        data = load_json(scratch)
        if scratch.problems:
            src.problems.extend(scratch.problems)
            return None
        if looks_like_harmbench(data):
            return "harmbench"
    elif suffix in (".csv", ".tsv"):
        table = read_table(Source(src.path))  # its problems are reported when the file is read for real
        columns = set(table[0]) if table else set()
        if {"goal", "target_response"} <= columns:
            return "jailbreakbench"
        if {"case_id", "annot1_label"} <= columns:
            return "msts"
    src.add(
        None,
        None,
        "not a JailbreakBench, HarmBench or MSTS file: read it as a table with "
        f"--format table --map {EXAMPLE}",
    )
    return None


def read_labels(
    path: Path,
    *,
    format: str = "auto",
    mapping: dict[str, str] | None = None,
    stored_judges: str | Path = "auto",
    images_dir: Path | None = None,
    limit: int | None = None,
) -> LabelSet:
    """Read a labelled file; raise `LabelsInvalid` listing every problem in it."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    path = Path(path)
    src = Source(path)
    if not path.is_file():
        src.add(None, None, "file not found")
        raise LabelsInvalid(src.problems)
    kind: str | None = format
    if format == "auto":
        kind = "table" if mapping is not None else detect_format(src)
    elif format not in FORMATS:
        src.add(None, "format", f"unknown format {format!r} (one of: auto, {', '.join(FORMATS)})")
        kind = None
    elif mapping is not None and format != "table":
        src.add(None, "--map", f"a column mapping is only used with --format table, not {format}")
    judges = JudgeChoice.parse(stored_judges)
    if judges.kind == "csv" and kind not in (None, "msts"):
        src.add(None, "stored_judges", f"a stored-judges CSV is only supported for msts, not {kind}")
    if judges.kind == "csv" and judges.csv is not None and not judges.csv.is_file():
        src.add(None, "stored_judges", f"stored-judges file not found: {judges.csv}")
    images = None if images_dir is None else Path(images_dir)
    if images is not None and not images.is_dir():
        src.add(None, "images_dir", f"images folder not found: {images}")
    if src.problems or kind is None:
        raise LabelsInvalid(src.problems)
    if kind == "jailbreakbench":
        label_set = read_jailbreakbench(src, judges)
    elif kind == "harmbench":
        label_set = read_harmbench(src, judges, images)
    elif kind == "msts":
        label_set = read_msts_file(src, judges, images)
    else:
        label_set = read_mapped(src, mapping, judges, images)
    if src.problems or label_set is None:
        raise LabelsInvalid(src.problems)
    if limit is not None:
        label_set.pairs = label_set.pairs[:limit]
    return label_set
