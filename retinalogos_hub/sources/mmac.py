"""MMAC 2023 (Myopic Maculopathy Analysis Challenge, MICCAI 2023), task 1: myopic maculopathy classification.

Layout: `1. Classification of Myopic Maculopathy/1. Images/{1. Training Set,2. Validation Set}/*.png`
(`mmac_task_1_train_NNNN.png`) and
`2. Groundtruths/{1,2}. MMAC2023_Myopic_Maculopathy_Classification_{Training,Validation}_Labels.csv` (image,
myopic_maculopathy_grade, age, sex, height, weight, data_center): the META-PM category 0-4, with the patient's age
and sex when given. Folders lettered `a.`/`b.` instead of numbered are accepted too.
Layout facts: public MMAC loaders found with `find_string` (`1. Images/1. Training Set`, `2. Validation Set`,
`2. Groundtruths/1. MMAC2023_Myopic_Maculopathy_Classification_Training_Labels.csv`, the column list above) and FLAIR
(github.com/jusiro/FLAIR `local_data/dataframes/transferability/classification/38_MMAC23A_train.csv`, file names);
the folders are numbered `1.`/`2.`, not lettered, and age and sex are now read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    image_index,
    locate,
    matched,
    read_table,
    require_dir,
    sex_of,
    to_float,
    to_int,
)
from .vocab import MYOPIA

PARTS = (("train", "Training"), ("validation", "Validation"))
META_PM = {
    0: "no myopic retinal lesions",
    1: "tessellated fundus",
    2: "diffuse chorioretinal atrophy",
    3: "patchy chorioretinal atrophy",
    4: "macular atrophy",
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="mmac",
    title="MMAC 2023 myopic maculopathy classification",
    expects="1. Images/{1. Training Set,2. Validation Set}/*.png + 2. Groundtruths/*Myopic_Maculopathy*_Labels.csv "
    "(image,myopic_maculopathy_grade[,age,sex,...])",
    labels=("diseases", "findings", "split", "age", "sex"),
    homepage="https://codalab.lisn.upsaclay.fr/competitions/12441",
    patient_key="none published",
    notes=("META-PM 1 -> tessellation; 2-4 -> myopia + myopic maculopathy; the category goes to findings",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "mmac")
    for split, word in PARTS:
        labels = locate(root, "mmac", f"*Myopic_Maculopathy*{word}_Labels.csv", required=split == "train")
        if labels is None:
            continue
        folder = next(iter(sorted(labels.parent.parent.glob(f"*Images/*{word} Set"))), labels.parent)
        rows = read_table(labels, ("image", "myopic_maculopathy_grade"), strip_names=True)
        for row, path in matched(cfg, labels, rows, image_index(folder), "image"):
            grade = to_int(row["myopic_maculopathy_grade"], f"{labels} image {row['image']}")
            if grade not in META_PM:
                raise InputError(f"{labels} image {row['image']}: myopic_maculopathy_grade must be 0-4, got {grade}")
            yield {
                "path": str(path),
                "source_id": f"{split}-{path.stem}",
                "diseases": ["tessellation"] if grade == 1 else [MYOPIA, "myopic maculopathy"] if grade >= 2 else [],
                "findings": f"META-PM category {grade}: {META_PM[grade]}",
                "split": split,
                "age": _age(row.get("age", "")),
                "sex": sex_of(row.get("sex")),
            }


def _age(value) -> float | None:
    age = to_float(value)
    return age if age is not None and 0 < age < 130 else None  # NaN and blanks fail the comparison
