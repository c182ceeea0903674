"""DDR (Nankai / OIA-DDR), DR grading part.

Layout: `DR_grading/{train,valid,test}.txt` (space-separated `filename label`, no header) + `DR_grading/{train,valid,
test}/*.jpg`. Label 5 means ungradable: no grade, quality "reject".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, locate, matched, read_text, require_dir, to_int

SPLITS = (("train", "train"), ("valid", "validation"), ("test", "test"))
UNGRADABLE = 5


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="ddr",
    title="DDR (OIA-DDR) DR grading",
    expects="DR_grading/{train,valid,test}.txt ('filename label' per line) + DR_grading/{train,valid,test}/*.jpg",
    labels=("dr_grade", "quality", "split"),
    homepage="https://github.com/nkicsl/DDR-dataset",
    patient_key="none (one image per row)",
    notes=("label 5 = ungradable -> dr_grade None, quality 'reject'",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "ddr")
    grading = locate(root, "ddr", "DR_grading")
    found = False
    for name, split in SPLITS:
        labels = grading / f"{name}.txt"
        if not labels.is_file():
            continue
        found = True
        for row, path in matched(cfg, labels, read_pairs(labels), grading / name, "image", first_line=1):
            grade = to_int(row["label"], f"{labels} image {row['image']}")
            if grade is None or not 0 <= grade <= UNGRADABLE:
                raise InputError(f"{labels} image {row['image']}: label must be 0-5, got {row['label']!r}")
            yield {
                "path": str(path),
                "source_id": path.stem,
                "dr_grade": None if grade == UNGRADABLE else grade,
                "quality": "reject" if grade == UNGRADABLE else None,
                "split": split,
            }
    if not found:
        locate(grading, "ddr", "train.txt")  # raises, naming what was expected


def read_pairs(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{path} line {n}: expected 'filename label' (space-separated), got {line!r}")
        rows.append({"image": parts[0], "label": parts[1]})
    return rows
