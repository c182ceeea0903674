"""A generic adapter for private or EHR sources: any label table + image folder, described by a small YAML mapping.

# mapping.yaml (beside the table, or passed as `mapping`)
labels: exams.csv          # CSV/TSV/xlsx, relative to the root
sep: ","
image: file                # column naming the image (file name or path under `images`)
images: photos             # image folder, relative to the root
columns: {patient_id: mrn, eye: laterality, dr_grade: icdr, age: age_years, findings: report}
values: {eye: {OD: right, OS: left}, dr_grade: {R0: 0, R1: 1}}
diseases: [amd, glaucoma_dx]   # 0/1 columns; a 1 adds the column name (or its `values.diseases` name)
diseases_text: diagnosis       # free text, mapped through the shared vocabulary
identifiers: [name, clinician, clinic, address]  # direct identifiers: never stored, redacted from opted-in free text

The licence table marks `table` private: curation hashes its ids with the user's secret, keeps an age band only and
drops `findings` unless `privacy.free_text` opts the source in (see retinalogos_hub/privacy.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError, InputError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    eye_of,
    flag,
    image_index,
    matched,
    read_table,
    require_dir,
    sex_of,
    split_of,
    to_float,
    to_int,
)
from .vocab import from_keywords, unique

QUALITIES = ("good", "usable", "reject")
# schema field -> converter(value, where) for mapped columns
CONVERT = {
    "patient_id": lambda v, w: v or None,
    "eye": lambda v, w: (eye_of(v) or _bad(w, v, "left/right/OD/OS")) if v else None,
    "dr_grade": lambda v, w: _grade(to_int(v, w), w),
    "dme": lambda v, w: to_int(v, w),
    "glaucoma": lambda v, w: flag(v),
    "findings": lambda v, w: v or None,
    "age": lambda v, w: to_float(v),
    "sex": lambda v, w: sex_of(v),
    "quality": lambda v, w: (v.lower() if v.lower() in QUALITIES else _bad(w, v, "/".join(QUALITIES))) if v else None,
    "split": lambda v, w: split_of(v) or _bad(w, v, "train/validation/test") if v else None,
}


@dataclass
class Mapping:
    labels: str
    image: str
    images: str = "."
    sep: str = ","
    id: str | None = None  # column with a stable id; default: the image file stem
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    diseases: list[str] = field(default_factory=list)
    diseases_text: str | None = None
    identifiers: list[str] = field(default_factory=list)  # columns of names, clinics, addresses, phone numbers, ...


@dataclass
class Config(SourceConfig):
    mapping: Path | None = None  # default: <root>/mapping.yaml


INFO = SourceInfo(
    name="table",
    title="Generic table (private / EHR sources)",
    expects="a label table + image folder described by mapping.yaml (labels, image, images, columns, values, "
    "diseases, diseases_text)",
    labels=("any of: patient_id, eye, dr_grade, dme, glaucoma, diseases, findings, age, sex, quality, split",),
    patient_key="the column mapped to patient_id",
    notes=("licence: the data owner's; never redistributable by default",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "table")
    path = Path(cfg.mapping) if cfg.mapping else root / "mapping.yaml"
    m = load_config(Mapping, path)
    unknown = [k for k in [*m.columns, *m.values] if k not in CONVERT and k != "diseases"]
    if unknown:
        raise ConfigError(f"{path}: unknown schema field(s) {', '.join(unknown)}; valid: {', '.join(CONVERT)}")
    labels = root / m.labels
    text = [m.diseases_text] if m.diseases_text else []
    required = (m.image, *m.columns.values(), *m.diseases, *text, *m.identifiers)
    rows = read_table(labels, tuple(dict.fromkeys(required)), sep=m.sep, strip_names=True)
    images = image_index(root / m.images, recursive=True)
    for row, image in matched(cfg, labels, rows, images, lambda r: Path(r[m.image].strip()).name):
        where = f"{labels} image {row[m.image]}"
        rec: dict = {"path": str(image), "source_id": row[m.id].strip() if m.id else image.stem}
        for fld, column in m.columns.items():
            raw = row[column].strip()
            value_map = {str(k): v for k, v in m.values.get(fld, {}).items()}
            rec[fld] = CONVERT[fld](str(value_map.get(raw, raw)), where)
        names = m.values.get("diseases", {})
        found = [str(names.get(c, c)) for c in m.diseases if flag(row[c])]
        rec["diseases"] = unique([*found, *(from_keywords(row[m.diseases_text]) if m.diseases_text else [])])
        rec["identifiers"] = [row[c].strip() for c in m.identifiers if row[c].strip()]
        yield rec


def _bad(where: str, value: str, expected: str):
    raise InputError(f"{where}: value {value!r} is not one of {expected}; map it under `values:` in the mapping")


def _grade(grade: int | None, where: str) -> int | None:
    if grade is not None and not 0 <= grade <= 4:
        raise InputError(f"{where}: dr_grade must be ICDR 0-4, got {grade}; map it under `values: dr_grade:`")
    return grade
