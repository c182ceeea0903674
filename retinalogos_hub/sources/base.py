"""What every source adapter shares: the record contract, config base, and strict label-file reading.

An adapter is one module `sources/<name>.py` with:
  - `@dataclass class <Name>Config(SourceConfig)` (extra options with defaults),
  - `INFO = SourceInfo(...)` (what it expects on disk, its labels; licence comes from `licenses.py`),
  - `def records(cfg) -> Iterator[Record]`: one Record per image file, labels already mapped into the schema.
It is registered by one line in `sources/__init__.py`. `load(module, cfg)` turns records into a `datasets.Dataset`
(label rows without pixels; curation decodes the images).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TypedDict

from ..errors import InputError, SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".ppm", ".gif")


class Record(TypedDict, total=False):
    path: str  # absolute path of the raw image file
    source_id: str  # stable within the source (usually the file stem)
    patient_id: str | None
    eye: str | None  # "left" | "right"
    dr_grade: int | None  # ICDR 0-4
    dme: int | None
    glaucoma: bool | None
    diseases: list[str]
    findings: str | None
    age: float | None
    sex: str | None
    quality: str | None  # "good" | "usable" | "reject"
    split: str | None  # the official split when the source has one ("train" | "validation" | "test"), else None


RECORD_KEYS = tuple(Record.__annotations__)


@dataclass
class SourceConfig:
    root: Path
    on_bad_files: str = "error"  # "error" | "warn" | "skip" for label rows that point at missing files


@dataclass(frozen=True)
class SourceInfo:
    name: str
    title: str
    expects: str  # what must be on disk, e.g. "trainLabels.csv (image,level) + train/{id}_{left|right}.jpeg"
    labels: tuple[str, ...]  # schema columns this source fills
    homepage: str = ""
    patient_key: str = ""  # how patient_id is derived, for `retinalogos sources`
    notes: tuple[str, ...] = field(default_factory=tuple)


def complete(rec: dict) -> Record:
    """Fill absent keys with None / [] so every record has the full contract."""
    out = {k: rec.get(k) for k in RECORD_KEYS}
    out["diseases"] = list(rec.get("diseases") or [])
    return out  # type: ignore[return-value]


def require_dir(root: Path, source: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{source}: directory not found: {root}")
    return root


def read_table(path: Path, required: tuple[str, ...], *, sep: str = ",", strip_names: bool = False) -> list[dict]:
    """Read a CSV/TSV label file; fail at once with one line naming the file and the expected columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=sep)
        names = list(reader.fieldnames or [])
        if strip_names:
            reader.fieldnames = names = [n.strip() for n in names]
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(
                f"{path}: expected columns {', '.join(required)}; missing {', '.join(missing)} (found: {', '.join(names)})"
            )
        return list(reader)


def find_image(directory: Path, stem: str) -> Path | None:
    """The image file `stem.*` in `directory` (labels often omit or vary the extension)."""
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        p = directory / f"{stem}{suffix}"
        if p.is_file():
            return p
    p = directory / stem
    return p if p.is_file() else None


def iter_images(directory: Path) -> Iterator[Path]:
    for p in sorted(Path(directory).rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p


def load(module, cfg: SourceConfig):
    """Records of one source as a `datasets.Dataset` (labels and paths; no pixels)."""
    from datasets import Dataset

    rows = [complete(r) for r in module.records(cfg)]
    return Dataset.from_list(rows)
