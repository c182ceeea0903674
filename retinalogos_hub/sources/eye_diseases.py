"""The Kaggle 'Eye Diseases Classification' set (gunavenkatdoddi), a mix of IDRiD, Ocular Recognition, HRF and
others: about 1,000 images per class.

Layout: `dataset/{cataract,diabetic_retinopathy,glaucoma,normal}/*.jpg` (4,217 images). It re-hosts images of other
sources, so dedup links them to their originals.
Layout facts: public READMEs of projects on the Kaggle set found with `find_string` (the four class names
`cataract, diabetic_retinopathy, glaucoma, normal`, 4,217 images); the `dataset/` top folder could not be confirmed
(the adapter reads the class folders at any depth); as written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {
    "cataract": {"diseases": [CATARACT]},
    "diabetic_retinopathy": {"diseases": [DR]},
    "glaucoma": {"glaucoma": True},
    "normal": {"diseases": [], "dr_grade": 0, "glaucoma": False},
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="eye_diseases",
    title="Kaggle Eye Diseases Classification",
    expects="dataset/{cataract,diabetic_retinopathy,glaucoma,normal}/*.jpg",
    labels=("diseases", "dr_grade", "glaucoma"),
    homepage="https://www.kaggle.com/datasets/gunavenkatdoddi/eye-diseases-classification",
    patient_key="none published",
    notes=("diabetic_retinopathy -> DR with grade unknown", "re-hosts other public sets"),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "eye_diseases", CLASSES, INFO.expects)
