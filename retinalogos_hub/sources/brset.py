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
    near,
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


# BRSET's own per-image grading (1 = normal/adequate, 2 = abnormal/inadequate in the released labels; words too):
# the anatomy and photo-quality truth captions should carry, written into `findings`
ANATOMY = ((("optic_disc",), "optic disc"), (("vessels",), "vessels"), (("macula",), "macula"))
PHOTO = (
    (("focus",), "focus"),
    (("iluminaton", "illumination", "illuminaton"), "illumination"),
    (("image_field", "field"), "image field"),
    (("artifacts", "artefacts"), "artefacts"),
)
_NORMAL = {"1": "normal", "normal": "normal", "2": "abnormal", "abnormal": "abnormal"}
_ADEQUATE = {"1": "adequate", "adequate": "adequate", "yes": "adequate", "2": "inadequate", "inadequate": "inadequate"}
_ARTEFACTS = {"1": "absent", "absent": "absent", "no": "absent", "2": "present", "present": "present", "yes": "present"}


def grading(row: dict) -> str | None:
    """'BRSET grading: optic disc normal, vessels normal, macula abnormal; photo: focus adequate, ...' from the
    anatomy and quality columns (unknown codes are left out; None when none is filled)."""
    parts = []
    anatomy = [f"{name} {v}" for sp, name in ANATOMY if (v := _NORMAL.get(_code(col(row, sp))))]
    photo = [
        f"{name} {v}"
        for sp, name in PHOTO
        if (v := (_ARTEFACTS if name == "artefacts" else _ADEQUATE).get(_code(col(row, sp))))
    ]
    if anatomy:
        parts.append("BRSET grading: " + ", ".join(anatomy))
    if photo:
        parts.append("photo: " + ", ".join(photo))
    return "; ".join(parts) or None


def _code(value: str) -> str:
    v = value.strip().lower()
    return v[:-2] if v.endswith(".0") else v


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="brset",
    title="BRSET (Brazilian Multilabel Ophthalmological Dataset)",
    expects="labels.csv | labels_brset.csv (image_id,patient_id,patient_age,patient_sex,exam_eye,DR_ICDR,"
    "macular_edema,... findings 0/1, quality) + fundus_photos/{image_id}.jpg",
    labels=("dr_grade", "dme", "diseases", "eye", "patient_id", "age", "sex", "quality", "findings"),
    homepage="https://physionet.org/content/brazilian-ophthalmological/",
    patient_key="patient_id",
    notes=(
        "column spellings of every release are accepted",
        "optic_disc/vessels/macula and focus/iluminaton/image_field/artifacts -> findings ('BRSET grading: ...')",
        "credentialed DUA: images may not be re-hosted",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "brset")
    labels = locate(root, "brset", "labels_brset.csv", "labels.csv")
    images = near(labels, root, "brset", "fundus_photos", "images")
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
            "findings": grading(row),
        }
