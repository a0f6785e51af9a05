"""The taxonomy debate's moderator: merging proposals, applying edits, the vote, ids and abbreviations."""

from __future__ import annotations

from typing import Any

import pytest

from safebench.embeddings import Embedder
from safebench.generation.taxonomy import (
    SYNONYM_THRESHOLD,
    apply_edits,
    assign_abbrs,
    derive_abbr,
    draft_scenarios,
    finalize,
    kept,
    merge_proposals,
    merge_with_log,
    similarity,
    tally_votes,
    tokens,
)
from safebench.taxonomy import default_taxonomy

MED = {"name": "Medical Advice", "definition": "Diagnoses, treatments or dosages that need a clinician."}
LEGAL = {"name": "Legal Advice", "definition": "Specific legal strategy that should come from a lawyer."}
INVEST = {"name": "Investment Advice", "definition": "Personal investment recommendations with serious risk."}
HATE = {"name": "Hate Speech", "definition": "Attacks on people for protected attributes."}
BIAS = {"name": "Bias", "definition": "Stereotypes and unfair generalisations about groups."}
CONSULT = "Professional advice without the qualifications it needs."


def category(name: str, *scenarios: dict[str, str], definition: str | None = None) -> dict[str, Any]:
    return {"name": name, "definition": definition or f"{name} risks.", "scenarios": list(scenarios)}


def proposal(*categories: dict[str, Any]) -> dict[str, Any]:
    return {"categories": list(categories)}


def by_name(draft: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in draft_scenarios(draft)}


def default_proposal() -> dict[str, Any]:
    return proposal(
        *(
            category(
                c.name,
                *({"name": s.name, "definition": s.definition} for s in c.scenarios),
                definition=c.definition,
            )
            for c in default_taxonomy().categories
        )
    )


# ---------------------------------------------------------------------------------------------- merge


def test_duplicates_and_near_synonyms_are_joined_and_both_proposers_recorded() -> None:
    guidance = {
        "name": "Medical Guidance",
        "definition": "Advice on medication that only a doctor should give.",
    }
    draft = merge_proposals(
        [
            ("a", proposal(category("Consultation", MED, LEGAL, definition=CONSULT))),
            (
                "b",
                proposal(
                    category(
                        "consultation ",
                        guidance,
                        {**LEGAL, "name": "legal  advice"},
                        INVEST,
                        definition=CONSULT,
                    )
                ),
            ),
        ]
    )
    assert [c["id"] for c in draft["categories"]] == ["consultation"]
    assert draft["categories"][0]["proposed_by"] == ["a", "b"]
    scenarios = by_name(draft)
    assert sorted(scenarios) == ["Investment Advice", "Legal Advice", "Medical Advice"]
    medical = scenarios["Medical Advice"]
    assert medical["proposed_by"] == ["a", "b"]
    assert medical["definition"] == MED["definition"]  # the earliest of the tied names
    assert (
        "'Medical Guidance' by b" in medical["history"][0]
        and "'Medical Advice' by a" in medical["history"][0]
    )
    assert scenarios["Investment Advice"]["proposed_by"] == ["b"]
    assert medical["changed_in_round"] is None


def test_the_most_common_name_wins_and_spelling_variants_join() -> None:
    cyber = {"name": "Cyber Security", "definition": "Attacks on computer systems."}
    draft = merge_proposals(
        [
            ("a", proposal(category("Cyber Security", {**MED, "name": "Medical Guidance"}))),
            ("b", proposal(category("Cybersecurity", MED), {**cyber, "scenarios": [HATE]})),
            ("c", proposal(category("Cybersecurity", MED))),
            ("d", proposal(category("cybersecurity", MED))),
        ]
    )
    # One vote per judge and spelling: "Cybersecurity" 3 (b, c, d), "Cyber Security" 2 (a, b).
    assert [c["name"] for c in draft["categories"]] == ["Cybersecurity"]
    assert draft["categories"][0]["proposed_by"] == ["a", "b", "c", "d"]
    assert list(by_name(draft)) == ["Medical Advice", "Hate Speech"]


def test_distinct_scenarios_are_kept_apart() -> None:
    physical = {"name": "Physical Harm", "definition": "Injuring or killing people, weapons and self-harm."}
    psychological = {
        "name": "Psychological Harm",
        "definition": "Harassment, intimidation and emotional abuse.",
    }
    draft = merge_proposals(
        [
            ("a", proposal(category("Violence", physical))),
            ("b", proposal(category("Violence", psychological))),
        ]
    )
    assert sorted(by_name(draft)) == ["Physical Harm", "Psychological Harm"]
    assert similarity(physical, psychological) < 0.5 <= similarity(MED, {**MED, "name": "Medical Guidance"})


def test_three_copies_of_the_default_taxonomy_merge_into_it() -> None:
    default = default_taxonomy()
    draft = merge_proposals([(j, default_proposal()) for j in ("a", "b", "c")])
    assert [c["id"] for c in draft["categories"]] == [c.id for c in default.categories]
    assert [s["id"] for s in draft_scenarios(draft)] == list(default.scenarios)
    assert all(s["proposed_by"] == ["a", "b", "c"] for s in draft_scenarios(draft))


def test_a_scenario_goes_to_the_category_most_proposers_put_it_in() -> None:
    opinions, speech = category("Inappropriate Opinions", BIAS), category("Inappropriate Speech", HATE, BIAS)
    draft = merge_proposals([("a", proposal(opinions)), ("b", proposal(speech)), ("c", proposal(opinions))])
    homes = {c["name"]: [s["name"] for s in c["scenarios"]] for c in draft["categories"]}
    assert homes == {"Inappropriate Opinions": ["Bias"], "Inappropriate Speech": ["Hate Speech"]}
    assert by_name(draft)["Bias"]["proposed_by"] == ["a", "b", "c"]


def test_a_base_taxonomy_keeps_its_ids_names_and_abbreviations() -> None:
    base = {"categories": [{"id": "co", "name": "Consultation", "abbr": "CO", "definition": CONSULT,
                            "scenarios": [{"id": "med", "abbr": "ZZ", **MED}]}]}  # fmt: skip
    guidance = {**MED, "name": "Medical Guidance"}
    draft = merge_proposals(
        [
            ("a", proposal(category("Consultation", guidance))),
            ("b", proposal(category("Consultation", guidance))),
        ],
        base,
    )
    medical = draft_scenarios(draft)[0]
    assert (medical["id"], medical["name"], medical["base_abbr"]) == ("med", "Medical Advice", "ZZ")
    assert medical["proposed_by"] == ["base", "a", "b"]


# ---------------------------------------------------------------------------------------------- edits


def two_categories() -> dict[str, Any]:
    return merge_proposals(
        [
            (
                "a",
                proposal(
                    category("Consultation", MED, LEGAL, definition=CONSULT),
                    category("Inappropriate Speech", HATE, BIAS),
                ),
            )
        ]
    )


def edit(op: str, target: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "op": op,
        "kind": fields.pop("kind", "scenario"),
        "target": target,
        "reason": f"{op} it",
        **fields,
    }


def test_rename_changes_name_and_id_and_records_the_round() -> None:
    draft, log = apply_edits(
        two_categories(), [("b", [edit("rename", "medical_advice", name="Health Guidance")])], 2
    )
    scenario = by_name(draft)["Health Guidance"]
    assert scenario["id"] == "health_guidance"
    assert scenario["changed_in_round"] == 2
    assert scenario["history"][-1].startswith(
        "round 2: renamed from 'Medical Advice' to 'Health Guidance' by b"
    )
    assert [e["op"] for e in log["applied"]] == ["rename"] and log["rejected"] == []


def test_add_puts_the_scenario_in_its_category_and_marks_both() -> None:
    new = {"name": "Disinformation", "definition": "False claims presented as fact."}
    draft, _ = apply_edits(two_categories(), [("c", [edit("add", "inappropriate_speech", **new)])], 1)
    speech = draft["categories"][1]
    assert [s["name"] for s in speech["scenarios"]] == ["Hate Speech", "Bias", "Disinformation"]
    assert (
        speech["scenarios"][-1]["proposed_by"] == ["c"] and speech["scenarios"][-1]["changed_in_round"] == 1
    )
    assert speech["changed_in_round"] == 1


def test_add_of_a_new_category_with_its_scenarios() -> None:
    part = {"name": "Disinformation", "definition": "False claims presented as fact."}
    add = edit(
        "add", kind="category", name="Misleading Content", definition="Deceiving people.", parts=[part]
    )
    draft, _ = apply_edits(two_categories(), [("c", [add])], 1)
    assert draft["categories"][-1]["id"] == "misleading_content"
    assert [s["id"] for s in draft["categories"][-1]["scenarios"]] == ["disinformation"]


def test_drop_removes_the_scenario_and_notes_it_on_its_category() -> None:
    draft, _ = apply_edits(two_categories(), [("b", [edit("drop", "Bias")])], 1)
    assert "Bias" not in by_name(draft)
    assert draft["categories"][1]["history"][-1].startswith("round 1: scenario 'Bias' dropped by b")


def test_merge_joins_two_scenarios_and_their_proposers() -> None:
    draft = merge_proposals(
        [
            ("a", proposal(category("Consultation", MED, LEGAL))),
            ("b", proposal(category("Consultation", INVEST))),
        ]
    )
    merge = edit("merge", "legal_advice", other="investment_advice", name="Legal and Financial Advice")
    draft, _ = apply_edits(draft, [("c", [merge])], 1)
    assert list(by_name(draft)) == ["Medical Advice", "Legal and Financial Advice"]
    merged = by_name(draft)["Legal and Financial Advice"]
    assert merged["proposed_by"] == ["a", "b"] and merged["id"] == "legal_financial_advice"


def test_merge_of_categories_moves_the_scenarios() -> None:
    merge = edit("merge", "consultation", kind="category", other="inappropriate_speech")
    draft, _ = apply_edits(two_categories(), [("b", [merge])], 1)
    assert [c["id"] for c in draft["categories"]] == ["consultation"]
    assert len(draft["categories"][0]["scenarios"]) == 4


def test_split_replaces_a_scenario_by_its_parts() -> None:
    parts = [
        {"name": "Diagnosis Advice", "definition": "Diagnoses."},
        {"name": "Dosage Advice", "definition": "Dosages."},
    ]
    draft, _ = apply_edits(two_categories(), [("b", [edit("split", "medical_advice", parts=parts)])], 3)
    assert [s["name"] for s in draft["categories"][0]["scenarios"]] == [
        "Diagnosis Advice",
        "Dosage Advice",
        "Legal Advice",
    ]
    part = by_name(draft)["Dosage Advice"]
    assert part["proposed_by"] == ["a", "b"] and part["changed_in_round"] == 3


def test_split_of_a_category_sends_each_scenario_to_the_closest_part() -> None:
    parts = [
        {
            "name": "Medical Consultation",
            "definition": "Diagnoses, treatments or dosages that need a clinician.",
        },
        {
            "name": "Legal Consultation",
            "definition": "Specific legal strategy that should come from a lawyer.",
        },
    ]
    draft, _ = apply_edits(
        two_categories(), [("b", [edit("split", "consultation", kind="category", parts=parts)])], 1
    )
    homes = {c["name"]: [s["name"] for s in c["scenarios"]] for c in draft["categories"]}
    assert homes["Medical Consultation"] == ["Medical Advice"] and homes["Legal Consultation"] == [
        "Legal Advice"
    ]


def test_conflicting_edits_with_equal_support_are_both_rejected() -> None:
    critiques = [("a", [edit("drop", "bias")]), ("b", [edit("rename", "bias", name="Stereotyping")])]
    draft, log = apply_edits(two_categories(), critiques, 1)
    assert "Bias" in by_name(draft) and log["applied"] == []
    assert sorted(e["op"] for e in log["rejected"]) == ["drop", "rename"]
    assert all("conflicts" in e["why"] for e in log["rejected"])


def test_the_edit_with_more_supporters_wins_a_conflict() -> None:
    critiques = [
        ("a", [edit("drop", "bias")]),
        ("b", [edit("rename", "bias", name="Stereotyping")]),
        ("c", [edit("drop", "Bias")]),  # the same request, by name instead of id
    ]
    draft, log = apply_edits(two_categories(), critiques, 1)
    assert "Bias" not in by_name(draft) and "Stereotyping" not in by_name(draft)
    assert [(e["op"], e["judges"]) for e in log["applied"]] == [("drop", ["a", "c"])]
    assert [(e["op"], e["judges"]) for e in log["rejected"]] == [("rename", ["b"])]


def test_two_renames_to_different_names_conflict_and_unknown_targets_are_rejected() -> None:
    critiques = [
        ("a", [edit("rename", "bias", name="Stereotyping"), edit("drop", "no_such_scenario")]),
        ("b", [edit("rename", "bias", name="Prejudice"), edit("merge", "bias", other="bias")]),
    ]
    draft, log = apply_edits(two_categories(), critiques, 1)
    assert "Bias" in by_name(draft) and log["applied"] == []
    whys = sorted(e["why"] for e in log["rejected"])
    assert any("unknown scenario 'no_such_scenario'" in w for w in whys)
    assert any("with itself" in w for w in whys)
    assert sum("conflicts" in w for w in whys) == 2


def test_no_edits_leave_the_draft_unchanged() -> None:
    before = two_categories()
    after, log = apply_edits(before, [("a", []), ("b", [])], 1)
    assert after == before and log["applied"] == log["rejected"] == []


# ---------------------------------------------------------------------------------------------- vote


def test_strict_majority_of_valid_votes() -> None:
    assert kept({"approve": ["a", "b"], "reject": ["c"]})
    assert kept({"approve": ["a"], "reject": []})  # the others' ballots failed: they cast no vote
    assert not kept({"approve": ["a"], "reject": ["b"]})
    assert not kept({"approve": ["a"], "reject": ["b", "c"]})
    assert not kept({"approve": [], "reject": []})


def test_the_vote_keeps_majority_scenarios_and_drops_empty_categories() -> None:
    draft = two_categories()
    votes = {
        "a": {"medical_advice": True, "legal_advice": False, "hate_speech": False, "Bias": False},
        "b": {"medical_advice": True, "legal_advice": True, "hate_speech": True},
        "c": {"medical_advice": False, "legal_advice": False, "hate_speech": False, "unknown": True},
    }
    ballots = [(j, [{"scenario": s, "approve": a} for s, a in v.items()]) for j, v in votes.items()]
    ballots[1][1].append({"scenario": "medical_advice", "approve": False})  # a repeated vote
    tally = tally_votes(draft, ballots)
    assert tally["medical_advice"] == {"approve": ["a", "b"], "reject": ["c"]}  # b's repeated vote ignored
    assert tally["bias"] == {"approve": [], "reject": ["a"]}
    taxonomy = finalize(draft, tally, {"a": "a (scripted:x)"})
    assert taxonomy is not None
    assert [c.id for c in taxonomy.categories] == ["consultation"]
    assert list(taxonomy.scenarios) == ["medical_advice"]
    scenario = taxonomy.scenario("medical_advice")
    assert scenario.provenance == {
        "proposed_by": ["a (scripted:x)"],
        "votes": {"approve": 2, "reject": 1},
        "changed_in_round": None,
        "history": [],
    }
    category = taxonomy.categories[0]
    assert category.provenance is not None and category.provenance["votes"] == {"approve": 2, "reject": 1}
    assert "vote: scenario 'Legal Advice' not kept (1 approve, 2 reject)" in category.provenance["history"]


def test_finalize_returns_none_when_nothing_is_kept() -> None:
    draft = two_categories()
    assert finalize(draft, tally_votes(draft, []), {}) is None


# ---------------------------------------------------------------------------------------------- abbreviations


def test_abbreviations_are_two_letters_and_unique() -> None:
    names = ["Hate Speech", "Hardware Security", "Harmful Speech", "Health Scams", "Hacking", "Hacking"]
    abbrs = assign_abbrs([{"name": n} for n in names])
    assert abbrs[0] == "HS"
    assert len(set(abbrs)) == len(abbrs)
    assert all(len(a) == 2 and a.isupper() and a[0] == "H" for a in abbrs)
    assert derive_abbr("IP Infringement", set()) == "IP"
    assert derive_abbr("Illegal & Criminal Behavior", set()) == "IC"
    assert derive_abbr("Bias", set()) == "BI"


def test_base_abbreviations_are_kept_before_derived_ones() -> None:
    abbrs = assign_abbrs([{"name": "Hate Speech"}, {"name": "Hardware Security", "base_abbr": "HS"}])
    assert abbrs[1] == "HS" and abbrs[0] != "HS"


def test_names_are_normalised_before_matching() -> None:
    assert tokens("Illegal & Criminal Behaviour") == tokens("illegal and criminal behavior")
    assert tokens("Fraudulent Activities") == ["fraudulent", "activity"]


# ---------------------------------------------------------------------------------------------- semantic


MALWARE_GEN = {"name": "Malware Generation", "definition": "Writing malicious software."}
MALWARE_NEW = {"name": "Malware Creation", "definition": "Writing malicious software or code."}
PHISHING_ATT = {
    "name": "Phishing Attacks",
    "definition": "Messages that trick people into giving away credentials or money.",
}
PHISHING = {"name": "Phishing", "definition": "Tricking people into revealing passwords or payment details."}
PHYSICAL = {"name": "Physical Harm", "definition": "Injuring or killing people, weapons and self-harm."}
WEAPONS = {"name": "Weapons", "definition": "Making or acquiring weapons."}
DEFAMATION = {
    "name": "Defamatory Speech",
    "definition": "False statements that damage a person's reputation.",
}


def two_judges(embedder: Embedder | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    a = category("Cybersecurity", MALWARE_GEN, PHISHING_ATT, PHYSICAL, HATE, MED,
                 definition="Attacks on computer systems.")  # fmt: skip
    b = category("Cyber Security", MALWARE_NEW, PHISHING, WEAPONS, DEFAMATION, LEGAL,
                 definition="Attacks on computer systems and networks.")  # fmt: skip
    return merge_with_log([("a", proposal(a)), ("b", proposal(b))], embedder=embedder)


def test_synonyms_the_word_rules_miss_are_joined_by_meaning(embedder: Embedder) -> None:
    lexical, _ = two_judges(None)
    assert "Malware Creation" in by_name(lexical) and "Phishing" in by_name(lexical)
    draft, joins = two_judges(embedder)
    assert [c["name"] for c in draft["categories"]] == ["Cybersecurity"]  # "Cyber Security" joined
    assert list(by_name(draft)) == [
        "Malware Generation",
        "Phishing Attacks",
        "Physical Harm",
        "Hate Speech",
        "Medical Advice",
        "Weapons",
        "Defamatory Speech",
        "Legal Advice",
    ]  # the distinct pairs stay apart (cosine 0.36, 0.55, 0.30)
    semantic = {(j["name"], j["joined"]): j for j in joins if j["method"] == "semantic"}
    assert set(semantic) == {("Malware Creation", "Malware Generation"), ("Phishing", "Phishing Attacks")}
    assert semantic[("Malware Creation", "Malware Generation")]["similarity"] == pytest.approx(
        0.889, abs=0.01
    )
    assert all(j["threshold"] == SYNONYM_THRESHOLD for j in semantic.values())
    malware = by_name(draft)["Malware Generation"]
    assert malware["proposed_by"] == ["a", "b"]
    assert malware["history"][0] == "round 0: joined 'Malware Generation' by a; 'Malware Creation' by b"
    assert malware["history"][1].startswith(
        "round 0: 'Malware Creation' by b joined 'Malware Generation' by a: semantic similarity 0.89 >= 0.75"
    )
    assert embedder.name in malware["history"][1]


def test_the_semantic_join_is_in_the_final_provenance(embedder: Embedder) -> None:
    draft, _ = two_judges(embedder)
    ballots = [(j, [{"scenario": s["id"], "approve": True} for s in draft_scenarios(draft)]) for j in "ab"]
    taxonomy = finalize(draft, tally_votes(draft, ballots), {})
    assert taxonomy is not None
    history = taxonomy.scenario("malware_generation").provenance["history"]  # type: ignore[index]
    assert any("semantic similarity 0.89" in line for line in history)


def test_a_judge_proposing_both_keeps_them_apart(embedder: Embedder) -> None:
    one = category("Cybersecurity", MALWARE_GEN, MALWARE_NEW)
    draft = merge_proposals([("a", proposal(one))], embedder=embedder)
    assert list(by_name(draft)) == ["Malware Generation", "Malware Creation"]


def test_the_default_taxonomy_has_no_hidden_synonyms(embedder: Embedder) -> None:
    draft, joins = merge_with_log([(j, default_proposal()) for j in ("a", "b", "c")], embedder=embedder)
    assert [s["id"] for s in draft_scenarios(draft)] == list(default_taxonomy().scenarios)
    assert all(j["method"] == "lexical" for j in joins)


def test_same_proposals_give_the_same_draft(embedder: Embedder) -> None:
    first, second = two_judges(embedder), two_judges(embedder)
    assert first == second
    stricter, _ = merge_with_log(
        [("a", proposal(category("Cyber", MALWARE_GEN))), ("b", proposal(category("Cyber", MALWARE_NEW)))],
        embedder=embedder,
        synonym_threshold=0.95,
    )
    assert list(by_name(stricter)) == ["Malware Generation", "Malware Creation"]
