"""EyePACS orientation (per-source setting): a rim notch means upright; a photo without one is rotated 180 degrees
only when its optic disc is clearly on the wrong side for the labelled eye, and the manifest says what was decided
and why."""

import json
from dataclasses import replace

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from retinalogos_hub.config import load_config
from retinalogos_hub.curate import CurateConfig, curate, merge
from retinalogos_hub.curate.fov import Fov
from retinalogos_hub.curate.process import AGREES, NO_EYE, ROTATED, UNSURE, UPRIGHT, orient
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.demo.layouts import write_layout
from retinalogos_hub.errors import InputError, SourceError

CFG = replace(load_config(CurateConfig), size=128, format="png", commit_every=2)  # PNG: compare pixel for pixel
FOV = CFG.fov
CHECKED = (UPRIGHT, ROTATED, AGREES, UNSURE, NO_EYE)


def _no_disc(w=640, h=480, seed=0):
    """A fundus-coloured field with no optic disc (nothing to tell the side by)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    cv2.circle(img, (w // 2, h // 2), int(0.46 * h), (190, 90, 40), -1)
    return Image.fromarray(np.clip(img + rng.normal(0, 4, img.shape) * (img > 0), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """eyepacs with an upright notched left eye, an inverted (no notch) right eye, an upright un-notched left eye and
    an un-notched field with no optic disc; aptos with an un-notched photo (APTOS cameras have no notch convention).
    Each eyepacs photo is drawn for the eye its file name labels."""
    root = tmp_path_factory.mktemp("raw")
    eyepacs = write_layout("eyepacs", root / "eyepacs", n=4, seed=0)
    aptos = write_layout("aptos", root / "aptos", n=2, seed=1)
    train = sorted((eyepacs / "train").glob("*.jpeg"))  # 10_left, 10_right
    test = sorted((eyepacs / "test").glob("*.jpeg"))  # 16_left, 16_right
    assert [p.stem.split("_")[1] for p in train + test] == ["left", "right", "left", "right"]
    # big enough that the draft decode for 128 px keeps the small notch (fundus_image's cut is 4% of the radius)
    fundus_image(640, 480, seed=7, eye="left", notch=True, truncate=0.1).save(train[0], "JPEG", quality=92)
    # taken through a condensing lens: the whole picture turned 180 degrees, and the camera adds no notch
    fundus_image(640, 480, seed=3, eye="right", notch=False).rotate(180).save(train[1], "JPEG", quality=92)
    # upright with no notch (a camera that marks nothing, or a notch too small to see): the disc says it is upright
    fundus_image(640, 480, seed=0, eye="left", notch=False).save(test[0], "JPEG", quality=92)
    _no_disc().save(test[1], "JPEG", quality=92)
    plain = sorted((aptos / "train_images").glob("*.png"))[0]
    fundus_image(640, 480, seed=9, eye="right", notch=False).save(plain, "PNG")
    return {
        "sources": [("eyepacs", eyepacs), ("aptos", aptos)],
        "upright": train[0],
        "inverted": train[1],
        "unnotched": test[0],
        "no_disc": test[1],
        "plain": plain,
    }


def _run(raw, out, **cfg):
    return curate(raw["sources"], out, cfg=replace(CFG, **cfg), progress=False)


@pytest.fixture(scope="module")
def runs(raw, tmp_path_factory):
    return {
        on: _run(raw, tmp_path_factory.mktemp(f"rotate-{on}"), **({} if on else {"rotate_unnotched": []}))
        for on in (True, False)
    }


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
        assert (r["orientation"] in CHECKED) if checked else r["orientation"] is None, r


def test_unnotched_photo_is_turned_only_against_its_disc(raw, runs):
    on, off = _outputs(runs[True]), _outputs(runs[False])
    for key, expected in (("unnotched", AGREES), ("no_disc", UNSURE)):
        (row, img), (_, img_off) = on[str(raw[key])], off[str(raw[key])]
        assert row["status"] == "kept" and row["orientation"] == expected, row
        assert np.array_equal(img, img_off)  # left as taken
    assert _disc_x(on[str(raw["unnotched"])][1]) < -10  # a left eye's disc, on the left


def test_orient_cases(fundus):
    from retinalogos_hub.curate.fov import crop_square, detect_fov

    def case(img, eye, notch=None, size=128):
        a = np.asarray(img)
        f = detect_fov(a, FOV)
        return orient(crop_square(a, f, size), Fov(f.cx, f.cy, f.r, f.visible, f.fill, notch), eye)

    up = fundus(640, 480, seed=0, eye="right", notch=False)
    assert case(up, "right") == AGREES and case(up.rotate(180), "right") == ROTATED
    assert case(up, "left") == ROTATED and case(up.rotate(180), "left") == AGREES  # the label decides which is wrong
    assert case(up.rotate(180), "right", notch=45.0) == UPRIGHT  # a notch wins over the disc
    assert case(up.rotate(180), None) == NO_EYE
    assert case(_no_disc(), "right") == UNSURE
    # too few pixels to tell the disc from a lesion dot: no call, even where the disc is clearly drawn
    assert case(up.rotate(180), "right", size=64) == UNSURE


def test_small_photos_with_missed_notches_stay_upright(tmp_path):
    """The demo's case: 160 px EyePACS miniatures, all upright, a third drawn without a notch (and notches of a few
    pixels are easily missed): nothing may be turned."""
    root = write_layout("eyepacs", tmp_path / "eyepacs", n=12, seed=0, size=160)
    result = curate([("eyepacs", root)], tmp_path / "out", cfg=CFG, progress=False)
    found = [r["orientation"] for r in pq.read_table(result.out / "manifest.parquet").to_pylist()]
    assert len(found) == 12 and ROTATED not in found, found
    assert set(found) <= {UPRIGHT, AGREES, UNSURE} and {AGREES, UNSURE} & set(found)  # un-notched ones, left alone


def test_off_means_the_plain_crop(raw, runs):
    from retinalogos_hub.curate.fov import crop_square, detect_fov

    src = np.asarray(Image.open(raw["inverted"]).convert("RGB"))
    _, img = _outputs(runs[False])[str(raw["inverted"])]
    expected = crop_square(src, detect_fov(src, FOV), CFG.size)
    assert np.abs(img.astype(int) - expected).mean() < 2  # same pixels, up to the decoder's DCT scaling


def test_orientation_setting_is_part_of_the_work_key(raw, runs, tmp_path):
    with pytest.raises(InputError, match=r"made with rotate_unnotched=\['eyepacs'\] \(now \[\]\)"):
        _run(raw, runs[True].out, rotate_unnotched=[])
    with pytest.raises(SourceError, match="rotate_unnotched.*unknown source 'eyepaks'"):
        _run(raw, tmp_path / "x", rotate_unnotched=["eyepaks"])


def test_merge_refuses_shards_from_an_older_version(raw, tmp_path):
    part = tmp_path / "part"
    curate(raw["sources"], part, cfg=CFG, shard=(0, 1), progress=False)
    state_file = part / ".work" / "curate" / "shard-0-of-1" / "state.json"
    state = json.loads(state_file.read_text())
    assert merge([part], tmp_path / "merged").kept > 0
    state_file.write_text(json.dumps({**state, "settings": {**state["settings"], "version": 1}}))
    with pytest.raises(InputError, match="older version"):
        merge([part], tmp_path / "merged2")
