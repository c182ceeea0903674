"""DeepDRiD, regular fundus images (the ultra-widefield part is not colour-fundus-comparable and is left out).

Layout: `regular_fundus_images/regular-fundus-{training,validation}/regular-fundus-{training,validation}.csv`
(patient_id,image_id,image_path,left_eye_DR_Level,right_eye_DR_Level,patient_DR_Level,Overall quality,...) +
`.../Images/{patient_id}/{image_id}.jpg`. Each row is one eye: the other eye's grade column is empty. The
`image_path` column is wrong in the release, so images are found by `image_id` under `Images/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from . import base
from .base import (
    EyeConflicts,
    Record,
    SourceConfig,
    SourceInfo,
    col,
    image_index,
    locate,
    matched,
    read_table,
    require_dir,
    to_int,
)

SPLITS = (("training", "train"), ("validation", "validation"))
COLUMNS = ("patient_id", "image_id", "left_eye_DR_Level", "right_eye_DR_Level")
QUALITY = ("Overall quality", "Overall_quality")


NAME_EYE = re.compile(r"_([lr])\d*$", re.I)  # {patient}_{l|r}{shot}


@dataclass
class Config(SourceConfig):
    eye_conflicts: str = "warn"  # file name vs grade column disagree on the eye: "warn" (count, eye None) | "error"


INFO = SourceInfo(
    name="deepdrid",
    title="DeepDRiD regular fundus images",
    expects="regular_fundus_images/regular-fundus-{training,validation}/regular-fundus-{training,validation}.csv "
    "(patient_id,image_id,left_eye_DR_Level,right_eye_DR_Level,...) + Images/{patient_id}/{image_id}.jpg",
    labels=("dr_grade", "eye", "patient_id", "quality", "split"),
    homepage="https://github.com/deepdrdoc/DeepDRiD",
    patient_key="patient_id (the patient folder)",
    notes=(
        "'Overall quality' 1 -> good, 0 -> reject",
        "the eye from the file name ({patient}_{l|r}{shot}) and the grade column must agree: eye_conflicts=warn "
        "counts the rows that do not (their eye is None), eye_conflicts=error fails on the first",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "deepdrid")
    conflicts = EyeConflicts("deepdrid", cfg.eye_conflicts)
    yield from _records(cfg, root, conflicts)
    conflicts.report()


def _records(cfg: Config, root, conflicts: EyeConflicts) -> Iterator[Record]:
    for name, split in SPLITS:
        labels = locate(root, "deepdrid", f"regular-fundus-{name}/regular-fundus-{name}.csv", required=split == "train")
        if labels is None:
            continue
        images = image_index(labels.parent / "Images", recursive=True)
        for row, path in matched(cfg, labels, read_table(labels, COLUMNS), images, "image_id"):
            where = f"{labels} image_id {row['image_id']}"
            left, right = to_int(row["left_eye_DR_Level"], where), to_int(row["right_eye_DR_Level"], where)
            by_column = "left" if left is not None else "right" if right is not None else None
            m = NAME_EYE.search(path.stem)
            by_name = {"l": "left", "r": "right"}[m.group(1).lower()] if m else None
            eye = conflicts.check(by_name, by_column, f"{labels} line {base.position()[1]} image_id {row['image_id']}")
            quality = to_int(col(row, QUALITY), where)
            grade = left if left is not None else right
            yield {
                "path": str(path),
                "source_id": path.stem,
                "patient_id": row["patient_id"].strip() or path.parent.name,
                "eye": eye,
                "dr_grade": None if grade == 5 else grade,  # 5: ungradable
                "quality": "reject" if grade == 5 else None if quality is None else ("good" if quality else "reject"),
                "split": split,
            }
