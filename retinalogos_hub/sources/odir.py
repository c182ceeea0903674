"""ODIR-5K (Ocular Disease Intelligent Recognition), training part.

Layout: the annotation sheet (`data.xlsx`, the `ODIR-5K_Training_Annotations(Updated)_V2.xlsx` of some releases, or
a CSV export such as `full_df.csv`) with `ID,Patient Age,Patient Sex,Left-Fundus,Right-Fundus,Left-Diagnostic Keywords,
Right-Diagnostic Keywords,N,D,G,C,A,H,M,O` + `Training Images/{ID}_{left|right}.jpg`.
The N..O flags belong to the patient (the union of both eyes); each eye's diseases come from its own keywords, and the
flags are used only for an eye whose keywords are empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    flag,
    image_index,
    locate,
    matched,
    near,
    read_table,
    require_dir,
    sex_of,
    to_float,
)
from .vocab import DR, GLAUCOMA, ODIR_FLAGS, from_codes, from_keywords

SIDES = (("left", "Left"), ("right", "Right"))
FLAGS = ("N", *ODIR_FLAGS)
COLUMNS = (
    "ID",
    "Patient Age",
    "Patient Sex",
    "Left-Fundus",
    "Right-Fundus",
    "Left-Diagnostic Keywords",
    "Right-Diagnostic Keywords",
    *FLAGS,
)
# ODIR writes DR severity in words; order matters ("non proliferative" contains "proliferative")
DR_WORDS = (
    (r"severe non ?proliferative", 3),
    (r"moderate non ?proliferative", 2),
    (r"mild non ?proliferative", 1),
    (r"proliferative", 4),
)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="odir",
    title="ODIR-5K",
    expects="data.xlsx | ODIR-5K_Training_Annotations*.xlsx | full_df.csv (ID,Patient Age,Patient Sex,Left-Fundus,"
    "Right-Fundus,Left-/Right-Diagnostic Keywords,N,D,G,C,A,H,M,O) + Training Images/{ID}_{left|right}.jpg",
    labels=("diseases", "findings", "dr_grade", "glaucoma", "eye", "patient_id", "age", "sex"),
    homepage="https://odir2019.grand-challenge.org/dataset/",
    patient_key="ID",
    notes=(
        "per-eye diseases from that eye's keywords; patient flags only when the keywords are empty",
        "keywords also go to findings",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "odir")
    labels = locate(root, "odir", "data.xlsx", "ODIR-5K_Training_Annotations*.xlsx", "data.csv", "full_df.csv")
    images = image_index(
        near(labels, root, "odir", "Training Images", "ODIR-5K_Training_Dataset", "preprocessed_images")
    )
    seen = set()  # full_df.csv repeats the patient row once per image
    for side, prefix in SIDES:
        for row, path in matched(cfg, labels, read_table(labels, COLUMNS), images, f"{prefix}-Fundus"):
            if path in seen:
                continue
            seen.add(path)
            keywords = row[f"{prefix}-Diagnostic Keywords"].strip()
            if keywords:
                diseases = from_keywords(keywords)
            else:  # no per-eye text: fall back to the patient's flags
                diseases = from_codes([c for c in ODIR_FLAGS if flag(row[c])], ODIR_FLAGS)
            yield {
                "path": str(path),
                "source_id": path.stem,
                "patient_id": row["ID"].strip(),
                "eye": side,
                "dr_grade": dr_grade(keywords, diseases),
                "glaucoma": (GLAUCOMA in diseases) if keywords else None,
                "diseases": diseases,
                "findings": keywords or None,
                "age": to_float(row["Patient Age"]),
                "sex": sex_of(row["Patient Sex"]),
            }


def dr_grade(keywords: str, diseases: list[str]) -> int | None:
    """ICDR grade from ODIR's words; 0 for an eye read as normal (photo remarks like "lens dust" aside); None when DR
    is present without a severity, or the eye has other findings that say nothing about DR."""
    text = keywords.lower()
    if DR in diseases:
        return next((g for pattern, g in DR_WORDS if re.search(pattern, text)), None)
    return 0 if not diseases and "normal fundus" in text else None
