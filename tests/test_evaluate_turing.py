"""`evaluate turing-kit` / `turing-score`: blinded sheet -> filled CSV -> score, provenance, and malformed answers."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.evaluate.turing import turing_kit, turing_score


@pytest.fixture
def kit(tmp_path, fundus):
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        for i in range(5):
            fundus(48, seed=i + (100 if name == "fake" else 0)).save(tmp_path / name / f"{name}_{i}.png")
    args = [
        "evaluate",
        "turing-kit",
        "--real",
        str(tmp_path / "real"),
        "--fake",
        str(tmp_path / "fake"),
        "-o",
        str(tmp_path / "kit"),
        "n_real=4",
        "n_fake=4",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return tmp_path / "kit"


def _fill(kit, path, judge, rating):
    key = json.loads((kit / "key.json").read_text())["cases"]
    with open(kit / "sheet" / "answers.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["judgement"] = judge(r["case"], key[r["case"]]["real"])
        r["optic_disc"] = r["vessels"] = r["macula"] = str(rating(key[r["case"]]["real"]))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_turing_round_trip(kit, tmp_path):
    sheet = kit / "sheet"
    assert sorted(p.name for p in (sheet / "images").iterdir()) == [f"case-{i:03d}.jpg" for i in range(1, 9)]
    html = (sheet / "index.html").read_text()
    assert "case-008" in html and "real_" not in html and "fake" not in html  # blinded: no file names leak
    key = json.loads((kit / "key.json").read_text())["cases"]
    assert sum(v["real"] for v in key.values()) == 4 and not (sheet / "key.json").exists()
    assert [v["real"] for v in key.values()] != [True] * 4 + [False] * 4  # shuffled
    prov = json.loads((kit / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate turing-kit"
    shipped = {"size": 1024, "format": "jpeg", "jpeg_quality": 92, "seed": 0}
    assert prov["config"] == {"n_real": 4, "n_fake": 4, **shipped}  # overrides on the shipped recipe
    assert set(prov["inputs"]) == {"real:real", "fake:fake"}
    assert prov["counts"] == {"cases": 8, "real": 4, "synthetic": 4}

    # grader 1 calls every image real; grader 2 spots half the synthetic ones (the lower-numbered)
    fakes = sorted(c for c, v in key.items() if not v["real"])
    g1 = _fill(kit, tmp_path / "g1.csv", lambda c, real: "real", lambda real: 5 if real else 3)
    g2 = _fill(
        kit,
        tmp_path / "g2.csv",
        lambda c, real: "real" if real or c in fakes[2:] else "synthetic",
        lambda real: 4 if real else 2,
    )
    res = CliRunner().invoke(app, ["evaluate", "turing-score", str(kit), "--answers", str(g1), "--answers", str(g2)])
    assert res.exit_code == 0, res.output
    score = turing_score(kit, [g1, g2])
    assert score.synthetic_judged_real == pytest.approx(75.0)  # (4 + 2) of 8 synthetic answers
    assert score.per_grader["g1"]["synthetic judged real %"] == 100.0 and score.per_grader["g2"]["accuracy %"] == 75.0
    assert score.structures["optic_disc"] == {"real": 4.5, "synthetic": 2.5}
    assert score.structures["lesions"]["real"] != score.structures["lesions"]["real"]  # left blank: NaN
    report = json.loads((kit / "score" / "report.json").read_text())
    assert report["structures"]["lesions"]["real"] is None and report["summary"]["synthetic judged real %"] == 75.0
    prov = json.loads((kit / "score" / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate turing-score" and prov["config"] == {}
    assert set(prov["inputs"]) == {"kit", "answers:g1", "answers:g2"}
    assert prov["counts"] == {"answers": 16, "graders": 2}
    # agreement: g1 says real throughout, g2 varies: Cohen's kappa 0 (no agreement beyond chance)
    assert report["agreement"]["pairs"]["g1 vs g2"] == {"cohen_kappa": 0.0, "cases": 8}
    assert report["agreement"]["cases"] == 8 and report["agreement"]["fleiss_kappa"] < 0.1


def test_sheet_images_carry_no_camera_metadata(tmp_path, fundus):
    """A real JPEG's ICC profile / EXIF would tell real from synthetic in a blinded sheet."""
    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0110] = "FundusCam 9000"
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        fundus(48, seed=1).save(tmp_path / name / "a.jpg", icc_profile=icc, exif=exif.tobytes())
    kit = turing_kit(
        [str(tmp_path / "real")], [str(tmp_path / "fake")], tmp_path / "kit", overrides=["n_real=1", "n_fake=1"]
    )
    for png in (kit.sheet / "images").iterdir():
        data = png.read_bytes()
        assert b"iCCP" not in data and b"eXIf" not in data and b"FundusCam" not in data
        assert b"ICC_PROFILE" not in data and b"Exif" not in data


def test_turing_bad_answers(kit, tmp_path):
    good = _fill(kit, tmp_path / "g.csv", lambda c, real: "real", lambda real: 3)
    text = good.read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace("case-001", "case-999"))
    with pytest.raises(InputError, match=r"bad.csv:\d+: unknown case 'case-999'"):
        turing_score(kit, [bad])
    bad.write_text(text.replace(",real,", ",maybe,", 1))
    with pytest.raises(InputError, match="judgement 'maybe'.*write real or synthetic"):
        turing_score(kit, [bad])
    bad.write_text(text.replace(",3,", ",7,", 1))
    with pytest.raises(InputError, match="rating '7'"):
        turing_score(kit, [bad])
    with pytest.raises(InputError, match="key.json"):
        turing_score(tmp_path, [good])
    with pytest.raises(InputError, match="n_real=9: .*only 5 available"):
        turing_kit([tmp_path / "real"], [tmp_path / "fake"], tmp_path / "k2", overrides=["n_real=9", "n_fake=1"])
    with pytest.raises(ConfigError, match="size >= 8"):
        turing_kit([tmp_path / "real"], [tmp_path / "fake"], tmp_path / "k2", overrides=["size=2"])


def test_real_and_synthetic_sheet_images_are_made_alike(tmp_path, fundus):
    """A large real JPEG and a small synthetic PNG leave the kit in one size, one format, one encoder setting."""
    from PIL import Image

    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    fundus(300, 200, seed=1).save(tmp_path / "real" / "photo.jpg", quality=75)
    fundus(64, seed=2).save(tmp_path / "fake" / "synthetic.png")
    kit = turing_kit(
        [tmp_path / "real"], [tmp_path / "fake"], tmp_path / "kit", overrides=["n_real=1", "n_fake=1", "size=128"]
    )
    files = sorted((kit.sheet / "images").iterdir())
    seen = set()
    for f in files:
        with Image.open(f) as im:
            seen.add((im.format, im.size, im.mode, tuple(sorted(im.info))))
    assert len(files) == 2 and len(seen) == 1 and next(iter(seen))[:2] == ("JPEG", (128, 128))


def test_fleiss_kappa_matches_the_textbook_example():
    import numpy as np

    from retinalogos_hub.evaluate.turing import fleiss_kappa

    # Fleiss (1971) style check: perfect agreement is 1; raters split at random on balanced cases give ~ -1/(n-1)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[1, 1], [1, 1]])) == pytest.approx(-1.0)
    # Wikipedia's worked example (10 cases, 14 raters, 5 categories): 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)
