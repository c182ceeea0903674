"""Procedural fundus-like images: no fundus dataset ships on PyPI, so tests and the demo draw their own.

A dark background, an orange disc with radial falloff, a bright optic disc (cup grows with `glaucoma`), branching
dark-red vessels from the disc, lesion dots that grow with `dr_grade`, an optional rim notch and top/bottom truncation
(as on many EyePACS cameras).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image


def fundus_image(
    width: int = 256,
    height: int | None = None,
    *,
    seed: int = 0,
    eye: str = "right",
    dr_grade: int = 0,
    glaucoma: bool = False,
    notch: bool = True,
    truncate: float = 0.0,
    fov: float = 0.92,
) -> Image.Image:
    """An RGB fundus-like image. `truncate` cuts that fraction of the circle at top and bottom; `fov` is the circle
    diameter relative to min(width, height) before truncation."""
    height = height or width
    rng = np.random.default_rng(seed)
    cx, cy = width / 2, height / 2
    r = fov * min(width, height) / 2 / (1 - truncate) if truncate else fov * min(width, height) / 2
    r = min(r, width / 2 - 1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
    base = np.array([200, 95, 40], np.float32) * rng.uniform(0.8, 1.1, 3)
    falloff = np.clip(1.0 - 0.45 * d**2, 0, 1)[..., None]
    img = base * falloff
    img += rng.normal(0, 4, img.shape).astype(np.float32)

    # optic disc: nasal side (right eye -> disc right of centre in a standard photo)
    side = 1 if eye == "right" else -1
    dx, dy = cx + side * 0.38 * r, cy + rng.uniform(-0.05, 0.05) * r
    dr = 0.14 * r
    dd = np.sqrt((xx - dx) ** 2 + (yy - dy) ** 2)
    img += (np.clip(1 - dd / dr, 0, 1) ** 0.6)[..., None] * np.array([55, 110, 90], np.float32)
    cup = (0.75 if glaucoma else 0.35) * dr
    img += (np.clip(1 - dd / cup, 0, 1) ** 0.5)[..., None] * np.array([30, 40, 40], np.float32)
    # macula: darker spot temporal to the disc
    mx = cx - side * 0.05 * r
    md = np.sqrt((xx - mx) ** 2 + (yy - cy) ** 2)
    img *= 1 - 0.25 * np.clip(1 - md / (0.18 * r), 0, 1)[..., None]

    canvas = np.clip(img, 0, 255).astype(np.uint8)
    # vessels: four arcades branching from the disc
    thick = max(1, int(r / 60))
    for ang in (-0.6, 0.6, math.pi - 0.6, math.pi + 0.6):
        _vessel(canvas, rng, (dx, dy), ang + rng.uniform(-0.2, 0.2), 0.9 * r, thick + 1, depth=3)
    # lesions: microaneurysms/haemorrhages (dark red) and exudates (yellow), more with grade
    for _ in range(int(dr_grade * rng.integers(6, 12))):
        a, rr = rng.uniform(0, 2 * math.pi), r * math.sqrt(rng.uniform(0.02, 0.6))
        p = (int(cx + rr * math.cos(a)), int(cy + rr * math.sin(a)))
        if rng.random() < 0.6:
            cv2.circle(canvas, p, max(1, int(r / rng.integers(60, 120))), (110, 20, 15), -1)
        else:
            cv2.circle(canvas, p, max(1, int(r / rng.integers(70, 140))), (235, 215, 110), -1)

    mask = d <= 1.0
    if truncate:
        cut = int(round(height * truncate / 2)) if r * 2 > height else 0
        band = (yy >= cy - (r * (1 - truncate))) & (yy <= cy + (r * (1 - truncate)))
        mask &= band if cut == 0 else band
    if notch:  # the rim notch EyePACS uses to mark orientation
        nx, ny = cx + r * math.cos(-2.4), cy + r * math.sin(-2.4)
        mask &= np.sqrt((xx - nx) ** 2 + (yy - ny) ** 2) > 0.04 * r
    canvas[~mask] = rng.integers(0, 6)
    return Image.fromarray(canvas)


def _vessel(canvas, rng, start, angle, length, thick, depth):
    x, y = start
    steps = 12
    for _ in range(steps):
        angle += rng.uniform(-0.25, 0.25)
        nx, ny = x + math.cos(angle) * length / steps, y + math.sin(angle) * length / steps
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), (120, 30, 20), thick, cv2.LINE_AA)
        x, y = nx, ny
        if depth > 0 and rng.random() < 0.18:
            _vessel(canvas, rng, (x, y), angle + rng.choice([-0.8, 0.8]), length * 0.5, max(1, thick - 1), depth - 1)
