"""Field-of-view (FOV) geometry: find the circular fundus field, crop it to a square and resize.

Fundus photographs show a bright, roughly circular field on a dark surround. Many cameras (EyePACS) cut the circle at
top and bottom, and some mark orientation with a small notch on the rim. The circle is fitted by least squares to the
field's outline, using only points that are not on the image border (so a truncated circle still yields its true
centre and radius) and dropping points inside the first fit (so a notch does not pull the rim in). A bright blob that is not disc-shaped (a photo, a document)
is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 320  # detection runs on a copy this size (long side): geometry does not need more pixels


@dataclass
class FovConfig:
    threshold: int | None = None  # grey level separating field from surround; None = Otsu per image
    min_threshold: int = 6  # floor for Otsu on near-black images (JPEG noise in the surround)
    min_area: float = 0.15  # the field must cover at least this fraction of the image
    min_fill: float = 0.85  # field pixels / (circle ∩ image): below this the bright region is not a disc
    min_visible: float = 0.7  # (circle ∩ image) / circle: a disc mostly outside the frame is not a fundus field
    min_contrast: float = 8.0  # mean grey inside minus outside the field (0-255)


@dataclass(frozen=True)
class Fov:
    cx: float  # centre and radius in pixels of the image it was detected on
    cy: float
    r: float
    visible: float  # fraction of the circle inside the image (1.0 = full circle; <1 = truncated)
    fill: float  # fraction of (circle ∩ image) that is bright field

    def scaled(self, s: float) -> "Fov":
        return Fov(self.cx * s, self.cy * s, self.r * s, self.visible, self.fill)


def detect_fov(rgb: np.ndarray, cfg: FovConfig | None = None) -> Fov | None:
    """The fundus circle of an RGB uint8 image, or None when there is no disc-shaped field (not a fundus photo)."""
    cfg = cfg or FovConfig()
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    # bilinear is enough for geometry (the median blur below removes the aliasing) and 4x cheaper than INTER_AREA
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR) if s < 1 else rgb
    # max over channels: the field is bright in red even when green/blue are dark (dark or red-free images)
    grey = cv2.medianBlur(cv2.max(cv2.max(small[..., 0], small[..., 1]), small[..., 2]), 5)
    if cfg.threshold is not None:
        thr = cfg.threshold
    else:
        otsu, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        thr = max(cfg.min_threshold, int(otsu) // 2)  # half Otsu keeps the dim rim of vignetted fields
    mask = (grey > thr).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    sh, sw = grey.shape
    blob = max(contours, key=cv2.contourArea)
    if cv2.contourArea(blob) < cfg.min_area * sh * sw:
        return None
    # the convex hull bridges dark intrusions that reach the rim (a dark macula or media opacity in a dim image
    # merges with the surround); the rim is the part of the outline that lies on the hull
    hull = np.zeros_like(mask)
    cv2.fillConvexPoly(hull, cv2.convexHull(blob), 1)
    pts = blob.reshape(-1, 2)
    edge = hull - cv2.erode(hull, np.ones((3, 3), np.uint8))
    circle = _fit_circle(pts.astype(np.float64), pts[edge[pts[:, 1], pts[:, 0]] > 0].astype(np.float64), sw, sh)
    if circle is None:
        return None
    cx, cy, r = circle
    disc = np.zeros_like(mask)
    cv2.circle(disc, (round(cx), round(cy)), round(r), 1, -1)
    inside = disc.astype(bool)
    visible = inside.sum() / (math.pi * r * r)
    fill = (hull.astype(bool) & inside).sum() / max(1, inside.sum())
    outside = ~inside
    contrast = grey[inside].mean() - (grey[outside].mean() if outside.any() else 0.0)
    if visible < cfg.min_visible or fill < cfg.min_fill or (outside.sum() > 0.02 * sh * sw and contrast < cfg.min_contrast):
        return None
    return Fov(cx, cy, r, float(min(1.0, visible)), float(fill)).scaled(1 / s)


def _fit_circle(pts: np.ndarray, rim: np.ndarray, w: int, h: int) -> tuple[float, float, float] | None:
    """Least-squares (Kasa) circle through the `rim` points (outline points on the hull) off the image border; None
    if the outline `pts` mostly runs along the frame (no curved rim: not a fundus field).

    Points well inside the first fit (a rim notch) are dropped and the circle refitted, so notches do not pull the
    rim inwards."""
    def inner(p):
        return p[(p[:, 0] > 1) & (p[:, 0] < w - 2) & (p[:, 1] > 1) & (p[:, 1] < h - 2)]

    if len(inner(pts)) < 0.25 * len(pts):
        return None
    cand = rim = inner(rim)
    if len(rim) < 20:
        return None
    for _ in range(2):
        x, y = rim[:, 0], rim[:, 1]
        (c0, c1, c2), *_ = np.linalg.lstsq(np.column_stack([x, y, np.ones_like(x)]), x * x + y * y, rcond=None)
        cx, cy = c0 / 2, c1 / 2
        r2 = c2 + cx * cx + cy * cy
        if r2 <= 0:
            return None
        r = math.sqrt(r2)
        keep = np.hypot(cand[:, 0] - cx, cand[:, 1] - cy) > r - max(2.0, 0.01 * r)
        if keep.sum() < 20:
            break
        rim = cand[keep]
    return float(cx), float(cy), float(r)


def crop_square(rgb: np.ndarray, fov: Fov, size: int) -> np.ndarray:
    """The FOV's bounding square resized to `size`; parts of the square outside the image (truncation) are black."""
    h, w = rgb.shape[:2]
    x0, y0, side = fov.cx - fov.r, fov.cy - fov.r, 2 * fov.r
    s = size / side
    # resize only the part of the square that lies inside the image, then place it on a black canvas
    ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    ix1, iy1 = min(w, math.ceil(x0 + side)), min(h, math.ceil(y0 + side))
    out = np.zeros((size, size, 3), np.uint8)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    ox0, oy0 = min(size - 1, max(0, round((ix0 - x0) * s))), min(size - 1, max(0, round((iy0 - y0) * s)))
    ow = min(size - ox0, max(1, round((ix1 - ix0) * s)))
    oh = min(size - oy0, max(1, round((iy1 - iy0) * s)))
    # INTER_AREA only for real reductions: after a JPEG draft decode the residual factor is in (0.5, 1], where bilinear
    # is 9x faster than OpenCV's fractional area filter and aliases little
    interp = cv2.INTER_AREA if s <= 0.5 else cv2.INTER_LINEAR
    out[oy0 : oy0 + oh, ox0 : ox0 + ow] = cv2.resize(rgb[iy0:iy1, ix0:ix1], (ow, oh), interpolation=interp)
    return out


def circle_mask(size: int) -> np.ndarray:
    """Boolean mask of the inscribed circle of a `size` square (the FOV after `crop_square`)."""
    yy, xx = np.ogrid[:size, :size]
    c = (size - 1) / 2
    return (xx - c) ** 2 + (yy - c) ** 2 <= (size / 2) ** 2
