"""A fast image-quality score in [0, 1] for a FOV-cropped fundus square (stored as `quality_score`).

It is a screening aid next to the source's own `quality` label, not a replacement: the product of three terms,
each in [0, 1], so any one failure (a heavily truncated field, a dark or washed-out or unevenly lit field, a blurred
field) pulls the score down.
"""

from __future__ import annotations

import cv2
import numpy as np

from .fov import Fov, circle_mask

SIDE = 256  # scored at a fixed size so the focus term does not depend on the configured output size
FOCUS_SCALE = 30.0  # Laplacian variance (green channel, 256 px) at which focus scores 0.5


def quality_score(square: np.ndarray, fov: Fov) -> float:
    """Score an RGB uint8 FOV square (from `crop_square`); `fov` gives the visible fraction of the circle."""
    img = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA) if square.shape[0] != SIDE else square
    mask = circle_mask(SIDE)
    # rows cut away by truncation are black padding: score only the pixels that exist
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    field = mask & (lum > 0.02)
    if field.sum() < 0.05 * mask.sum():
        return 0.0
    inner = cv2.erode(field.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # the rim edge is not focus

    # 1. field: how much of the circle the camera captured
    coverage = float(np.clip(fov.visible, 0.0, 1.0))
    # 2. illumination: mean brightness in a useful band without clipped highlights, and evenness (a coarse map of the
    # field, low spread is good)
    mean = float(lum[field].mean())
    # brightest channel per pixel via OpenCV: numpy's max(axis=1) over 3 channels was 2 ms, most of the score's time
    saturated = float((cv2.max(cv2.max(img[..., 0], img[..., 1]), img[..., 2])[field] >= 250).mean())
    level = float(np.clip(min(mean / 0.25, (0.8 - mean) / 0.2), 0.0, 1.0)) * max(0.0, 1.0 - 2.0 * saturated)
    coarse = cv2.resize(lum, (16, 16), interpolation=cv2.INTER_AREA)[cv2.resize(inner.astype(np.uint8), (16, 16)) > 0]
    evenness = float(np.clip(1.0 - (coarse.std() / max(coarse.mean(), 1e-3) - 0.25), 0.0, 1.0)) if coarse.size else 0.0
    illumination = level * evenness
    # 3. focus: variance of the Laplacian of the green channel (vessels and lesions live there) inside the field
    lap = cv2.Laplacian(img[..., 1], cv2.CV_32F)
    var = float(lap[inner].var()) if inner.any() else 0.0
    focus = var / (var + FOCUS_SCALE)
    return float(np.clip(coverage * illumination * focus, 0.0, 1.0) ** (1 / 3))  # geometric mean of the three
