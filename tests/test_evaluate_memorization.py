"""`evaluate memorization`: planted copies of training images among synthetic ones are flagged (re-encoded, slightly
resized), clean synthetic images are not; report.json lists near_copies; the pairs are shown side by side."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.evaluate.memorization import memorization

COPIED = (3, 7, 11)


@pytest.fixture
def sets(tmp_path, fundus):
    train, fake, holdout = (tmp_path / n for n in ("train", "fake", "holdout"))
    for d in (train, fake, holdout):
        d.mkdir()
    for i in range(20):
        fundus(64, seed=i, dr_grade=i % 5, eye="left" if i % 2 else "right").save(train / f"t{i:02d}.png")
    for i in range(8):
        fundus(64, seed=100 + i, dr_grade=i % 5, eye="left" if i % 2 else "right").save(holdout / f"h{i:02d}.png")
    for i in range(10):  # clean: new draws from the same distribution
        fundus(64, seed=200 + i, dr_grade=i % 5, eye="left" if i % 2 else "right").save(fake / f"f{i:02d}.png")
    for i in COPIED:  # planted: a training image, JPEG re-encoded and resized 64 -> 60 -> 64
        buf = io.BytesIO()
        Image.open(train / f"t{i:02d}.png").resize((60, 60)).resize((64, 64)).save(buf, "JPEG", quality=85)
        Image.open(buf).save(fake / f"copy-of-t{i:02d}.png")
    return train, fake, holdout


@pytest.mark.parametrize("features", ["pixels", pytest.param("tiny:dinov2", marks=pytest.mark.slow)])
def test_planted_copies_are_flagged_and_clean_images_are_not(sets, tmp_path, features):
    train, fake, holdout = sets
    out = tmp_path / "mem"
    args = ["evaluate", "memorization", "--train", str(train), "--fake", str(fake), "--holdout", str(holdout)]
    res = CliRunner().invoke(app, [*args, "-o", str(out), "--features", features, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    flagged = {(c["fake"].rsplit("/", 1)[-1], c["train"].rsplit("/", 1)[-1]) for c in report["near_copies"]}
    assert flagged == {(f"copy-of-t{i:02d}.png", f"t{i:02d}.png") for i in COPIED}
    assert all(c["distance"] < report["threshold"] for c in report["near_copies"])
    assert report["summary"]["near copies"] == 3 and report["counts"]["holdout"] == 8
    html = (out / "report.html").read_text()
    assert html.count("Near copy ") == 3 and "synthetic " in html and "training " in html  # the pairs, side by side
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate memorization" and prov["config"]["features"] == features
    assert set(prov["inputs"]) == {"train", "fake", "holdout"} and prov["counts"]["near_copies"] == 3


def test_without_holdout_a_share_of_train_is_the_yardstick_and_a_clean_set_has_no_copies(sets, tmp_path, fundus):
    train, _, holdout = sets
    res = memorization(train, holdout, tmp_path / "m", features="pixels")
    assert res.near_copies == [] and res.counts["holdout"] == 4  # 20% of the 20 training images
    # a generator that returns its training set verbatim: everything is a copy, and closer than unseen real images
    res = memorization(train, train, tmp_path / "m2", features="pixels")
    assert len(res.near_copies) == 20 and res.p_value < 1e-3


def test_bad_inputs(sets, tmp_path):
    train, fake, _ = sets
    with pytest.raises(InputError, match="--train"):
        memorization(tmp_path / "missing", fake, tmp_path / "m")
    with pytest.raises(ConfigError, match="quantile"):
        memorization(train, fake, tmp_path / "m", overrides=["quantile=2"])
