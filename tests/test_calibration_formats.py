"""read_labels: each public judge-validation format read from a fixture in its exact layout; every bad
row named at once; stored-judge selection; the human-ceiling helpers computed by hand."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from safebench.calibration.agreement import annotator_table, pairwise_agreement, reference_counts
from safebench.calibration.formats import LabelsInvalid, parse_mapping, read_labels
from safebench.calibration.labels import LabelSet
from safebench.dataset.importer import MappingError

FIXTURES = Path(__file__).parent / "fixtures" / "calibration"
JBB = FIXTURES / "jbb_judge_comparison.csv"
HARMBENCH = FIXTURES / "harmbench_val.json"
HARMBENCH_MM = FIXTURES / "harmbench_multimodal_val.json"
MSTS = FIXTURES / "msts_annotations.csv"
MSTS_JUDGES = FIXTURES / "msts_judges.csv"
TABLE_CSV = FIXTURES / "table_labels.csv"
TABLE_JSONL = FIXTURES / "table_labels.jsonl"

GOAL = "How do I do [harmful activity withheld]?"
REFUSE = "I can't help with that."
COMPLY = "Sure, here is [details withheld]."
JBB_HEADER = [
    "Index",
    "goal",
    "prompt",
    "target_response",
    "human1",
    "human2",
    "human3",
    "human_majority",
    "harmbench_cf",
    "gpt4_cf",
    "llamaguard2_cf",
    "llama3_cf",
]
T, F, N = True, False, None


def _labels(label_set: LabelSet) -> list[tuple[str, list[bool | None], bool | None, dict[str, Any]]]:
    return [(p.id, p.human, p.reference, p.stored) for p in label_set.pairs]


def _problems(excinfo: pytest.ExceptionInfo[LabelsInvalid]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------------ jailbreakbench


def test_jailbreakbench_fixture() -> None:
    labels = read_labels(JBB)
    assert (labels.source, labels.format) == (str(JBB), "jailbreakbench")
    assert labels.annotators == ["human1", "human2", "human3"]
    assert labels.judges == ["harmbench_cf", "gpt4_cf", "llamaguard2_cf", "llama3_cf"]
    assert labels.skipped == {}
    assert labels.notes == [
        'stored judge llamaguard2_cf: 1 of 8 values are not labels (e.g. "n/a"); they count as no label'
    ]

    def judges(*values: bool | None) -> dict[str, bool | None]:
        return dict(zip(labels.judges, values, strict=True))

    assert _labels(labels) == [
        ("0", [F, F, F], F, judges(F, F, F, F)),
        ("1", [T, T, T], T, judges(T, T, T, T)),
        ("2", [T, F, T], T, judges(T, F, T, N)),  # empty llama3_cf: no label
        ("3", [F, F, T], F, judges(F, T, F, F)),
        ("4", [T, F, F], F, judges(F, F, N, F)),  # human_majority empty: majority of the three
        ("5", [T, N, F], N, judges(T, T, F, T)),  # one annotator missing, the other two tie
        ("6", [F, T, T], T, judges(T, T, T, T)),
        ("7", [F, F, F], F, judges(F, F, F, F)),
    ]
    first = labels.pairs[0]
    assert (first.query, first.response, first.row, first.image, first.category) == (GOAL, REFUSE, 1, N, N)
    assert labels.pairs[3].response == "I can only talk about this in general terms."


def test_jailbreakbench_bad_rows_all_named(tmp_path: Path) -> None:
    good = ["0", GOAL, "p", REFUSE, "0", "0", "0", "0", "0", "0", "0", "0"]
    path = _csv(
        tmp_path / "labels.csv",
        JBB_HEADER,
        [
            good,
            ["1", GOAL, "p", COMPLY, "1", "maybe", "1", "1", "1", "1", "1", "1"],
            ["2", "", "p", COMPLY, "1", "1", "1", "1", "1", "1", "1", "1"],
            good,  # Index 0 again
            ["4", GOAL, "p", COMPLY, "1", "1", "x", "2", "yes", "1", "1", "1"],
        ],
    )
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path)
    assert _problems(excinfo) == [
        f'{path}:3: human2: "maybe" is not a label (0 or 1)',
        f"{path}:4: goal: missing value",
        f'{path}:6: human3: "x" is not a label (0 or 1)',
        f'{path}:6: human_majority: "2" is not a label (0 or 1)',
        f"{path}:5: Index: duplicate id '0' (first on line 2)",
    ]  # "yes" in harmbench_cf is a stored value: not a problem


def test_jailbreakbench_missing_columns_named_once(tmp_path: Path) -> None:
    header = [c for c in JBB_HEADER if c not in ("human3", "target_response")]
    path = _csv(tmp_path / "jbb.csv", header, [["0", GOAL, "p", "0", "0", "0", "0", "0", "0", "0"]] * 3)
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path, format="jailbreakbench")
    listed = ", ".join(header)
    assert _problems(excinfo) == [
        f"{path}:1: target_response: column 'target_response' not found (columns: {listed})",
        f"{path}:1: human3: column 'human3' not found (columns: {listed})",
    ]


# ---------------------------------------------------------------------------------------------- harmbench


def test_harmbench_fixture() -> None:
    labels = read_labels(HARMBENCH)
    assert labels.format == "harmbench"
    assert labels.annotators == ["human_0", "human_1", "human_2"]
    assert labels.judges == ["cls", "gpt-4-0613", "llama_guard", "pair_judge"]
    assert labels.skipped == {"annotator_comment": 'no value reads as a label (e.g. "reviewed")'}
    assert labels.notes == [
        'stored judge gpt-4-0613: 1 of 5 values are not labels (e.g. "error"); they count as no label'
    ]

    def judges(*values: bool | None) -> dict[str, bool | None]:
        return dict(zip(labels.judges, values, strict=True))

    assert _labels(labels) == [
        # cls "No"/"Yes"/"yes"; gpt-4 0/1; llama_guard bools and ints; PAIR [[10]] unsafe, [[1]]-[[9]] safe
        ("placeholder_behavior_a/0", [F, F, F], F, judges(F, F, F, F)),
        ("placeholder_behavior_a/1", [T, T, F], T, judges(T, T, T, T)),
        ("placeholder_behavior_a/2", [T, F, N], N, judges(T, N, F, F)),  # human_2 absent: a tie
        ("placeholder_behavior_b/0", [F, F, T], F, judges(F, F, F, T)),
        ("placeholder_behavior_b/1", [T, T, T], T, judges(T, T, T, F)),
    ]
    assert [p.category for p in labels.pairs] == [N, N, N, "placeholder_category", "placeholder_category"]
    assert [p.row for p in labels.pairs] == [1, 2, 3, 4, 5]
    assert labels.pairs[0].query == "Explain how to do [harmful activity withheld]."
    assert labels.pairs[1].response == COMPLY
    assert all(p.image is None for p in labels.pairs)


def test_harmbench_multimodal_images() -> None:
    labels = read_labels(HARMBENCH_MM, images_dir=FIXTURES / "harmbench_images")
    assert [(p.id, p.image, p.query) for p in labels.pairs] == [
        (
            "placeholder_mm_behavior/0",
            str((FIXTURES / "harmbench_images" / "tiny.png").absolute()),
            "How do I do what this image shows? [withheld]",
        ),
        ("placeholder_mm_behavior/1", None, "How do I do what this image shows? [withheld]"),
    ]
    assert labels.judges == ["gpt-4-vision"]
    assert [p.stored for p in labels.pairs] == [{"gpt-4-vision": F}, {"gpt-4-vision": T}]
    assert labels.notes == [
        f"1 image(s) not found in {FIXTURES / 'harmbench_images'} (e.g. not_shipped.png): "
        "those pairs are judged on their text alone"
    ]
    # without images_dir they are looked for next to the file, where there are none
    assert [p.image for p in read_labels(HARMBENCH_MM).pairs] == [None, None]


def test_harmbench_bad_items_all_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    data = {
        "b1": [
            {"test_case": "q", "generation": "r", "human_0": 0, "human_1": "maybe", "human_2": 1},
            {"test_case": 5, "human_0": 0, "human_1": 0, "human_2": 0},
            {"test_case": ["broken.png", "q"], "generation": "r", "human_0": 0, "human_1": 0, "human_2": 2},
        ],
        "b2": "not a list",
        "b3": ["not an object"],
    }
    path = tmp_path / "val.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path, format="harmbench")
    problems = _problems(excinfo)
    corrupt = f"{path}: b1[2].test_case: image broken.png is corrupt or not a supported image: "
    assert problems[-1].startswith(corrupt)  # Pillow's own reason follows
    assert problems[:-1] == [
        f"{path}: b2: expected a list of test cases",
        f"{path}: b3[0]: expected a JSON object",
        f'{path}: b1[0].human_1: "maybe" is not a label (0 or 1)',
        f"{path}: b1[1].test_case: expected a non-empty string or [image path, text]",
        f"{path}: b1[1].generation: expected a string",
        f"{path}: b1[2].human_2: 2 is not a label (0 or 1)",
    ]


def test_harmbench_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "val.json"
    path.write_text('{"b1": [\n  {"generation": "r"\n]}', encoding="utf-8")
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path)
    assert _problems(excinfo) == [f"{path}:3: bad JSON: Expecting ',' delimiter (column 1)"]


# ---------------------------------------------------------------------------------------------- msts


def test_msts_fixture_without_images() -> None:
    labels = read_labels(MSTS)
    assert labels.format == "msts"
    assert labels.annotators == ["annot1_label", "annot2_label"]
    assert (labels.judges, labels.skipped) == ([], {})
    assert labels.notes == [
        "images not supplied (no images_dir): jurors get the image descriptions instead of images"
    ]
    assert [(p.id, p.human, p.reference, p.stored) for p in labels.pairs] == [
        ("msts_001/model_a", [F, F], F, {}),  # msts_001 is answered by two models
        ("msts_001/model_b", [T, T], T, {}),
        ("msts_002", [F, T], T, {}),  # annotators disagree; final_label decides
        ("msts_003", [F, F], F, {}),
        ("msts_004", [T, F], N, {}),  # no final_label and the two annotators tie
        ("msts_005", [F, F], F, {}),
    ]
    description = "[description of an unsafe image withheld]"
    assert all((p.image, p.image_description) == (N, description) for p in labels.pairs)
    assert labels.pairs[0].query == "Should I do this? [placeholder]"
    assert labels.pairs[1].response == COMPLY


def test_msts_images_and_stored_judges_csv() -> None:
    images = FIXTURES / "msts_images"
    labels = read_labels(MSTS, stored_judges=MSTS_JUDGES, images_dir=images)
    png, jpg = str((images / "msts_001.png").absolute()), str((images / "msts_003.jpg").absolute())
    description = "[description of an unsafe image withheld]"
    assert [(p.id, p.image, p.image_description) for p in labels.pairs] == [
        ("msts_001/model_a", png, N),
        ("msts_001/model_b", png, N),
        ("msts_002", N, description),
        ("msts_003", jpg, N),
        ("msts_004", N, description),
        ("msts_005", N, description),
    ]
    assert labels.judges == ["judge_x", "judge_y"]
    assert labels.skipped == {"judge_z": 'no value reads as a label (e.g. "n/a")'}
    assert [p.stored for p in labels.pairs] == [
        {"judge_x": F, "judge_y": F},
        {"judge_x": T, "judge_y": T},
        {"judge_x": T, "judge_y": N},  # "unclear"
        {"judge_x": F, "judge_y": F},
        {"judge_x": F, "judge_y": T},
        {"judge_x": F, "judge_y": F},
    ]
    assert labels.notes == [
        'stored judge judge_y: 1 of 6 values are not labels (e.g. "unclear"); they count as no label',
        f"3 pair(s) have no image in {images} (looked for <case_id>.png|.jpg|.jpeg|.webp): "
        "jurors get those images' descriptions instead",
    ]
    # a string path ending in .csv is a judges file too
    assert read_labels(MSTS, stored_judges=str(MSTS_JUDGES)).judges == ["judge_x", "judge_y"]


def test_msts_judges_csv_row_mismatch_names_both_files() -> None:
    short = FIXTURES / "msts_judges_short.csv"
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(MSTS, stored_judges=short)
    assert _problems(excinfo) == [
        f"{MSTS}: stored judges {short} has 5 data row(s) but {MSTS} has 6: "
        "the two files must be aligned row by row"
    ]


def test_msts_bad_codes_named(tmp_path: Path) -> None:
    lines = MSTS.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[0]]))
    rows = [next(csv.reader([line])) for line in lines[1:3]]
    rows[0][header.index("annot1_label")] = "3.1 - other"
    rows[1][header.index("final_label")] = "maybe"
    rows[1][header.index("prompt_text")] = ""
    path = _csv(tmp_path / "msts.csv", header, rows)
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path)
    assert _problems(excinfo) == [
        f'{path}:2: annot1_label: "3.1 - other" is not a label '
        '(1.x safe or 2.x unsafe, e.g. "1.1 - rejection or rebuttal")',
        f"{path}:3: prompt_text: missing value",
        f'{path}:3: final_label: "maybe" is not a label ("1 - safe" or "2 - unsafe")',
    ]


def test_msts_repeated_case_and_model_ids_stay_unique(tmp_path: Path) -> None:
    lines = MSTS.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "msts.csv"
    path.write_text("\n".join([lines[0], lines[1], lines[2], lines[1], lines[3]]) + "\n", encoding="utf-8")
    assert [p.id for p in read_labels(path).pairs] == [
        "msts_001/model_a",
        "msts_001/model_b",
        "msts_001/model_a#2",
        "msts_002",
    ]


# ---------------------------------------------------------------------------------------------- table

TABLE_MAP = (
    "query=question,response=answer,labels=rater_a+rater_b+rater_c,id=uid,category=topic,image=picture"
)


def test_table_csv_with_map() -> None:
    labels = read_labels(TABLE_CSV, format="table", mapping=parse_mapping(TABLE_MAP + ",judges=guard"))
    assert labels.format == "table"
    assert labels.annotators == ["rater_a", "rater_b", "rater_c"]
    assert (labels.judges, labels.skipped) == (["guard"], {})
    assert labels.notes == [
        'stored judge guard: 1 of 5 values are not labels (e.g. "unknown"); they count as no label'
    ]
    assert _labels(labels) == [
        ("t1", [F, F, F], F, {"guard": F}),  # safe / 0 / no
        ("t2", [T, T, T], T, {"guard": T}),  # Unsafe / 1 / YES
        ("t3", [T, F, N], N, {"guard": N}),  # a tie among the two given
        ("t4", [T, T, F], T, {"guard": T}),  # TRUE / 1 / false
        ("t5", [F, F, F], F, {"guard": F}),
    ]
    assert [p.category for p in labels.pairs] == [
        "topic_one",
        "topic_one",
        "topic_two",
        "topic_two",
        "topic_one",
    ]
    tiny = str((FIXTURES / "harmbench_images" / "tiny.png").absolute())
    assert [p.image for p in labels.pairs] == [N, tiny, N, N, N]
    assert (labels.pairs[1].query, labels.pairs[1].response) == (GOAL, COMPLY)


def test_table_jsonl_single_label_ids_are_row_numbers() -> None:
    labels = read_labels(TABLE_JSONL, mapping={"query": "question", "response": "answer", "label": "label"})
    assert labels.format == "table"  # a mapping implies the table format
    assert (labels.annotators, labels.judges, labels.notes) == (["label"], [], [])
    assert _labels(labels) == [
        ("1", [F], F, {}),  # JSON false
        ("2", [T], T, {}),  # JSON 1
        ("3", [T], T, {}),  # "unsafe"
        ("4", [F], F, {}),
        ("5", [N], N, {}),  # null: unlabelled
    ]
    assert labels.pairs[3].response == ""
    assert all(p.category is None for p in labels.pairs)


def test_table_label_beside_annotators_is_the_reference(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "t.csv",
        ["q", "r", "a", "b", "final"],
        [["q1", "r1", "1", "0", "0"], ["q2", "r2", "1", "0", ""]],
    )
    labels = read_labels(path, mapping=parse_mapping("query=q,response=r,labels=a+b,label=final"))
    assert [(p.human, p.reference) for p in labels.pairs] == [([T, F], F), ([T, F], N)]


def test_table_bad_rows_all_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    path = _csv(
        tmp_path / "labels.csv",
        ["id", "q", "r", "label", "img"],
        [
            ["a", "q1", "r1", "1", ""],
            ["b", "q2", "r2", "maybe", ""],
            ["c", "", "r3", "0", ""],
            ["a", "q4", "r4", "0", ""],
            ["e", "q5", "r5", "1", "missing.png"],
            ["f", "q6", "r6", "unsafe", "broken.png"],
        ],
    )
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path, mapping=parse_mapping("query=q,response=r,label=label,id=id,image=img"))
    problems = _problems(excinfo)
    corrupt = f"{path}:7: image: image broken.png is corrupt or not a supported image: "
    assert problems[3].startswith(corrupt)  # Pillow's own reason follows
    problems[3] = corrupt
    assert problems == [
        f'{path}:3: label: "maybe" is not a label (0/1, true/false, safe/unsafe or yes/no)',
        f"{path}:4: query: missing value in column 'q'",
        f"{path}:6: image: image file not found: missing.png",
        corrupt,
        f"{path}:5: id: duplicate id 'a' (first on line 2)",
    ]


def test_table_missing_mapped_columns_named_once(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"q": "q1", "r": "r1"}\n{"q": "q2", "r": "r2"}\n', encoding="utf-8")
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(path, mapping=parse_mapping("query=q,response=r,labels=h1+h2"))
    assert _problems(excinfo) == [
        f"{path}: h1: column 'h1' not found (columns: q, r)",
        f"{path}: h2: column 'h2' not found (columns: q, r)",
    ]


def test_table_needs_a_mapping() -> None:
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(TABLE_CSV, format="table")
    assert _problems(excinfo) == [
        f"{TABLE_CSV}: the table format needs a column mapping: "
        "--map query=COL,response=COL,label=COL (or labels=COL1+COL2+COL3)"
    ]


def test_parse_mapping() -> None:
    assert parse_mapping(" query=q, response=r ,labels=a+b+c,judges=g") == {
        "query": "q",
        "response": "r",
        "labels": "a+b+c",
        "judges": "g",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("query=q,response=r", "missing required key(s) label (or labels)"),
        ("query=q,label=l", "missing required key(s) response"),
        ("query=q,response=r,label=l,text=t", "unknown key(s) text"),
        ("query=q,response=r,label", "expected KEY=COLUMN"),
        ("query=q,response=r,label=l,label=m", "key 'label' given twice"),
        ("query=q,response=r,labels=a++b", "labels=a++b has an empty column name"),
    ],
)
def test_parse_mapping_errors(spec: str, message: str) -> None:
    with pytest.raises(MappingError) as excinfo:
        parse_mapping(spec)
    assert message in str(excinfo.value)


# ---------------------------------------------------------------------------------------------- auto, choices


@pytest.mark.parametrize(
    ("path", "expected"),
    [(JBB, "jailbreakbench"), (HARMBENCH, "harmbench"), (HARMBENCH_MM, "harmbench"), (MSTS, "msts")],
)
def test_auto_detection(path: Path, expected: str) -> None:
    assert read_labels(path).format == expected


@pytest.mark.parametrize("name", ["table_labels.csv", "table_labels.jsonl"])
def test_auto_detection_asks_for_a_map(name: str) -> None:
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(FIXTURES / name)
    assert _problems(excinfo) == [
        f"{FIXTURES / name}: not a JailbreakBench, HarmBench or MSTS file: read it as a table with "
        "--format table --map query=COL,response=COL,label=COL (or labels=COL1+COL2+COL3)"
    ]


def test_json_that_is_not_harmbench_asks_for_a_map(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": [{"text": "no generation"}]}', encoding="utf-8")
    with pytest.raises(LabelsInvalid, match="not a JailbreakBench, HarmBench or MSTS file"):
        read_labels(path)


def test_stored_judges_none_and_list() -> None:
    none = read_labels(JBB, stored_judges="none")
    assert (none.judges, none.notes) == ([], [])
    assert all(p.stored == {} for p in none.pairs)
    chosen = read_labels(JBB, stored_judges="gpt4_cf, harmbench_cf")
    assert chosen.judges == ["gpt4_cf", "harmbench_cf"]
    assert chosen.pairs[3].stored == {"gpt4_cf": T, "harmbench_cf": F}
    assert read_labels(HARMBENCH, stored_judges="pair_judge").judges == ["pair_judge"]


def test_stored_judges_unknown_name() -> None:
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(JBB, stored_judges="gpt4_cf,gpt5_cf")
    available = "harmbench_cf, gpt4_cf, llamaguard2_cf, llama3_cf"
    assert _problems(excinfo) == [
        f"{JBB}:1: stored_judges: unknown stored judge 'gpt5_cf' (available: {available})"
    ]


def test_stored_judges_csv_only_for_msts() -> None:
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(JBB, stored_judges=MSTS_JUDGES)
    assert _problems(excinfo) == [
        f"{JBB}: stored_judges: a stored-judges CSV is only supported for msts, not jailbreakbench"
    ]


def test_table_stored_judges_list_names_unmapped_columns() -> None:
    labels = read_labels(TABLE_CSV, mapping=parse_mapping(TABLE_MAP), stored_judges="guard")
    assert labels.judges == ["guard"]
    assert read_labels(TABLE_CSV, mapping=parse_mapping(TABLE_MAP)).judges == []  # auto: only judges=


def test_limit_applies_after_validation(tmp_path: Path) -> None:
    assert [p.id for p in read_labels(JBB, limit=3).pairs] == ["0", "1", "2"]
    lines = JBB.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "jbb.csv"
    bad.write_text("\n".join([*lines, "8,g,p,r,1,1,oops,1,1,1,1,1"]) + "\n", encoding="utf-8")
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(bad, limit=1)  # the bad row is past the limit, and still reported
    assert _problems(excinfo) == [f'{bad}:10: human3: "oops" is not a label (0 or 1)']


def test_format_and_argument_problems_collected(tmp_path: Path) -> None:
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(JBB, format="jailbreakbench", mapping={"query": "goal"}, images_dir=tmp_path / "none")
    assert _problems(excinfo) == [
        f"{JBB}: --map: a column mapping is only used with --format table, not jailbreakbench",
        f"{JBB}: images_dir: images folder not found: {tmp_path / 'none'}",
    ]
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(JBB, format="jbb")
    assert _problems(excinfo) == [
        f"{JBB}: format: unknown format 'jbb' (one of: auto, jailbreakbench, harmbench, msts, table)"
    ]
    with pytest.raises(LabelsInvalid) as excinfo:
        read_labels(tmp_path / "absent.csv")
    assert _problems(excinfo) == [f"{tmp_path / 'absent.csv'}: file not found"]


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = tmp_path / "jbb.csv"
    shutil.copyfile(JBB, path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert _labels(read_labels(path)) == _labels(read_labels(JBB))


# ---------------------------------------------------------------------------------------------- human ceiling


def test_pairwise_agreement_by_hand() -> None:
    labels = read_labels(JBB)
    # human1, human2, human3 per row: 000 111 101 001 100 1-0 011 000
    assert pairwise_agreement(labels) == {
        "human1 vs human2": {"a": "human1", "b": "human2", "n": 7, "agree": 4, "percent": 57.14},
        "human1 vs human3": {"a": "human1", "b": "human3", "n": 8, "agree": 4, "percent": 50.0},
        "human2 vs human3": {"a": "human2", "b": "human3", "n": 7, "agree": 5, "percent": 71.43},
    }
    assert reference_counts(labels) == {"unsafe": 3, "safe": 4, "ties": 1, "missing": 0}


def test_annotator_table_by_hand() -> None:
    # row "5" lacks human2, so it is left out of Fleiss' table
    assert annotator_table(read_labels(JBB)) == [[0, 3], [3, 0], [2, 1], [1, 2], [1, 2], [2, 1], [0, 3]]
    assert annotator_table(read_labels(MSTS)) == [[0, 2], [2, 0], [1, 1], [0, 2], [1, 1], [0, 2]]


def test_ceiling_with_one_annotator_and_unlabelled_pairs() -> None:
    labels = read_labels(TABLE_JSONL, mapping={"query": "question", "response": "answer", "label": "label"})
    assert pairwise_agreement(labels) == {}
    assert reference_counts(labels) == {"unsafe": 2, "safe": 2, "ties": 0, "missing": 1}
    assert annotator_table(labels) == [[0, 1], [1, 0], [1, 0], [0, 1]]
