"""Publishing images without metadata: EXIF, XMP, ICC profiles, IPTC, comments and text chunks go (they carry
camera serials, workstation names, dates and sometimes patient names); pixels stay untouched.

No heavy imports here: `push-model` and `push-state` strip their gallery images and check their input in under a
second.
"""

from __future__ import annotations

import io

# JPEG segments kept: the ones needed to decode (APP0 JFIF, APP14 Adobe colour transform, tables, frame, scan).
# Dropped: APP1 (EXIF, XMP), APP2 (ICC), APP3-13 and APP15 (IPTC, maker data), COM (comments).
_JPEG_KEEP_APP = {0xE0, 0xEE}
# PNG ancillary chunks dropped: text, EXIF, ICC, time. Critical chunks and rendering hints are kept.
_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME"}


def _jpeg_drops(data) -> list[tuple[int, int]] | None:
    """The byte ranges of `data`'s metadata segments (None: not a JPEG this parser can walk)."""
    drops, i = [], 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: entropy-coded data to the end, kept as is
            return drops
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if (0xE0 <= marker <= 0xEF or marker == 0xFE) and marker not in _JPEG_KEEP_APP:
            drops.append((i, i + 2 + length))
        i += 2 + length
    return None


def _png_drops(data) -> list[tuple[int, int]] | None:
    drops, i = [], 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = bytes(data[i + 4 : i + 8])
        if kind in _PNG_DROP:
            drops.append((i, i + 12 + length))
        i += 12 + length
        if kind == b"IEND":
            return drops
    return None


def _drops(data) -> list[tuple[int, int]] | None:
    """What `strip_metadata` removes from JPEG or PNG `data` (None: another format, re-encoded instead)."""
    if bytes(data[:2]) == b"\xff\xd8":
        return _jpeg_drops(data)
    if bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        return _png_drops(data)
    return None


def strip_metadata(data: bytes) -> bytes:
    """The image without EXIF/XMP/ICC/IPTC/comments/text. JPEG and PNG lose only those segments/chunks (pixels
    untouched, no re-encode); any other format is re-encoded from pixels as PNG."""
    drops = _drops(data)
    if drops is not None:
        view, kept, at = memoryview(data), [], 0
        for a, b in drops:
            kept.append(view[at:a])
            at = b
        return b"".join([*kept, view[at:]]) if drops else data
    from PIL import Image as PILImage

    src = PILImage.open(io.BytesIO(data))
    clean = PILImage.frombytes(*_mode_size(src), src.convert(_mode_size(src)[0]).tobytes())  # pixels only
    out = io.BytesIO()
    clean.save(out, "PNG")
    return out.getvalue()


def _mode_size(im) -> tuple[str, tuple[int, int]]:
    return (
        "RGBA"
        if "A" in im.getbands() or "transparency" in im.info
        else "RGB"
        if im.mode not in ("L", "I;16")
        else im.mode
    ), im.size
