"""DeepDRiD, regular fundus images (the ultra-widefield part is not colour-fundus-comparable and is left out).

Layout: `regular_fundus_images/regular-fundus-{training,validation}/regular-fundus-{training,validation}.csv`
(patient_id,image_id,image_path,left_eye_DR_Level,right_eye_DR_Level,patient_DR_Level,Overall quality,...) +
`.../Images/{patient_id}/{image_id}.jpg`. Each row is one eye: the other eye's grade column is empty. The
`image_path` column is wrong in the release, so images are found by `image_id` under `Images/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo, col, image_index, locate, matched, read_table, require_dir, to_int

SPLITS = (("training", "train"), ("validation", "validation"))
COLUMNS = ("patient_id", "image_id", "left_eye_DR_Level", "right_eye_DR_Level")
QUALITY = ("Overall quality", "Overall_quality")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="deepdrid",
    title="DeepDRiD regular fundus images",
    expects="regular_fundus_images/regular-fundus-{training,validation}/regular-fundus-{training,validation}.csv "
    "(patient_id,image_id,left_eye_DR_Level,right_eye_DR_Level,...) + Images/{patient_id}/{image_id}.jpg",
    labels=("dr_grade", "eye", "patient_id", "quality", "split"),
    homepage="https://github.com/deepdrdoc/DeepDRiD",
    patient_key="patient_id (the patient folder)",
    notes=("'Overall quality' 1 -> good, 0 -> reject",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "deepdrid")
    for name, split in SPLITS:
        labels = locate(root, "deepdrid", f"regular-fundus-{name}/regular-fundus-{name}.csv", required=split == "train")
        if labels is None:
            continue
        images = image_index(labels.parent / "Images", recursive=True)
        for row, path in matched(cfg, labels, read_table(labels, COLUMNS), images, "image_id"):
            where = f"{labels} image_id {row['image_id']}"
            left, right = to_int(row["left_eye_DR_Level"], where), to_int(row["right_eye_DR_Level"], where)
            eye = "left" if left is not None else "right" if right is not None else None
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
