"""EyePACS orientation: photos without the rim notch are rotated 180 degrees (per-source setting), and the manifest
says what was done."""

import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from retinalogos_hub.curate import CurateConfig, curate, merge
from retinalogos_hub.curate.process import ROTATED, UPRIGHT
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.demo.layouts import write_layout
from retinalogos_hub.errors import InputError, SourceError

CFG = dict(size=128, format="png", commit_every=2)  # PNG: outputs compare pixel for pixel


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """eyepacs with one upright (notched) and one inverted (no notch) right-eye photo, and aptos with an un-notched
    photo (APTOS cameras have no notch convention)."""
    root = tmp_path_factory.mktemp("raw")
    eyepacs = write_layout("eyepacs", root / "eyepacs", n=4, seed=0)
    aptos = write_layout("aptos", root / "aptos", n=2, seed=1)
    train = sorted((eyepacs / "train").glob("*.jpeg"))
    # big enough that the draft decode for 128 px keeps the small notch (fundus_image's cut is 4% of the radius)
    fundus_image(640, 480, seed=7, eye="right", notch=True, truncate=0.1).save(train[0], "JPEG", quality=92)
    # taken through a condensing lens: the whole picture turned 180 degrees, and the camera adds no notch
    fundus_image(640, 480, seed=8, eye="right", notch=False).rotate(180).save(train[1], "JPEG", quality=92)
    plain = sorted((aptos / "train_images").glob("*.png"))[0]
    fundus_image(640, 480, seed=9, eye="right", notch=False).save(plain, "PNG")
    return {"sources": [("eyepacs", eyepacs), ("aptos", aptos)], "upright": train[0], "inverted": train[1], "plain": plain}


def _run(raw, out, **cfg):
    return curate(raw["sources"], out, cfg=CurateConfig(**CFG, **cfg), progress=False)


@pytest.fixture(scope="module")
def runs(raw, tmp_path_factory):
    return {on: _run(raw, tmp_path_factory.mktemp(f"rotate-{on}"), **({} if on else {"rotate_unnotched": []}))
            for on in (True, False)}


def _outputs(result):
    """{input path: (manifest row, curated pixels or None)}"""
    import datasets

    ds = datasets.load_from_disk(str(result.out))
    pixels = {r["id"]: np.asarray(r["image"].convert("RGB")) for r in ds}
    return {r["path"]: (r, pixels.get(r["id"])) for r in pq.read_table(result.out / "manifest.parquet").to_pylist()}


def _disc_x(square):
    """Column of the optic disc (the brightest blob) relative to the centre."""
    g = cv2.GaussianBlur(square.astype(np.float32).sum(axis=2), (0, 0), 3)
    return np.unravel_index(np.argmax(g), g.shape)[1] - square.shape[1] / 2


def test_unnotched_eyepacs_photo_is_rotated(raw, runs):
    on, off = _outputs(runs[True]), _outputs(runs[False])
    row, img = on[str(raw["inverted"])]
    row_off, img_off = off[str(raw["inverted"])]
    assert row["status"] == "kept" and row["orientation"] == ROTATED
    assert np.array_equal(img, img_off[::-1, ::-1])  # exactly the unrotated crop turned 180 degrees
    # a right eye photographed through the lens has its disc on the left; turned back, on the right (as drawn)
    assert _disc_x(img_off) < -10 and _disc_x(img) > 10
    assert row_off["orientation"] is None


def test_notched_photo_and_other_sources_are_untouched(raw, runs):
    on, off = _outputs(runs[True]), _outputs(runs[False])
    up, up_off = on[str(raw["upright"])], off[str(raw["upright"])]
    assert up[0]["orientation"] == UPRIGHT and np.array_equal(up[1], up_off[1])
    plain, plain_off = on[str(raw["plain"])], off[str(raw["plain"])]  # aptos: not a notch-marking source
    assert plain[0]["orientation"] is None and np.array_equal(plain[1], plain_off[1])
    assert all(r["orientation"] is None for r, _ in off.values())  # setting off: nothing checked or turned
    for r, _ in on.values():  # every kept or duplicate EyePACS row says what was done; excluded rows nothing
        checked = r["source"] == "eyepacs" and r["status"] != "excluded"
        assert (r["orientation"] in (UPRIGHT, ROTATED)) if checked else r["orientation"] is None, r


def test_off_means_the_plain_crop(raw, runs):
    from retinalogos_hub.curate.fov import crop_square, detect_fov

    src = np.asarray(Image.open(raw["inverted"]).convert("RGB"))
    _, img = _outputs(runs[False])[str(raw["inverted"])]
    expected = crop_square(src, detect_fov(src), CFG["size"])
    assert np.abs(img.astype(int) - expected).mean() < 2  # same pixels, up to the decoder's DCT scaling


def test_orientation_setting_is_part_of_the_work_key(raw, runs, tmp_path):
    with pytest.raises(InputError, match="different image settings"):
        _run(raw, runs[True].out, rotate_unnotched=[])
    with pytest.raises(SourceError, match="rotate_unnotched.*unknown source 'eyepaks'"):
        _run(raw, tmp_path / "x", rotate_unnotched=["eyepaks"])


def test_merge_refuses_shards_from_an_older_version(raw, tmp_path):
    part = tmp_path / "part"
    curate(raw["sources"], part, cfg=CurateConfig(**CFG), shard=(0, 1), progress=False)
    state_file = part / ".work" / "shard-0-of-1" / "state.json"
    state = json.loads(state_file.read_text())
    assert merge([part], tmp_path / "merged").kept > 0
    state_file.write_text(json.dumps({**state, "version": 1}))
    with pytest.raises(InputError, match="older version"):
        merge([part], tmp_path / "merged2")
