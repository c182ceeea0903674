"""The Kaggle 'glaucoma detection' fundus set (sshikamaru): photos sorted by glaucoma status.

Layout: `Fundus_Train_Val_Data/Fundus_Scanes_Sorted/{Train,Validation}/{Glaucoma_Positive,Glaucoma_Negative}/*.jpg`
(numbered names, e.g. `Validation/Glaucoma_Positive/613.jpg`), with a `glaucoma.csv` at the root (not read; some users
describe the set as ORIGA-derived, so dedup may link it to ORIGA).
Layout facts: public notebooks on the Kaggle copy found with `find_string` (`/kaggle/input/glaucoma-detection/
Fundus_Train_Val_Data/Fundus_Scanes_Sorted/Validation/Glaucoma_Positive/613.jpg`, `glaucoma.csv`); as written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {"glaucoma_positive": {"glaucoma": True}, "glaucoma_negative": {"glaucoma": False}}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="glaucoma_det",
    title="Kaggle glaucoma detection fundus scans (sshikamaru)",
    expects="Fundus_Scanes_Sorted/{Train,Validation}/{Glaucoma_Positive,Glaucoma_Negative}/*.jpg",
    labels=("glaucoma", "split"),
    homepage="https://www.kaggle.com/datasets/sshikamaru/glaucoma-detection",
    patient_key="none published",
    notes=(),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "glaucoma_det", CLASSES, INFO.expects)
