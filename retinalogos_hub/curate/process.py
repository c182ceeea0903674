"""One input file -> one work row: decode (JPEG DCT-domain draft where it applies), FOV crop, resize, quality score,
dedup hashes, orientation (sources in `CurateConfig.rotate_unnotched`: see `orient`), re-encode from pixels (so EXIF
and every other metadata block is gone).

Runs inside worker processes; it touches no shared state and never raises for a bad image: an unreadable file or a
picture with no fundus field becomes an `excluded` row with its reason, and the run goes on.
"""

from __future__ import annotations

import hashlib
import io
import json
import math

import cv2
import imagehash
import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps, UnidentifiedImageError

from ..optic_disc import DISC_CONFIDENT, DISC_MIN_RADIUS, disc_side
from .fov import Fov, crop_square, detect_fov
from .quality import quality_score
from .settings import CurateConfig

THUMB = 32  # side of the grey thumbnail that confirms perceptual matches
# the `orientation` of checked rows: what was decided, and why
UPRIGHT = "upright (rim notch)"
ROTATED = "rotated 180 (no rim notch, disc on the wrong side)"
AGREES = "unchanged (no rim notch, disc on the labelled side)"
UNSURE = "unchanged (no rim notch, disc side unsure)"
NO_EYE = "unchanged (no rim notch, eye not labelled)"


def decode(data: bytes, side: int) -> tuple[np.ndarray, bool]:
    """(RGB uint8 pixels, whether they were decoded reduced). JPEGs are decoded straight at the smallest 1/2^k scale
    whose short side still covers `side` (libjpeg's DCT scaling: 5-6x faster than a full decode of an EyePACS-sized
    file)."""
    im = Image.open(io.BytesIO(data))
    full = im.size
    if im.format == "JPEG":
        w, h = im.size
        k = side / min(w, h)
        im.draft("RGB", (max(1, int(w * k)), max(1, int(h * k))))
    reduced = im.size != full
    if im.getexif().get(0x0112, 1) != 1:  # honour orientation before the EXIF block is dropped (rare: skip the copy)
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit/float greyscale: PIL would clip it to white
        a = np.asarray(im, dtype=np.float32)
        a = np.clip(a * (255.0 / max(float(a.max()), 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2), reduced
    return _rgb(im if im.mode == "RGB" else im.convert("RGB")), reduced


def _rgb(im: Image.Image) -> np.ndarray:
    """An RGB image as an HxWx3 array. np.asarray(im) goes through im.tobytes() (packs Pillow's 4-byte pixels in
    64 KB chunks, then joins them: ~1 ms per EyePACS draft); the Arrow export is a zero-copy view of those 4-byte
    pixels, and one OpenCV pass drops the pad byte."""
    try:  # fixed_size_list<uint8>[4] over Pillow's own buffer
        px = pa.array(im).flatten().to_numpy(zero_copy_only=True).reshape(im.height, im.width, 4)
    except Exception:  # no single-buffer export (a big image lives in several memory blocks; Pillow < 11.2): copy
        return np.asarray(im)
    return cv2.cvtColor(px, cv2.COLOR_RGBA2RGB)


def process(rec: dict, cfg: CurateConfig) -> dict:
    """A work row for input record `rec` (with `id` and `path`): status "ok" with image bytes and hashes, or
    "excluded" with a reason."""
    try:
        return _process(rec, cfg)
    except Exception as e:  # one odd file (an OpenCV error on a degenerate image) must not stop a 100k-image run
        first = str(e).splitlines()[0] if str(e) else ""
        return {**_row(rec), "reason": f"processing failed: {type(e).__name__}: {first}"}


def _row(rec: dict) -> dict:
    """An `excluded` work row with no reason yet; `_process` fills it in."""
    return {
        "id": rec["id"],
        "record": json.dumps(rec),
        "status": "excluded",
        "reason": None,
        "image": None,
        "width": None,
        "height": None,
        "quality_score": None,
        "sha256": None,
        "pixels": None,
        "phash": None,
        "phash_mirror": None,
        "phash_rot180": None,
        "thumb": None,
        "orientation": None,
    }


def _process(rec: dict, cfg: CurateConfig) -> dict:
    out = _row(rec)
    try:
        data = open(rec["path"], "rb").read()
    except OSError as e:
        out["reason"] = f"unreadable file: {type(e).__name__}: {e.strerror or e}"
        return out
    out["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        rgb, reduced = decode(data, cfg.size)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # PIL raises OSError for truncated/corrupt data, UnidentifiedImageError for non-images
        out["reason"] = f"unreadable image: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        return out
    fov = detect_fov(rgb, cfg.fov)
    if fov is not None and reduced and 2 * fov.r < cfg.size:
        # the draft scale was picked by the short side, and this field is smaller: decode finer rather than upsample
        # the crop (a second decode, for these images only)
        finer, _ = decode(data, math.ceil(cfg.size * min(rgb.shape[:2]) / (2 * fov.r)))
        rgb, fov = finer, fov.scaled(finer.shape[1] / rgb.shape[1])
    if fov is None:
        out["reason"] = "no fundus field of view found (not a colour fundus photograph, or blank)"
        return out
    square = crop_square(rgb, fov, cfg.size)
    grey = inner_grey(square)  # hashed as found: a copy of the photo in a source without the notch rule still matches
    if rec.get("source") in cfg.rotate_unnotched:
        out["orientation"] = orient(square, fov, rec.get("eye"))
    out.update(
        status="ok",
        image=encode(cv2.rotate(square, cv2.ROTATE_180) if out["orientation"] == ROTATED else square, cfg),
        width=cfg.size,
        height=cfg.size,
        quality_score=round(quality_score(square, fov), 4),
        pixels=_pixel_hash(rgb),
        phash=phash(grey),
        phash_mirror=phash(np.ascontiguousarray(grey[:, ::-1])),  # a re-hosted mirrored copy queries with these
        phash_rot180=phash(np.ascontiguousarray(grey[::-1, ::-1])),
        thumb=cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).tobytes(),
    )
    return out


def orient(square: np.ndarray, fov: Fov, eye: str | None) -> str:
    """The orientation decision for a photo from a notch-marking camera. A rim notch means upright. No notch would
    mean taken through a condensing lens (inverted), but small or blurred rims hide the notch and some upright photos
    have none, so the photo is turned only when its optic disc is clearly on the wrong half for the labelled eye
    (a standard photo has it on the nasal side: right of centre for a right eye, left for a left eye)."""
    if fov.notch is not None:
        return UPRIGHT
    if eye not in ("left", "right"):
        return NO_EYE
    if min(fov.r, square.shape[0] / 2) < DISC_MIN_RADIUS:  # too few pixels to tell the disc from a lesion
        return UNSURE
    side = disc_side(square)
    if abs(side) < DISC_CONFIDENT:
        return UNSURE
    return AGREES if (side > 0) == (eye == "right") else ROTATED


def phash(grey: np.ndarray) -> int:
    """64-bit pHash of a grey image as a signed int64 (fits the parquet column, order-preserving)."""
    return int(str(imagehash.phash(Image.fromarray(grey))), 16) - (1 << 63)


def _pixel_hash(rgb: np.ndarray) -> str:
    h = hashlib.sha256(str(rgb.shape).encode())
    h.update(memoryview(np.ascontiguousarray(rgb)).cast("B"))  # no copy of the pixels
    return h.hexdigest()


def inner_grey(square: np.ndarray) -> np.ndarray:
    """Grey, contrast-normalised central part of the FOV square (side r*sqrt(2): inside the circle, away from the rim).
    Every fundus photo shares the dark-surround-bright-disc layout; hashing it would make unrelated images alike."""
    n = square.shape[0]
    a = round(n * (1 - 1 / np.sqrt(2)) / 2)
    g = cv2.cvtColor(square[a : n - a, a : n - a], cv2.COLOR_RGB2GRAY)
    g = cv2.resize(g, (128, 128), interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(g)


def encode(square: np.ndarray, cfg: CurateConfig) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(square)  # a new image from pixels: no EXIF, ICC, XMP or comments survive
    if cfg.format == "jpeg":
        im.save(buf, "JPEG", quality=cfg.jpeg_quality)
    else:
        im.save(buf, "PNG", compress_level=1)  # fast; size is close to the default level on photos
    return buf.getvalue()
