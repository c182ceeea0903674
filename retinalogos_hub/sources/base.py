"""What every source adapter shares: the record contract, config base, and strict label-file reading.

An adapter is one module `sources/<name>.py` with:
  - `@dataclass class <Name>Config(SourceConfig)` (extra options with defaults),
  - `INFO = SourceInfo(...)` (what it expects on disk, its labels; licence comes from `licenses.py`),
  - `def records(cfg) -> Iterator[Record]`: one Record per image file, labels already mapped into the schema.
It is registered by one line in `sources/__init__.py`. `load(module, cfg)` turns records into a `datasets.Dataset`
(label rows without pixels; curation decodes the images).
"""

from __future__ import annotations

import contextvars
import csv
import io
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
    age_band: str | None  # set at curation (privacy.age_band); adapters leave it out
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
    _note_read(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        names, rows = _read_xlsx(path)
    else:
        try:
            reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=sep)
            names = next(reader, [])
            rows = list(reader)
        except csv.Error as e:
            raise InputError(f"{path} line {reader.line_num}: not a readable {sep!r}-separated table: {e}") from None
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


# the declared chain after UTF-8: cp1252 (Windows/hospital exports; it leaves 5 bytes undefined, so a file in another
# code page usually fails it), then charset-normalizer's guess (GBK, Shift-JIS, ...: short files fool it into rare code
# pages, hence second), then latin-1, which decodes any byte, so the chain always ends with text
FALLBACK_ENCODINGS = ("cp1252", None, "latin-1")  # None: charset-normalizer's guess


def read_text(path: Path) -> str:
    """A label file's text: UTF-8 (with or without BOM) when it decodes, else the first of `FALLBACK_ENCODINGS` that
    does. A file that is not UTF-8 is logged with the encoding used and the first odd line, so a wrong guess shows.
    """
    path = Path(path)
    _note_read(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read label file: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        first_bad = data.count(b"\n", 0, e.start) + 1
    for encoding in FALLBACK_ENCODINGS:
        encoding = encoding or _detected(data)
        if not encoding:
            continue
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        log.warning("%s is not UTF-8 (first non-UTF-8 byte on line %d); read as %s", path, first_bad, encoding)
        return text.lstrip("\ufeff")
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _detected(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # the declared chain still reads the file
        return None
    best = from_bytes(data).best()
    return best.encoding if best is not None else None


# label files read in this context (for `sources --check`), and the row being matched (for error messages)
_READS: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("retinalogos_reads", default=None)
_POSITION: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("retinalogos_row", default=None)


def _note_read(path: Path) -> None:
    reads = _READS.get()
    if reads is not None and path not in reads:
        reads.append(path)


def position(reset: bool = False) -> tuple[str, int] | None:
    """(label file, line) of the last row `matched` handed to an adapter, for naming where an error happened;
    `reset` forgets it (before the next source)."""
    if reset:
        _POSITION.set(None)
    return _POSITION.get()


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


def near(anchor: Path, root: Path, source: str, *names: str, required: bool = True) -> Path | None:
    """The first of `names` nearest to `anchor` (a label file or folder already found): searched as `locate` does at
    the anchor's folder, then at each parent up to `root`. Bundles hold several datasets side by side (a Kaggle
    glaucoma bundle with G1020/, ORIGA/, REFUGE/): the images of a label file are the ones in its own dataset folder,
    not the first `Images/` anywhere below the root."""
    root = Path(root).resolve()
    folder = Path(anchor).resolve()
    folder = folder if folder.is_dir() else folder.parent
    while True:
        hit = locate(folder, source, *names, required=False)
        if hit is not None and hit.resolve() != Path(anchor).resolve():
            return hit
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    if required:
        raise SourceError(f"{source}: no {' or '.join(names)} beside {anchor} (searched up to {root})")
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
        _POSITION.set((str(label_file), line))
        yield row, path


EYE_CONFLICTS = ("warn", "error")


class EyeConflicts:
    """Rows whose file name and eye column disagree on the eye: counted and logged once (`warn`, the eye becomes
    None: neither can be trusted), or the first one fails naming the file and row (`error`)."""

    def __init__(self, source: str, how: str):
        if how not in EYE_CONFLICTS:
            raise InputError(f"{source}: eye_conflicts must be one of {', '.join(EYE_CONFLICTS)}, got {how!r}")
        self.source, self.how, self.count, self.first = source, how, 0, ""

    def check(self, by_name: str | None, by_column: str | None, where: str) -> str | None:
        """The eye to record: the agreed one, the one side that says, or None on a conflict."""
        if by_name and by_column and by_name != by_column:
            msg = f"{where}: the file name says {by_name} eye but the grade column says {by_column}"
            if self.how == "error":
                raise InputError(msg + " (fix the row, or pass eye_conflicts=warn to count them and drop the eye)")
            self.count += 1
            self.first = self.first or msg
            return None
        return by_name or by_column

    def report(self) -> None:
        if self.count:
            log.warning(
                "%s: %d rows whose file name and grade column disagree on the eye (their eye is left unknown); "
                "first: %s",
                self.source,
                self.count,
                self.first,
            )


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
