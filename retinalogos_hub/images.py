"""Image files on disk, shared by the source adapters (raw layouts) and evaluation (image folders)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".ppm", ".gif")


def image_index(directory: Path, recursive: bool = False) -> dict[str, Path]:
    """name, stem and lower-cased forms -> image path, from one directory listing (a stat per row is slow at 100k)."""
    index: dict[str, Path] = {}
    if not Path(directory).is_dir():
        return index
    for p in sorted(Path(directory).rglob("*") if recursive else Path(directory).iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            for k in (p.name, p.stem, p.name.lower(), p.stem.lower()):
                index.setdefault(k, p)
    return index


def iter_images(directory: Path) -> Iterator[Path]:
    """Every image file under `directory`, in sorted order."""
    for p in sorted(Path(directory).rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p
