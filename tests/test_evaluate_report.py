"""report.html renders in headless Chromium with its tables, plot and image grid (skips when Chromium is absent;
`scripts/setup_chromium.sh` installs it)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from retinalogos_hub.evaluate.report import Report, Table, bar_plot, write_report

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (run scripts/setup_chromium.sh)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def test_report_renders_in_chromium(tmp_path, fundus):
    report = Report(
        "fid",
        "FID / KID",
        {"FID synth vs aptos": 56.08, "images": 12},
        [
            Table(
                "FID (lower is better)",
                ["set", "aptos", "eyepacs"],
                [["synth", 56.08, 42.44], ["real vs real (halves)", 47.1, float("nan")]],
            )
        ],
        grids=[("synth (first images)", [(str(i), fundus(64, seed=i)) for i in range(3)])],
        plots=[("FID", bar_plot("FID per real set", ["aptos", "eyepacs"], {"synth": [56.08, 42.44]}, "FID"))],
    )
    json_path, html_path = write_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text())["tables"][0]["rows"][1][2] is None  # NaN -> null, valid JSON

    dom = _chromium(tmp_path, "--dump-dom", html_path.as_uri())
    assert '<h1 id="title">FID / KID</h1>' in dom
    assert "<td>56.080</td>" in dom and "<td>n/a</td>" in dom and "real vs real (halves)" in dom
    assert dom.count('src="data:image/png;base64,') == 4  # one plot + three grid thumbnails

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=900,1400", html_path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    blue = np.abs(pixels - [31, 119, 180]).sum(1) < 30  # matplotlib's first bar colour: the plot image rendered
    # the fundus thumbnails
    orange = (pixels[:, 0] > 150) & (pixels[:, 1] > 60) & (pixels[:, 1] < 130) & (pixels[:, 2] < 70)
    assert blue.sum() > 500 and orange.sum() > 500


def test_memorization_and_fidelity_reports_render_in_chromium(tmp_path, fundus):
    """The new evaluation reports (side-by-side near-copy pairs, laterality tables) render with their images."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    from retinalogos_hub.evaluate.fidelity import fidelity
    from retinalogos_hub.evaluate.memorization import memorization

    train, fake = tmp_path / "train", tmp_path / "fake"
    train.mkdir()
    fake.mkdir()
    for i in range(6):
        fundus(64, seed=i).save(train / f"t{i}.png")
    fundus(64, seed=1).save(fake / "copy.png")
    fundus(64, seed=50).save(fake / "new.png")
    mem = memorization(train, fake, tmp_path / "mem", features="pixels")
    dom = _chromium(tmp_path, "--dump-dom", (mem.out / "report.html").as_uri())
    assert "Near copy 1" in dom and dom.count('src="data:image/png;base64,') >= 3  # the plot + one pair

    ds = Dataset.from_dict(
        {"image": [fundus(128, seed=i, eye="left") for i in range(3)], "eye": ["left"] * 3, "dr_grade": [0, 1, 2]},
        features=Features({"image": ImageFeature(), "eye": Value("string"), "dr_grade": Value("int8")}),
    )
    ds.save_to_disk(str(tmp_path / "synth"))
    fid = fidelity(tmp_path / "synth", tmp_path / "fidelity")
    dom = _chromium(tmp_path, "--dump-dom", (fid.out / "report.html").as_uri())
    assert "Laterality (optic disc side)" in dom and dom.count('src="data:image/png;base64,') == 3
