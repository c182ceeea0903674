"""PAPILA (glaucoma, both eyes of 244 patients).

Layout: `FundusImages/RET{id}{OD|OS}.jpg` + `ClinicalData/patient_data_{od,os}.xlsx`: two label rows above the
column names (Age,Gender,Diagnosis,dioptre_1,...), whose first column (the patient ID, written `#002`) is unnamed;
Diagnosis 0 healthy, 1 glaucoma, 2 suspect; Gender 0 male, 1 female. The sheets are read with openpyxl; without it,
CSV exports `patient_data_{od,os}.csv` next to them are read instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    col,
    locate,
    matched,
    near,
    read_table,
    require_dir,
    to_float,
    to_int,
)

EYES = (("od", "OD", "right"), ("os", "OS", "left"))
ID = ("ID", "column0")  # the release leaves the ID column unnamed; CSV exports may name it


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="papila",
    title="PAPILA",
    expects="FundusImages/RET{id}{OD|OS}.jpg + ClinicalData/patient_data_{od,os}.xlsx (or .csv exports): "
    "[ID],Age,Gender,Diagnosis (two rows above the header)",
    labels=("glaucoma", "diseases", "eye", "patient_id", "age", "sex"),
    homepage="https://doi.org/10.6084/m9.figshare.14798004",
    patient_key="RET{id}",
    notes=("Diagnosis 2 (suspect) -> glaucoma None + 'glaucoma suspect'", "xlsx read with openpyxl, else CSV export"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "papila")
    images = locate(root, "papila", "FundusImages")
    clinical = near(images, root, "papila", "ClinicalData")
    for code, suffix, eye in EYES:
        sheet = _sheet(clinical, f"patient_data_{code}")
        rows = read_table(sheet, ("Age", "Gender", "Diagnosis"), strip_names=True)
        for row, path in matched(cfg, sheet, rows, images, lambda r, suffix=suffix: f"RET{_id(col(r, ID))}{suffix}"):
            where = f"{sheet} ID {col(row, ID)}"
            diagnosis = to_int(row["Diagnosis"], where)
            if diagnosis not in (0, 1, 2):
                raise InputError(f"{where}: Diagnosis must be 0, 1 or 2, got {row['Diagnosis']!r}")
            yield {
                "path": str(path),
                "source_id": path.stem,
                "patient_id": f"RET{_id(col(row, ID))}",
                "eye": eye,
                "glaucoma": {0: False, 1: True}.get(diagnosis),
                "diseases": ["glaucoma suspect"] if diagnosis == 2 else [],
                "age": to_float(row["Age"]),
                "sex": {0: "M", 1: "F"}.get(to_int(row["Gender"], where)),
            }


def _sheet(folder: Path, stem: str) -> Path:
    xlsx, csv = folder / f"{stem}.xlsx", folder / f"{stem}.csv"
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return csv if csv.is_file() else xlsx  # read_table names the missing dependency
    return xlsx if xlsx.is_file() else csv


def _id(value: str) -> str:
    return value.strip().lstrip("#").zfill(3)
