"""IDRiD, part B (disease grading), with part C's optic-disc and fovea centres merged into `findings` when present.

Layout: `B. Disease Grading/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NNN.jpg` and
`B. Disease Grading/2. Groundtruths/{a. IDRiD_Disease Grading_Training Labels.csv,b. ..._Testing Labels.csv}` with
`Image name,Retinopathy grade,Risk of macular edema ` (trailing space) and empty trailing columns.
Localisation: `C. Localization/2. Groundtruths/{1. Optic Disc,2. Fovea} Center Location/*.csv` (Image No,X- Coordinate,
Y - Coordinate). Training and testing images reuse names, so source ids carry the split.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import Record, SourceConfig, SourceInfo, locate, matched, read_table, require_dir, to_float, to_int

GRADE_COLUMNS = ("Image name", "Retinopathy grade", "Risk of macular edema")
PARTS = (
    ("train", "a. IDRiD_Disease Grading_Training Labels.csv", "a. Training Set"),
    ("test", "b. IDRiD_Disease Grading_Testing Labels.csv", "b. Testing Set"),
)
LANDMARKS = (("optic disc centre", "*Optic Disc*/*{part}*.csv"), ("fovea centre", "*Fovea*/*{part}*.csv"))


@dataclass
class Config(SourceConfig):
    localisation: bool = True  # merge OD/fovea centres into findings when C. Localization is present


INFO = SourceInfo(
    name="idrid",
    title="IDRiD (Indian Diabetic Retinopathy Image Dataset), disease grading",
    expects="B. Disease Grading/1. Original Images/{a. Training Set,b. Testing Set}/*.jpg + 2. Groundtruths/"
    "{a,b}. IDRiD_Disease Grading_{Training,Testing} Labels.csv; optional C. Localization/2. Groundtruths/*.csv",
    labels=("dr_grade", "dme", "findings", "split"),
    homepage="https://idrid.grand-challenge.org/",
    patient_key="none (one image per row)",
    notes=("DME is the 0-2 'risk of macular edema' grade", "OD/fovea pixel centres go to findings"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "idrid")
    grading = locate(root, "idrid", "B. Disease Grading")
    loc = locate(root, "idrid", "C. Localization", required=False) if cfg.localisation else None
    for split, label_name, image_dir in PARTS:
        labels = locate(grading, "idrid", f"2. Groundtruths/{label_name}", required=split == "train")
        if labels is None:
            continue
        images = locate(grading, "idrid", f"1. Original Images/{image_dir}")
        marks = landmarks(loc, "Training" if split == "train" else "Testing") if loc else {}
        for row, path in matched(
            cfg, labels, read_table(labels, GRADE_COLUMNS, strip_names=True), images, "Image name"
        ):
            where = f"{labels} image {path.stem}"
            yield {
                "path": str(path),
                "source_id": f"{split}-{path.stem}",
                "dr_grade": to_int(row["Retinopathy grade"], where),
                "dme": to_int(row["Risk of macular edema"], where),
                "findings": "; ".join(marks.get(path.stem, [])) or None,
                "split": split,
            }


def landmarks(loc: Path, part: str) -> dict[str, list[str]]:
    """image stem -> ["optic disc centre at (x, y) px", ...] from the localisation markup CSVs of one part."""
    out: dict[str, list[str]] = {}
    for what, pattern in LANDMARKS:
        for f in sorted(loc.rglob(pattern.format(part=part))):
            rows = read_table(f, ("Image No",), strip_names=True)
            xs = [c for c in (rows[0] if rows else {}) if c.replace(" ", "").lower().startswith("x-")]
            ys = [c for c in (rows[0] if rows else {}) if c.replace(" ", "").lower().startswith("y-")]
            for row in rows:
                x, y = (to_float(row[xs[0]]) if xs else None), (to_float(row[ys[0]]) if ys else None)
                if row["Image No"].strip() and x is not None and y is not None:
                    out.setdefault(row["Image No"].strip(), []).append(f"{what} at ({x:.0f}, {y:.0f}) px")
    return out
