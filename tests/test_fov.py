"""FOV detection, crop and the quality score on procedural fundus images and on non-fundus images."""

import cv2
import numpy as np
import pytest

from retinalogos_hub.curate.fov import crop_square, detect_fov
from retinalogos_hub.curate.quality import quality_score


def _expected_radius(w, h, fov=0.92, truncate=0.0):
    # mirrors demo.fundus.fundus_image's geometry
    r = fov * min(w, h) / 2 / (1 - truncate) if truncate else fov * min(w, h) / 2
    return min(r, w / 2 - 1)


@pytest.mark.parametrize("w,h", [(256, 256), (384, 256), (900, 600)])
@pytest.mark.parametrize("notch", [False, True])
def test_full_circle(fundus, w, h, notch):
    f = detect_fov(np.asarray(fundus(w, h, seed=3, notch=notch)))
    assert f is not None
    assert f.cx == pytest.approx(w / 2, abs=0.02 * w) and f.cy == pytest.approx(h / 2, abs=0.02 * h)
    assert f.r == pytest.approx(_expected_radius(w, h), rel=0.03)
    assert f.visible > 0.97


@pytest.mark.parametrize("truncate", [0.2, 0.3])
def test_truncated_circle_recovers_true_radius(fundus, truncate):
    w, h = 450, 300
    f = detect_fov(np.asarray(fundus(w, h, seed=1, truncate=truncate)))
    r = _expected_radius(w, h, truncate=truncate)
    assert r > h / 2  # the circle really is cut at top and bottom
    assert f.r == pytest.approx(r, rel=0.03)
    assert f.cy == pytest.approx(h / 2, abs=3)
    assert f.visible < 0.97


def test_truncated_crop_is_padded_square(fundus):
    img = np.asarray(fundus(450, 300, seed=1, truncate=0.2))
    f = detect_fov(img)
    sq = crop_square(img, f, 128)
    assert sq.shape == (128, 128, 3)
    assert sq[:4].max() <= 8 and sq[-4:].max() <= 8  # rows above/below the frame are black padding
    assert sq[60:68, 60:68].mean() > 60  # the centre of the field is there


def test_dark_image(fundus):
    img = (np.asarray(fundus(384, 256, seed=2)).astype(np.float32) * 0.15).astype(np.uint8)
    f = detect_fov(img)
    assert f is not None and f.r == pytest.approx(_expected_radius(384, 256), rel=0.04)


@pytest.mark.parametrize("kind", ["noise", "grey", "black", "rectangle", "gradient", "text"])
def test_non_fundus_images_have_no_fov(kind):
    rng = np.random.default_rng(0)
    h, w = 240, 320
    img = {
        "noise": lambda: rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "grey": lambda: np.full((h, w, 3), 128, np.uint8),
        "black": lambda: np.zeros((h, w, 3), np.uint8),
        "rectangle": lambda: cv2.rectangle(np.zeros((h, w, 3), np.uint8), (40, 30), (280, 210), (220, 200, 180), -1),
        "gradient": lambda: np.dstack([np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))] * 3),
        "text": lambda: cv2.putText(np.full((h, w, 3), 245, np.uint8), "REPORT 2019", (20, 120),
                                    cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3),
    }[kind]()
    assert detect_fov(img) is None


def test_quality_score_orders_sharp_blurred_dark(fundus):
    img = np.asarray(fundus(384, 256, seed=4, dr_grade=2))

    def score(a):
        f = detect_fov(a)
        return quality_score(crop_square(a, f, 256), f)

    sharp, blurred = score(img), score(cv2.GaussianBlur(img, (0, 0), 4))
    dark = score((img.astype(np.float32) * 0.2).astype(np.uint8))
    assert 0.0 <= blurred < sharp <= 1.0 and dark < sharp
    assert sharp > 0.8 and blurred < 0.7 and dark < 0.6


def test_dark_region_reaching_the_rim(fundus):
    """A dim field whose dark centre merges with the surround at the bottom (seen on real EyePACS images): the hull
    still gives the true circle."""
    w, h = 384, 288
    img = (np.asarray(fundus(w, h, seed=5, notch=False)).astype(np.float32) * 0.35).astype(np.uint8)
    wedge = np.array([[w // 2 - 30, h // 2 - 20], [w // 2 + 30, h // 2 - 20], [w // 2 + 80, h], [w // 2 - 80, h]])
    cv2.fillPoly(img, [wedge], (2, 2, 2))
    f = detect_fov(img)
    assert f is not None
    assert f.r == pytest.approx(_expected_radius(w, h), rel=0.03)
    assert (f.cx, f.cy) == (pytest.approx(w / 2, abs=4), pytest.approx(h / 2, abs=4))
