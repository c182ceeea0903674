"""Image sets for evaluation: a HF dataset directory (an `image` column) or a folder of image files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import InputError
from ..images import iter_images


@dataclass
class ImageSet:
    """A named, indexable set of RGB images; `rows` keeps the dataset's other columns (empty for folders)."""

    name: str
    path: Path
    _items: Any  # a list of file paths, or a `datasets.Dataset`

    def __len__(self) -> int:
        return len(self._items)

    def image(self, i: int) -> Image.Image:
        item = self._items[i]
        if isinstance(item, Path):
            try:
                with Image.open(item) as im:
                    return _pixels(im)
            except OSError as e:
                raise InputError(f"{item}: not a readable image ({e})") from None
        if item["image"] is None:
            raise InputError(
                f"{self.path}: row {i} ({item.get('id') or i}) has no image; re-attach the images of "
                "sources whose licence kept them out (retinalogos attach-images)"
            )
        return _pixels(item["image"])

    def row(self, i: int) -> dict:
        item = self._items[i]
        return {"path": str(item)} if isinstance(item, Path) else {k: v for k, v in item.items() if k != "image"}

    def ref(self, i: int) -> str:
        """A stable reference to image i (its file path or dataset id) for keys and reports."""
        row = self.row(i)
        return str(row.get("id") or row.get("path") or f"{self.path}#{i}")

    @property
    def is_dataset(self) -> bool:
        return not isinstance(self._items, list)

    @property
    def columns(self) -> list[str]:
        return list(self._items.column_names) if self.is_dataset else ["image", "path"]

    def column(self, name: str) -> list:
        """A non-image column as a list (reads no pixels)."""
        return list(self._items[name]) if self.is_dataset else [str(p) for p in self._items]

    @property
    def fingerprint(self) -> str:
        """Changes when the contents change: the dataset fingerprint, or file names, sizes and mtimes."""
        if self.is_dataset:
            return self._items._fingerprint
        return ";".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in self._items)


def _pixels(im: Image.Image) -> Image.Image:
    """RGB pixels only: `convert` keeps `info` (ICC profile, EXIF, dpi), which a saved copy would carry along, e.g. a
    camera ICC profile on the real images of a blinded Turing sheet."""
    rgb = im.convert("RGB")
    rgb.info.clear()
    return rgb


def parse_named(spec: str | Path) -> tuple[str, Path]:
    """`NAME=PATH` or `PATH` (named after its folder)."""
    spec = str(spec)
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name:
        return name, Path(path)
    return Path(spec).name or spec, Path(spec)


def open_images(spec: str | Path, *, option: str = "--real", min_images: int = 1) -> ImageSet:
    """Open `spec` (`[NAME=]PATH`): a `save_to_disk` dataset dir with an `image` column, or a folder of images."""
    name, path = parse_named(spec)
    if not path.exists():
        raise InputError(f"{option} {path}: not found; pass a dataset directory (save_to_disk) or a folder of images")
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        items = _load_dataset(path, option)
    else:
        items = list(iter_images(path)) if path.is_dir() else []
    if len(items) < min_images:
        raise InputError(f"{option} {path}: {len(items)} image(s) found, at least {min_images} needed")
    return ImageSet(name, path, items)


def _load_dataset(path: Path, option: str):
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    if "image" not in ds.column_names:
        raise InputError(f"{option} {path}: dataset has no 'image' column (columns: {', '.join(ds.column_names)})")
    return ds
