"""The caption guard on its own labelled suite (tests/data/guard_cases.yaml): recall >= 95%, false flags <= 2%."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retinalogos_hub.caption.guard import check

CASES = yaml.safe_load((Path(__file__).parent / "data" / "guard_cases.yaml").read_text())


def _row(case: dict) -> dict:
    return {**case["labels"], **({"caption_fields": case["fields"]} if case.get("fields") else {})}


def test_suite_covers_every_label_with_both_kinds():
    assert len(CASES) >= 150 and len({(c["caption"], str(c["labels"])) for c in CASES}) == len(CASES)
    for label in ("dr_grade", "eye", "glaucoma", "dme", "diseases"):
        kinds = {c["flag"] for c in CASES if label in c["labels"]}
        assert kinds == {True, False}, label
    assert {c["labels"]["dr_grade"] for c in CASES if "dr_grade" in c["labels"]} == {0, 1, 2, 3, 4}


def test_recall_and_false_flag_rate(capsys):
    missed = [c["caption"] for c in CASES if c["flag"] and not check(c["caption"], _row(c))]
    invented = [
        (c["caption"], check(c["caption"], _row(c))) for c in CASES if not c["flag"] and check(c["caption"], _row(c))
    ]
    positives = sum(c["flag"] for c in CASES)
    recall = 1 - len(missed) / positives
    false_flags = len(invented) / (len(CASES) - positives)
    with capsys.disabled():
        print(f"\nguard suite: {len(CASES)} captions, recall {recall:.3f}, false-flag rate {false_flags:.3f}")
    assert recall >= 0.95, missed
    assert false_flags <= 0.02, invented


@pytest.mark.parametrize(
    "caption,row,needle",
    [
        ("Neovascularisation at the disc.", dict(dr_grade=2), "grade >= 4"),
        ("Pan-retinal photocoagulation scars.", dict(dr_grade=1), "grade >= 3"),
        ("Fundus OD.", dict(eye="left"), "says right eye"),
        ("The macula is healthy.", dict(dme=1), "macula normal"),
        ("No drusen.", dict(diseases=["amd"]), "denies drusen"),
        ("Disc pink.", dict(dr_grade=0, caption_fields={"lesions": "Blot haemorrhages."}), "caption_fields.lesions:"),
    ],
)
def test_issue_names_the_rule_and_the_field(caption, row, needle):
    assert any(needle in i for i in check(caption, row)), check(caption, row)


def test_hedges_are_neither_findings_nor_denials():
    assert check("Neovascularisation cannot be excluded.", dict(dr_grade=0)) == []
    assert check("Possible microaneurysms?", dict(dr_grade=0)) == []
    assert check("Suspicious for glaucoma.", dict(glaucoma=False)) == []
    assert check("Macular oedema cannot be ruled out.", dict(dme=0)) == []
