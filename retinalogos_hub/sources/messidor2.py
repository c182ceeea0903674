"""Messidor-2 with the adjudicated grades of Krause et al. (2018).

Layout: `messidor_data.csv` (image_id,adjudicated_dr_grade,adjudicated_dme,adjudicated_gradable) + the images anywhere
below the root (the ADCIS download unpacks to `IMAGES/`); optional `messidor-2.csv`, the exam pairing sheet (one exam
per row, `;`-separated image names of the two eyes), which gives the patient key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import (
    IMAGE_SUFFIXES,
    Record,
    SourceConfig,
    SourceInfo,
    col,
    image_index,
    locate,
    matched,
    read_table,
    read_text,
    require_dir,
    to_int,
)

# the Krause et al. spelling first, then the Kaggle re-release's (`id_code,diagnosis`, APTOS-style; no DME or
# gradability columns: those stay None)
IMAGE = ("image_id", "id_code", "image")
GRADE = ("adjudicated_dr_grade", "diagnosis")
DME = ("adjudicated_dme", "dme")
GRADABLE = ("adjudicated_gradable", "gradable")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="messidor2",
    title="Messidor-2 (adjudicated DR/DME grades)",
    expects="messidor_data.csv (image_id,adjudicated_dr_grade,adjudicated_dme,adjudicated_gradable; or the Kaggle "
    "re-release's id_code,diagnosis) + IMAGES/*; "
    "optional messidor-2.csv exam pairing",
    labels=("dr_grade", "dme", "quality", "patient_id"),
    homepage="https://www.adcis.net/en/third-party/messidor2/",
    patient_key="exam from messidor-2.csv (first image of the pair); none without it",
    notes=("ungradable images (adjudicated_gradable=0) have no grade and quality 'reject'",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "messidor2")
    labels = locate(root, "messidor2", "messidor_data.csv")
    rows = read_table(labels, (IMAGE, GRADE))
    pairing = locate(root, "messidor2", "messidor-2.csv", required=False)
    exams = exam_of(pairing) if pairing else {}
    for row, path in matched(cfg, labels, rows, image_index(root, recursive=True), IMAGE):
        where = f"{labels} image {col(row, IMAGE)}"
        gradable = to_int(col(row, GRADABLE), where)
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": exams.get(path.name.lower()),
            "dr_grade": to_int(col(row, GRADE), where),
            "dme": to_int(col(row, DME), where),
            "quality": None if gradable is None else ("usable" if gradable else "reject"),
        }


def exam_of(sheet: Path) -> dict[str, str]:
    """image file name (lower-case) -> exam id (the stem of the exam's first image) from the pairing sheet."""
    out: dict[str, str] = {}
    for line in read_text(sheet).splitlines():
        names = [c.strip() for c in re.split(r"[;,\t]", line) if c.strip().lower().endswith(IMAGE_SUFFIXES)]
        for name in names:
            out[name.lower()] = Path(names[0]).stem
    return out
