"""The Kaggle 'cataract dataset' (jr2ngb): fundus photos sorted into four class folders.

Layout: `dataset/{1_normal,2_cataract,2_glaucoma,3_retina_disease}/*.png`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {
    "1_normal": {"diseases": [], "glaucoma": False},
    "2_cataract": {"diseases": [CATARACT]},
    "2_glaucoma": {"glaucoma": True},
    "3_retina_disease": {"diseases": ["retinal disease"]},
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="cataract",
    title="Kaggle cataract dataset (jr2ngb)",
    expects="dataset/{1_normal,2_cataract,2_glaucoma,3_retina_disease}/*.png",
    labels=("diseases", "glaucoma"),
    homepage="https://www.kaggle.com/datasets/jr2ngb/cataractdataset",
    patient_key="none published",
    notes=("3_retina_disease -> 'retinal disease' (unspecified)",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "cataract", CLASSES, INFO.expects)
