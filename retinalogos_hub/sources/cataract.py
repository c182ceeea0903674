"""The Kaggle 'cataract dataset' (jr2ngb): fundus photos sorted into four class folders.

Layout: `dataset/{1_normal,2_cataract,2_glaucoma,3_retina_disease}/*.png` (a re-upload of
github.com/cvblab/retina_dataset).
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `adequate_34_cataract`, the four folder
names) and a public ingestion script found with `find_string` (the same folders, PNG files, source
github.com/cvblab/retina_dataset, licence "not specified"); as written."""

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
