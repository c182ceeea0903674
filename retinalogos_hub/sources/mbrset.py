"""mBRSET (mobile BRSET, PhysioNet): smartphone fundus photos from a diabetic population.

Layout: `labels_mbrset.csv` (or `labels.csv`) with `file,patient,age,sex,...,final_icdr,final_edema,...` + `images/
{file}`. Files are named `{patient}.{n}.jpg`. final_edema and final_quality are yes/no (or 1/0); laterality, when
the release has it, is read as left/right/OD/OS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    col,
    eye_of,
    flag,
    locate,
    matched,
    near,
    read_table,
    require_dir,
    sex_of,
    to_float,
    to_int,
)

COLUMNS = ("file", "patient", "final_icdr", "final_edema")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="mbrset",
    title="mBRSET (mobile Brazilian ophthalmological dataset)",
    expects="labels_mbrset.csv | labels.csv (file,patient,age,sex,final_icdr,final_edema,...) + images/{file}",
    labels=("dr_grade", "dme", "patient_id", "eye", "age", "sex", "quality"),
    homepage="https://physionet.org/content/mbrset/",
    patient_key="patient",
    notes=("sex is read from M/F/male/female text or 1 = male, 0 = female",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "mbrset")
    labels = locate(root, "mbrset", "labels_mbrset.csv", "labels.csv")
    images = near(labels, root, "mbrset", "images", "mbrset_images")
    for row, path in matched(cfg, labels, read_table(labels, COLUMNS), images, "file"):
        where = f"{labels} file {row['file']}"
        edema, quality = flag(row["final_edema"]), flag(col(row, "final_quality"))
        sex = col(row, ("sex", "patient_sex"))
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": row["patient"].strip() or None,
            "eye": eye_of(col(row, "laterality")),
            "dr_grade": to_int(row["final_icdr"], where),
            "dme": None if edema is None else int(edema),
            "age": to_float(col(row, ("age", "patient_age"))),
            "sex": sex_of(sex) or {"1": "M", "0": "F"}.get(sex),
            "quality": None if quality is None else ("good" if quality else "reject"),
        }
