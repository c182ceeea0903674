"""APTOS 2019 Blindness Detection (Kaggle): `train.csv` (id_code,diagnosis) + `train_images/{id_code}.png`.

The Kaggle test set has no public labels, so only the training images are listed (the test split is ours to make).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo, locate, matched, near, read_table, require_dir, to_int


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="aptos",
    title="APTOS 2019 Blindness Detection",
    expects="train.csv (id_code,diagnosis) + train_images/{id_code}.png",
    labels=("dr_grade",),
    homepage="https://www.kaggle.com/c/aptos2019-blindness-detection",
    patient_key="none (one image per row; no patient ids published)",
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "aptos")
    labels = locate(root, "aptos", "train.csv")
    images = near(labels, root, "aptos", "train_images")
    for row, path in matched(cfg, labels, read_table(labels, ("id_code", "diagnosis")), images, "id_code"):
        yield {
            "path": str(path),
            "source_id": path.stem,
            "dr_grade": to_int(row["diagnosis"], f"{labels} id_code {path.stem}"),
        }
