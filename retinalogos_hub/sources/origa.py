"""ORIGA (Online Retinal fundus Image database for Glaucoma Analysis).

Layout: `OrigaList.csv` (Filename,Glaucoma; releases also carry Eye (OD/OS), ExpCDR, Set) + `Images/{Filename}`.
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
    to_float,
)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="origa",
    title="ORIGA-light",
    expects="OrigaList.csv (Filename,Glaucoma[,Eye,ExpCDR]) + Images/{Filename}",
    labels=("glaucoma", "eye", "findings"),
    homepage="https://doi.org/10.1109/IEMBS.2010.5626137",
    patient_key="none published",
    notes=("expert cup-to-disc ratio (ExpCDR) -> findings",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "origa")
    labels = locate(root, "origa", "OrigaList.csv")
    images = near(labels, root, "origa", "Images", "images")
    for row, path in matched(
        cfg, labels, read_table(labels, ("Filename", "Glaucoma"), strip_names=True), images, "Filename"
    ):
        cdr = to_float(col(row, "ExpCDR"))
        yield {
            "path": str(path),
            "source_id": path.stem,
            "eye": eye_of(col(row, "Eye")),
            "glaucoma": flag(row["Glaucoma"]),
            "findings": f"expert cup-to-disc ratio {cdr:.2f}" if cdr is not None else None,
        }
