"""AIROGS (Rotterdam EyePACS AIROGS, glaucoma screening), training set.

Layout: `train_labels.csv` (challenge_id,class; class RG = referable glaucoma, NRG = not) + `{0..5}/{challenge_id}.jpg`
(the release is split into six zip parts, each unpacking to a numbered folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, matched, read_table, require_dir

CLASSES = {"RG": True, "NRG": False}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="airogs",
    title="Rotterdam EyePACS AIROGS",
    expects="train_labels.csv (challenge_id,class RG|NRG) + {0..5}/{challenge_id}.jpg",
    labels=("glaucoma",),
    homepage="https://airogs.grand-challenge.org/",
    patient_key="none published",
    notes=("RG = referable glaucoma -> glaucoma True",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "airogs")
    labels = locate(root, "airogs", "train_labels.csv")
    for row, path in matched(
        cfg, labels, read_table(labels, ("challenge_id", "class")), image_index(root, recursive=True), "challenge_id"
    ):
        yield {"path": str(path), "source_id": path.stem, "glaucoma": referable(row["class"], labels, path.stem)}


def referable(value: str, labels, image: str) -> bool | None:
    """RG/NRG -> True/False; U (ungradable, JustRAIGS) -> None."""
    v = value.strip().upper()
    if v in CLASSES:
        return CLASSES[v]
    if v in ("U", ""):
        return None
    raise InputError(f"{labels} image {image}: class must be RG or NRG, got {value!r}")
