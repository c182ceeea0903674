"""Field-of-view (FOV) geometry: find the circular fundus field, crop it to a square and resize.

Fundus photographs show a bright, roughly circular field on a dark surround. Many cameras (EyePACS) cut the circle at
top and bottom, and some mark orientation with a small notch on the rim. The circle is fitted by least squares to the
field's outline, using only points that are not on the image border (so a truncated circle still yields its true
centre and radius) and dropping points inside the first fit (so a notch does not pull the rim in). A bright blob
that is not disc-shaped (a photo, a document) is rejected.

The same pass looks for the orientation mark on the rim (`rim_notch`): EyePACS cameras put a small tab (square,
triangle or half-disc) just outside the circle of upright images; images taken through a condensing lens are
rotated 180 degrees and have none. A notch cut into the rim is found too.

Small or blurred rims hide the mark, and some upright photos have none, so a missing notch is weighed against the
optic disc (`retinalogos_hub.optic_disc.disc_side`): in a standard photo it lies on the nasal side, right of centre for a right eye and left
for a left eye.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 320  # detection runs on a copy this size (long side): geometry does not need more pixels

# rim-notch search, on the full image (the detection copy's median blur rounds a mark away): rings just outside (a
# tab) and just inside (a cut) the fitted circle, as fractions of the radius; beyond the fit's error and the rim's
# blur (<1% of r), within the mark (real EyePACS tabs stick out 3-6% of r)
NOTCH_OUT = (1.015, 1.025)
NOTCH_IN = (0.985, 0.975)
NOTCH_DEEP = 0.9  # a cut is shallow: the field is back at this radius (a dark patch of the field reaches further)
NOTCH_STEPS = 720  # samples per ring (0.5 degree)
NOTCH_WIDTH = (1.5, 20.0)  # degrees: the mark's angular extent (rim noise is narrower, a rim misfit far wider)
_ANGLES = np.arange(NOTCH_STEPS) * (2 * np.pi / NOTCH_STEPS)
_RADII = np.array([*NOTCH_OUT, *NOTCH_IN, NOTCH_DEEP])[:, None]
_RING_COS = _RADII * np.cos(_ANGLES)
_RING_SIN = _RADII * -np.sin(_ANGLES)  # counter-clockwise as seen on screen (image y points down)


@dataclass(frozen=True)
class FovConfig:
    """How the fundus field is told from its surround (values: `fov:` in recipes/curate/default.yaml)."""

    threshold: int | None  # grey level (0-255) separating field from surround; None = half of Otsu's, per image
    min_threshold: int  # floor for the per-image threshold on near-black images (JPEG noise in the surround)
    min_area: float  # the field must cover at least this fraction of the image
    min_fill: float  # field pixels / (circle ∩ image): below this the bright region is not a disc
    min_visible: float  # (circle ∩ image) / circle: a disc mostly outside the frame is not a fundus field
    min_contrast: float  # mean grey inside minus outside the field (0-255)

    def __post_init__(self):
        if self.threshold is not None and not 0 <= self.threshold <= 255:
            raise ValueError(f"threshold must be null or in 0..255, got {self.threshold}")
        for name in ("min_area", "min_fill", "min_visible"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in 0..1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Fov:
    cx: float  # centre and radius in pixels of the image it was detected on
    cy: float
    r: float
    visible: float  # fraction of the circle inside the image (1.0 = full circle; <1 = truncated)
    fill: float  # fraction of (circle ∩ image) that is bright field
    notch: float | None = None  # angle (degrees counter-clockwise from 3 o'clock) of a rim notch; None = none seen

    def scaled(self, s: float) -> Fov:
        return Fov(self.cx * s, self.cy * s, self.r * s, self.visible, self.fill, self.notch)


def detect_fov(rgb: np.ndarray, cfg: FovConfig) -> Fov | None:
    """The fundus circle of an RGB uint8 image, or None when there is no disc-shaped field (not a fundus photo)."""
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    # bilinear is enough for geometry (the median blur below removes the aliasing) and 4x cheaper than INTER_AREA
    small = rgb
    if s < 1:
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR)
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
    low_contrast = outside.sum() > 0.02 * sh * sw and contrast < cfg.min_contrast
    if visible < cfg.min_visible or fill < cfg.min_fill or low_contrast:
        return None
    box = np.array(cv2.boundingRect(blob)) / s
    bounds = (box[0], box[1], box[0] + box[2] - 1 / s, box[1] + box[3] - 1 / s)
    notch = rim_notch(rgb, cx / s, cy / s, r / s, thr, bounds)
    return Fov(cx, cy, r, float(min(1.0, visible)), float(fill), notch).scaled(1 / s)


def rim_notch(
    rgb: np.ndarray, cx: float, cy: float, r: float, threshold: int, field: Sequence[float] | None = None
) -> float | None:
    """Angle in degrees (counter-clockwise from 3 o'clock) of the centre of a notch on the rim of the circle (cx, cy, r)
    of an RGB image whose field is brighter than `threshold` (max over channels), or None.

    A notch is a short angular run (`NOTCH_WIDTH`) where the field sticks out of the circle (field on both rings just
    outside it: a tab) or is cut into it (surround on both rings just inside, field again further in), with an
    ordinary rim on both sides. Samples at the frame are unknown, and so are those beyond a straight edge of the
    `field` extent (x0, y0, x1, y1) where the circle runs past it: the cut edge of a truncated field is not a notch,
    nor is a run next to it."""
    h, w = rgb.shape[:2]
    fx0, fy0, fx1, fy1 = field if field is not None else (0, 0, w - 1, h - 1)
    past = margin = max(2.0, 0.02 * r)  # the circle runs this far past an edge that cuts it; the cut edge is blurred

    def span(lo: float, hi: float, c: float, n: int) -> tuple[float, float]:  # the known coordinates along one axis
        return (lo + margin if c - r < lo - past else 1), (hi - margin if c + r > hi + past else n - 2)

    (x0, x1), (y0, y1) = span(fx0, fx1, cx, w), span(fy0, fy1, cy, h)

    # every ring at once: rows o1, o2 (outside), i1, i2 (inside), deep
    x = (cx + 0.5 + r * _RING_COS).astype(np.intp)  # +0.5 then truncation: rounding (coordinates are >= 0 where known)
    y = (cy + 0.5 + r * _RING_SIN).astype(np.intp)
    unknown = ~((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).all(axis=0)
    at = (np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1)) * 3
    px = np.ascontiguousarray(rgb).reshape(-1)  # a view for decoded images; 3 flat gathers beat one (n, 3) gather
    o1, o2, i1, i2, deep = np.maximum(np.maximum(px[at], px[at + 1]), px[at + 2]) > threshold
    ordinary = ~o1 & ~o2 & i1 & i2
    mark = (o1 & o2 & i1 & i2) | (~o1 & ~o2 & ~i1 & ~i2 & deep)  # a tab | a cut
    if not mark.any() or ordinary.all():
        return None
    # runs of non-ordinary rim between two ordinary samples: a notch is short, lies in the frame and is mostly mark
    # (its tapering edges are neither pattern)
    odd = ~ordinary | unknown
    start = int(np.argmin(odd))  # an ordinary sample: start there so that no run wraps around the end
    if odd[start]:
        return None
    odd, mark, unknown = (np.roll(v, -start) for v in (odd, mark, unknown))
    edges = np.flatnonzero(np.diff(odd.astype(np.int8))) + 1  # alternate starts and ends of odd runs
    step = 360.0 / NOTCH_STEPS
    for a, b in zip(edges[::2], [*edges[1::2], NOTCH_STEPS]):
        n = int(mark[a:b].sum())
        width_ok = NOTCH_WIDTH[0] <= n * step and (b - a) * step <= NOTCH_WIDTH[1]
        if width_ok and 2 * n >= b - a and not unknown[a:b].any():
            return float(((start + (a + b - 1) / 2) * step) % 360)
    return None


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
