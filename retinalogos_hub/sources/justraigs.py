"""JustRAIGS (Justified Referral in AI Glaucoma Screening), training set; the images come from EyePACS as AIROGS.

Layout: `JustRAIGS_Train_labels.csv`, `;`-separated, with `Eye ID;Final Label;Fellow Eye ID;Age;Label G1;Label G2;
Label G3;G1 ANRS;...;G3 LC` + the images `{Eye ID}.JPG` in numbered folders. Both eyes of a patient point at each other
through `Fellow Eye ID`, so the patient key is the smaller of the two ids. For referable eyes, the deciding grader's
(G3 when present, else G1) ten glaucoma features go to `findings`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .airogs import referable
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    col,
    flag,
    image_index,
    locate,
    matched,
    read_table,
    require_dir,
    sex_of,
    to_float,
)

COLUMNS = ("Eye ID", "Final Label", "Fellow Eye ID", "Age")
FEATURES = {
    "ANRS": "neuroretinal rim thinning superiorly",
    "ANRI": "neuroretinal rim thinning inferiorly",
    "RNFLDS": "nerve fibre layer defect superiorly",
    "RNFLDI": "nerve fibre layer defect inferiorly",
    "BCLVS": "baring of circumlinear vessel superiorly",
    "BCLVI": "baring of circumlinear vessel inferiorly",
    "NVT": "nasalisation of the vessel trunk",
    "DH": "disc haemorrhage",
    "LD": "laminar dots",
    "LC": "large cup",
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="justraigs",
    title="JustRAIGS",
    expects="JustRAIGS_Train_labels.csv (';'-separated: Eye ID;Final Label;Fellow Eye ID;Age;G1..G3 features) + "
    "{0..5}/{Eye ID}.JPG",
    labels=("glaucoma", "patient_id", "age", "findings", "quality"),
    homepage="https://justraigs.grand-challenge.org/",
    patient_key="min(Eye ID, Fellow Eye ID)",
    notes=("';' separator", "Final Label U (ungradable) -> glaucoma None, quality 'reject'"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "justraigs")
    labels = locate(root, "justraigs", "JustRAIGS_Train_labels.csv", "*[Tt]rain*labels*.csv")
    rows = read_table(labels, COLUMNS, sep=";", strip_names=True)
    for row, path in matched(cfg, labels, rows, image_index(root, recursive=True), "Eye ID"):
        eye, fellow = row["Eye ID"].strip(), row["Fellow Eye ID"].strip()
        glaucoma = referable(row["Final Label"], labels, eye)
        yield {
            "path": str(path),
            "source_id": eye,
            "patient_id": min(eye, fellow) if fellow else eye,
            "glaucoma": glaucoma,
            "age": to_float(row["Age"]),
            "sex": sex_of(col(row, ("Gender", "Sex"))),
            "findings": features(row) if glaucoma else None,
            "quality": "reject" if row["Final Label"].strip().upper() == "U" else None,
        }


def features(row: dict) -> str | None:
    grader = "G3" if col(row, "Label G3") else "G1"
    found = [text for code, text in FEATURES.items() if flag(col(row, f"{grader} {code}"))]
    return "; ".join(found) or None
