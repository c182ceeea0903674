"""BRSET (Brazilian Multilabel Ophthalmological Dataset, PhysioNet).

Layout: `labels.csv` (v1.0.0) or `labels_brset.csv` (v1.0.1+) + `fundus_photos/{image_id}.jpg`. Releases renamed
several columns; every column is read by all of its known spellings. exam_eye 1 = right, 2 = left; patient_sex
1 = male, 2 = female; quality Adequate/Inadequate; 0/1 finding columns -> disease names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    col,
    flag,
    locate,
    matched,
    read_table,
    require_dir,
    to_float,
    to_int,
)
from .vocab import AMD, DME, DR, HYPERTENSIVE, MYOPIA

IMAGE = ("image_id", "imageid")
PATIENT = ("patient_id", "patientid")
GRADE = ("DR_ICDR", "dr_icdr", "icdr")
EYE = ("exam_eye", "eye")
SEX = ("patient_sex", "sex")
AGE = ("patient_age", "age")
QUALITY = ("quality", "image_quality")
# finding column (all spellings) -> disease name
FINDINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("diabetic_retinopathy",), DR),
    (("macular_edema", "macular_oedema"), DME),
    (("scar",), "scar"),
    (("nevus",), "nevus"),
    (("amd",), AMD),
    (("vascular_occlusion",), "vascular occlusion"),
    (("hypertensive_retinopathy",), HYPERTENSIVE),
    (("drusens", "drusen"), "drusen"),
    (("hemorrhage", "haemorrhage"), "hemorrhage"),
    (("retinal_detachment",), "retinal detachment"),
    (("myopic_fundus", "myoptic_fundus"), MYOPIA),
    (("increased_cup_disc", "increased_cup_disk"), "increased cup-disc ratio"),
    (("other",), "other"),
)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="brset",
    title="BRSET (Brazilian Multilabel Ophthalmological Dataset)",
    expects="labels.csv | labels_brset.csv (image_id,patient_id,patient_age,patient_sex,exam_eye,DR_ICDR,"
    "macular_edema,... findings 0/1, quality) + fundus_photos/{image_id}.jpg",
    labels=("dr_grade", "dme", "diseases", "eye", "patient_id", "age", "sex", "quality"),
    homepage="https://physionet.org/content/brazilian-ophthalmological/",
    patient_key="patient_id",
    notes=("column spellings of every release are accepted", "credentialed DUA: images may not be re-hosted"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "brset")
    labels = locate(root, "brset", "labels_brset.csv", "labels.csv")
    images = locate(root, "brset", "fundus_photos", "images")
    rows = read_table(labels, (IMAGE, PATIENT, GRADE, EYE))
    for row, path in matched(cfg, labels, rows, images, IMAGE):
        where = f"{labels} image_id {path.stem}"
        edema = flag(col(row, FINDINGS[1][0]))
        quality = col(row, QUALITY).lower()
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": col(row, PATIENT) or None,
            "eye": {1: "right", 2: "left"}.get(to_int(col(row, EYE), where)),
            "dr_grade": to_int(col(row, GRADE), where),
            "dme": None if edema is None else int(edema),
            "diseases": [name for spellings, name in FINDINGS if flag(col(row, spellings))],
            "age": to_float(col(row, AGE)),
            "sex": {1: "M", 2: "F"}.get(to_int(col(row, SEX), where)),
            "quality": {"adequate": "good", "inadequate": "reject"}.get(quality),
        }
