"""`evaluate fidelity`: a frozen grader vs the requested grade (accuracy, QWK) and laterality from the optic disc."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from sklearn.metrics import accuracy_score, cohen_kappa_score
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import InputError
from retinalogos_hub.evaluate.fidelity import fidelity

N = 12


@pytest.fixture
def synth(tmp_path, fundus):
    grades = [i % 5 for i in range(N)]
    eyes = ["left" if i % 2 else "right" for i in range(N)]
    ds = Dataset.from_dict(
        {
            "image": [
                fundus(256, seed=i, dr_grade=g, eye=e, notch=False) for i, (g, e) in enumerate(zip(grades, eyes))
            ],
            "id": [f"synthetic/{i}" for i in range(N)],
            "dr_grade": grades,
            "eye": eyes,
        },
        features=Features(
            {"image": ImageFeature(), "id": Value("string"), "dr_grade": Value("int8"), "eye": Value("string")}
        ),
    )
    ds.save_to_disk(str(tmp_path / "synth"))
    return tmp_path / "synth"


@pytest.fixture
def grader(tmp_path):
    """A tiny random ResNet with five classes (a stand-in for a DR grader)."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    from retinalogos_hub.models import resolve

    src = resolve("tiny:resnet")
    model = AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(src, num_labels=5))
    model.save_pretrained(tmp_path / "grader")
    AutoImageProcessor.from_pretrained(src).save_pretrained(tmp_path / "grader")
    return tmp_path / "grader"


def test_fidelity_grades_and_checks_laterality(synth, grader, tmp_path):
    out = tmp_path / "fid"
    res = CliRunner().invoke(
        app, ["evaluate", "fidelity", "--data", str(synth), "--grader", str(grader), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    preds = list(report["predictions"].values())
    refs = [i % 5 for i in range(N)]
    assert len(preds) == N and report["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    assert report["qwk"] == pytest.approx(cohen_kappa_score(refs, preds, labels=range(5), weights="quadratic"))
    assert sum(map(sum, report["confusion_matrix"])) == N
    # procedural images put the disc on the nasal side: the detector reads the requested eye back
    assert report["laterality_decided"] >= 0.75 and report["laterality_accuracy"] >= 0.9
    assert "Confusion matrix" in (out / "report.html").read_text()
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate fidelity" and set(prov["inputs"]) == {"data", "grader"}


def test_a_flipped_set_fails_laterality_and_a_wrong_grader_is_refused(synth, tmp_path):
    from datasets import load_from_disk

    ds = load_from_disk(str(synth))
    flipped = ds.map(lambda r: {"eye": "left" if r["eye"] == "right" else "right"})
    flipped.save_to_disk(str(tmp_path / "flipped"))
    res = fidelity(tmp_path / "flipped", tmp_path / "f")
    assert res.accuracy is None and res.laterality_accuracy <= 0.1
    with pytest.raises(InputError, match="2 classes"):
        fidelity(synth, tmp_path / "g", grader="tiny:resnet")
    folder = tmp_path / "pngs"
    folder.mkdir()
    ds[0]["image"].save(folder / "a.png")
    with pytest.raises(InputError, match="image folder"):
        fidelity(folder, tmp_path / "h")
