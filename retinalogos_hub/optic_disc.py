"""The optic-disc side detector, shared by curation (orientation of photos without a rim notch) and evaluation
(laterality of synthetic images): in a standard fundus photo the disc lies on the nasal side, right of the image
centre for a right eye and left of it for a left eye.

`disc_side(square)` reads a FOV square (`curate.fov.crop_square`, or any image whose fundus field fills its square):
> 0 right, < 0 left, |value| >= `DISC_CONFIDENT` a clear call. `eye_from_disc` turns it into "left" / "right" / None.
"""

from __future__ import annotations

import cv2
import numpy as np

# optic-disc side search on a DISC_GRID-pixel copy of the FOV square (radius 32): the disc's radius is ~0.13 of the
# field's (~4 px), so a difference of Gaussians at these scales (px) answers to disc-sized bright blobs, not to thin
# vessels or fibrous tissue (smaller) nor to vignetting, haze or uneven exposure (larger)
DISC_GRID = 64
DISC_SIGMAS = (1.5, 6.0)
DISC_REACH = 0.85  # of the radius: the disc lies inside it; rim reflexes and the blurred edge lie outside
# |disc_side| from here on is a clear call: upright photos seen on the wrong side reach 1.5 (small procedural ones
# with lesions; real ones stay on their side), inverted real EyePACS photos 3.9 and 11
DISC_CONFIDENT = 2.5
DISC_MIN_RADIUS = 40  # px of field radius: below it the disc is a few pixels, no bigger than lesion dots (no call)
_DISC_CIRCLE = None  # circle and reach masks of the grid, made on first use


def disc_side(square: np.ndarray) -> float:
    """Which half of a FOV square (`crop_square`, RGB uint8) holds the optic disc, signed: > 0 right, < 0 left, in
    robust standard deviations of the blob map by which the strongest disc-sized bright blob on that half beats the
    strongest on the other (|value| >= `DISC_CONFIDENT`: a clear call; a disc near the centre, or a bright lesion or
    reflex as strong as the disc, gives a small value).

    The blob map is the red channel's difference of Gaussians (vessels have little contrast in red, the disc much),
    or green's at half weight where it stands out more (red saturates on bright fields). Blurs are normalised by the
    field mask (circle and not black), so the dark surround and the black bands of a truncated field add no edges."""
    global _DISC_CIRCLE
    n = DISC_GRID
    if _DISC_CIRCLE is None:
        yy, xx = np.mgrid[:n, :n]
        d2 = (xx - (n - 1) / 2) ** 2 + (yy - (n - 1) / 2) ** 2
        _DISC_CIRCLE = tuple((d2 <= (f * n / 2) ** 2).astype(np.uint8) for f in (1.0, DISC_REACH))
    circle, reach = _DISC_CIRCLE
    # OpenCV for the image steps: on a 64 px grid numpy's per-call overhead would cost more than the arithmetic
    r, g, b = cv2.split(cv2.resize(square, (n, n), interpolation=cv2.INTER_AREA))
    bright = cv2.max(cv2.max(r, g), b)
    field = (bright > max(10.0, 0.25 * cv2.mean(bright, circle)[0])).view(np.uint8) & circle  # not the black bands
    field = cv2.erode(field, np.ones((3, 3), np.uint8))  # nor the blurred edge
    inner = field & reach
    if cv2.countNonZero(inner) < n:  # next to no field (a blank square): no call
        return 0.0
    mask = field.astype(np.float32)
    rg = cv2.merge([r, g]).astype(np.float32) * mask[..., None]
    fine, coarse = (
        cv2.GaussianBlur(rg, (0, 0), s) / np.maximum(cv2.GaussianBlur(mask, (0, 0), s), 1e-3)[..., None]
        for s in DISC_SIGMAS
    )
    dog = (fine - coarse)[inner > 0]  # bright blobs of the disc's size, in the field
    # robust spreads (median absolute deviation): the dark vessels' deep troughs and a few lesions must not set them
    blob = np.maximum(dog[:, 0] * (2 / _spread(dog[:, 0])), dog[:, 1] * (1 / _spread(dog[:, 1])))
    half = (np.flatnonzero(inner.ravel()) % n) >= n // 2  # each field pixel's half: right?
    if half.all() or not half.any():
        return 0.0
    return float((blob[half].max() - blob[~half].max()) / _spread(blob))


def _spread(v: np.ndarray) -> float:
    return max(1.4826 * float(np.median(np.abs(v - np.median(v)))), 1e-3)


def eye_from_disc(square: np.ndarray, confident: float = DISC_CONFIDENT) -> str | None:
    """The eye a FOV square shows, by its optic disc's side ("right" when on the right half), or None when unsure."""
    side = disc_side(square)
    if abs(side) < confident:
        return None
    return "right" if side > 0 else "left"
