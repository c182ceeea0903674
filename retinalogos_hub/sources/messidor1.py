"""Messidor (the original 1,200 images, 2008; Messidor-1 is a subset of Messidor-2, so dedup links the two).

Layout: `Base{11..14,21..24,31..34}/` each with its images (`*.tif`) and `Annotation_Base{NN}.xls` (Image name,
Ophthalmologic department, Retinopathy grade, Risk of macular edema ). The sheets are legacy `.xls`: save them as
`.xlsx` or `.csv` beside the original (same stem). Messidor's retinopathy grade is its own 0-3 scale, not ICDR.
Layout facts: checked against public loaders of the release found with `find_string` (the 12 `Base{11..34}.zip`
archives, `Annotation_Base{NN}.xls`, sheet `Feuil1`, the header above with its trailing space, read beside the images
as `Base31/Annotation_Base31.csv`) and LIV4D/MAPLES-DR `docs/source/welcome/messidor.rst`; as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError, SourceError
from .base import Record, SourceConfig, SourceInfo, image_index, matched, read_table, require_dir, to_int
from .vocab import DR

COLUMNS = ("Image name", "Retinopathy grade", "Risk of macular edema")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="messidor1",
    title="Messidor (original, 1,200 images)",
    expects="Base{NN}/*.tif + Annotation_Base{NN}.xlsx|.csv (Image name,Ophthalmologic department,Retinopathy grade,"
    "Risk of macular edema)",
    labels=("dr_grade", "dme", "diseases", "findings"),
    homepage="https://www.adcis.net/en/third-party/messidor/",
    patient_key="none published (Messidor-2's exam sheet pairs some of these images)",
    notes=(
        "retinopathy grade 0 -> ICDR 0; 1-3 (Messidor's own scale) -> DR, grade None, the Messidor grade in findings",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "messidor1")
    sheets = sorted(p for p in root.rglob("Annotation_Base*") if p.suffix.lower() in (".xlsx", ".csv", ".xls"))
    if not sheets:
        raise SourceError(f"messidor1: {root} does not look like the messidor1 layout: expected Annotation_Base*.xls")
    readable = {p.stem: p for p in sheets if p.suffix.lower() != ".xls"}
    for legacy in (p for p in sheets if p.suffix.lower() == ".xls" and p.stem not in readable):
        raise InputError(f"{legacy}: legacy .xls is not read; save it as {legacy.stem}.xlsx or .csv beside it")
    for sheet in readable.values():
        rows = read_table(sheet, COLUMNS, strip_names=True)
        for row, path in matched(cfg, sheet, rows, image_index(sheet.parent), "Image name"):
            where = f"{sheet} image {path.name}"
            grade, dme = to_int(row["Retinopathy grade"], where), to_int(row["Risk of macular edema"], where)
            if grade is not None and not 0 <= grade <= 3:
                raise InputError(f"{where}: Messidor retinopathy grade must be 0-3, got {grade}")
            yield {
                "path": str(path),
                "source_id": path.stem,
                "dr_grade": 0 if grade == 0 else None,
                "dme": dme,
                "diseases": [DR] if grade else [],
                "findings": f"Messidor retinopathy grade {grade} (0-3 scale)" if grade else None,
            }
