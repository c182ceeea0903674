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
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from ..errors import InputError, SourceError
from ..images import IMAGE_SUFFIXES, image_index, iter_images  # noqa: F401  (re-exported for the adapters)
from .vocab import derived_diseases

log = logging.getLogger(__name__)


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


BAD_FILES = ("error", "warn", "skip")


@dataclass
class SourceConfig:
    root: Path
    on_bad_files: str = "error"  # "error" | "warn" | "skip" for label rows that point at missing files

    def __post_init__(self):
        self.root = Path(self.root)
        if self.on_bad_files not in BAD_FILES:
            raise InputError(f"on_bad_files must be one of {', '.join(BAD_FILES)}, got {self.on_bad_files!r}")


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
    """Fill absent keys with None / [] so every record has the full contract; the disease list also names what the
    graded labels imply (DR grade >= 1, DME, glaucoma), so captions and filters see one consistent vocabulary."""
    out = {k: rec.get(k) for k in RECORD_KEYS}
    out["path"] = str(out["path"])
    # the schema's vocabulary: an adapter that lets a source code through (DDR's 5, a "L"/"R" column) fails here
    if out["dr_grade"] not in (None, 0, 1, 2, 3, 4):
        raise InputError(f"{out['path']}: dr_grade {out['dr_grade']!r} is not an ICDR grade 0-4 or None")
    if out["eye"] not in (None, "left", "right"):
        raise InputError(f"{out['path']}: eye {out['eye']!r} is not 'left', 'right' or None")
    out["diseases"] = derived_diseases(rec.get("diseases") or [], out["dr_grade"], out["dme"], out["glaucoma"])
    return out  # type: ignore[return-value]


def require_dir(root: Path, source: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{source}: directory not found: {root}")
    return root


Column = str | tuple[str, ...]  # a column name, or alternative spellings across releases (first present wins)


def read_table(path: Path, required: tuple[Column, ...], *, sep: str = ",", strip_names: bool = False) -> list[dict]:
    """Read a CSV/TSV (or .xlsx, with openpyxl) label file; fail at once with one line naming the file and the
    expected columns. Values are strings ("" when empty); header names are stripped when `strip_names`; an unnamed
    column is called `column{i}` (0-based position)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label file not found")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        names, rows = _read_xlsx(path)
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=sep)
            names = next(reader, [])
            rows = list(reader)
    # spreadsheets often carry a title or unit row above the header: take the first row naming the columns
    table, header_line = [names, *rows], 1
    for at, candidate in enumerate(table[:5]):
        candidate = [str(n).strip() if strip_names else str(n) for n in candidate]
        if all(any(a in candidate for a in _alternatives(c)) for c in required):
            names, rows, header_line = candidate, table[at + 1 :], at + 1
            break
    else:
        names = [str(n).strip() if strip_names else str(n) for n in names]
    missing = [_spell(c) for c in required if not any(a in names for a in _alternatives(c))]
    if missing:
        expected = ", ".join(_spell(c) for c in required)
        raise InputError(
            f"{path}: expected columns {expected}; missing {', '.join(missing)} (found: {', '.join(map(repr, names))})"
        )
    names = [n if n.strip() else f"column{i}" for i, n in enumerate(names)]  # unnamed columns by position
    width = len(names)
    return Rows((dict(zip(names, [*r, *[""] * (width - len(r))])) for r in rows), first_line=header_line + 1)


class Rows(list):
    """Label rows (blank ones kept, so `first_line + index` is the row's line in the file)."""

    def __init__(self, rows=(), first_line: int = 2):
        super().__init__(rows)
        self.first_line = first_line


def col(row: dict, column: Column, default: str = "") -> str:
    """The value of `column` (or of its first present alternative spelling) in `row`, stripped."""
    for name in _alternatives(column):
        if name in row:
            return str(row[name]).strip()
    return default


def _alternatives(c: Column) -> tuple[str, ...]:
    return (c,) if isinstance(c, str) else tuple(c)


def _spell(c: Column) -> str:
    return "|".join(_alternatives(c))


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        import openpyxl
    except ImportError:
        raise InputError(
            f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or export the sheet to CSV "
            "next to it with the same name and a .csv suffix"
        ) from None
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = [["" if v is None else _cell(v) for v in r] for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    return (rows[0] if rows else []), rows[1:]


def _cell(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def locate(root: Path, source: str, *names: str, required: bool = True) -> Path | None:
    """The first of `names` (file or dir, glob patterns allowed) at `root` or up to two folders below it: archives
    often unpack into an extra folder. A missing required one is a SourceError naming what was expected."""
    for name in names:
        for pattern in (name, f"*/{name}", f"*/*/{name}"):
            hits = sorted(root.glob(pattern))
            if hits:
                return hits[0]
    if required:
        raise SourceError(f"{source}: {root} does not look like the {source} layout: expected {' or '.join(names)}")
    return None


def missing_image(cfg: SourceConfig, label_file: Path, line: int, expected: str) -> None:
    """A label row whose image is absent: raise, warn or skip as `cfg.on_bad_files` says."""
    msg = f"{label_file} line {line}: image not found: {expected}"
    if cfg.on_bad_files == "error":
        raise InputError(f"{msg} (restore the file, or pass on_bad_files=warn|skip to leave the row out)")
    if cfg.on_bad_files == "warn":
        log.warning(msg)


def matched(
    cfg: SourceConfig,
    label_file: Path,
    rows: Iterable[dict],
    images: Path | dict[str, Path],
    key: Column | Callable[[dict], str],
    *,
    first_line: int = 2,
) -> Iterator[tuple[dict, Path]]:
    """(row, image path) for each label row whose image exists in `images` (a folder, or an `image_index`); missing
    ones go to `missing_image`. `key` is the column holding the file name/stem, or a function of the row.
    Line numbers start at `rows.first_line` (from `read_table`), else at `first_line`."""
    index = images if isinstance(images, dict) else image_index(images)
    where = images if isinstance(images, Path) else label_file.parent
    for line, row in enumerate(rows, start=getattr(rows, "first_line", first_line)):
        if not any(str(v).strip() for v in row.values()):
            continue  # blank line
        name = (key(row) if callable(key) else col(row, key)).strip()
        # labels spell names with or without extension, in other case, or as a path below the image folder
        path = next((index[k] for k in (name, name.lower(), Path(name).name, Path(name).stem) if k in index), None)
        if path is None:
            missing_image(cfg, label_file, line, str(where / name))
            continue
        yield row, path


def to_int(value, where: str = "") -> int | None:
    """An integer label; empty / NA cells are None."""
    text = str(value).strip() if value is not None else ""
    if text == "" or text.lower() in ("na", "nan", "none", "-"):
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise InputError(f"{where}: expected an integer label, got {value!r}")
    return int(number)


def eye_of(text: str | None) -> str | None:
    """'left'/'right' from left/right, OS/OD, L/R; anything else (numeric codes differ per source) is None."""
    t = (text or "").strip().lower()
    if t in ("left", "l", "os", "left eye"):
        return "left"
    if t in ("right", "r", "od", "right eye"):
        return "right"
    return None


def flag(value) -> bool | None:
    """A binary label from 1/0, yes/no, true/false; empty or anything else is None (unknown)."""
    t = str(value).strip().lower() if value is not None else ""
    if t in ("1", "1.0", "yes", "y", "true", "t"):
        return True
    if t in ("0", "0.0", "no", "n", "false", "f"):
        return False
    return None


def sex_of(text: str | None) -> str | None:
    t = (text or "").strip().lower()
    return {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}.get(t)


def to_float(value) -> float | None:
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError:
        return None


def split_of(text: str | None) -> str | None:
    t = (text or "").strip().lower()
    return {
        "train": "train",
        "training": "train",
        "val": "validation",
        "valid": "validation",
        "validation": "validation",
        "test": "test",
        "testing": "test",
    }.get(t)


def load(module, cfg: SourceConfig):
    """Records of one source as a `datasets.Dataset` (labels and paths; no pixels)."""
    from datasets import Dataset

    rows = [complete(r) for r in module.records(cfg)]
    return Dataset.from_list(rows)
