"""EyePACS (Kaggle Diabetic Retinopathy Detection, 2015), with EyeQ quality labels merged when present.

Layout: `trainLabels.csv` (image,level) + `train/{patient}_{left|right}.jpeg`; optionally `test/` with
`retinopathy_solution.csv` (image,level,Usage). EyeQ: `Label_EyeQ_{train,test}.csv` (,image,quality,DR_grade) in the
root or in the folder given as `eyeq`; quality 0 good, 1 usable, 2 reject.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import Record, SourceConfig, SourceInfo, locate, matched, near, read_table, require_dir, to_int

EYEQ_QUALITY = {0: "good", 1: "usable", 2: "reject"}


@dataclass
class Config(SourceConfig):
    eyeq: Path | None = None  # folder (or one CSV) with Label_EyeQ_*.csv; default: look in root
    include_test: bool = True  # also list test/ when retinopathy_solution.csv is there


INFO = SourceInfo(
    name="eyepacs",
    title="EyePACS / Kaggle DR Detection 2015 (+ EyeQ quality)",
    expects="trainLabels.csv (image,level) + train/{id}_{left|right}.jpeg (or the images beside it); optional test/ + retinopathy_solution.csv "
    "(image,level,Usage); optional Label_EyeQ_{train,test}.csv (,image,quality,DR_grade)",
    labels=("dr_grade", "eye", "patient_id", "quality", "split"),
    homepage="https://www.kaggle.com/c/diabetic-retinopathy-detection",
    patient_key="{id} from {id}_{left|right}",
    notes=("some images are mirror-inverted (a rim notch marks the un-inverted ones)",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "eyepacs")
    quality = eyeq_quality(cfg.eyeq or root)
    labels = locate(root, "eyepacs", "trainLabels.csv", "trainLabels.csv.csv")
    # Kaggle's train/ folder, or (a common re-pack) the images flat beside trainLabels.csv
    parts = [("train", labels, near(labels, root, "eyepacs", "train", required=False) or labels.parent)]
    solution = near(labels, root, "eyepacs", "retinopathy_solution.csv", required=False)
    if cfg.include_test and solution is not None:
        parts.append(("test", solution, near(solution, root, "eyepacs", "test", required=False) or solution.parent))
    for split, labels, images in parts:
        rows = read_table(labels, ("image", "level"))
        for row, path in matched(cfg, labels, rows, images, "image"):
            stem = path.stem
            patient, _, side = stem.rpartition("_")
            yield {
                "path": str(path),
                "source_id": stem,
                "patient_id": patient or None,
                "eye": side if side in ("left", "right") else None,
                "dr_grade": to_int(row["level"], f"{labels} image {stem}"),
                "quality": quality.get(stem),
                "split": split,
            }


def eyeq_quality(where: Path) -> dict[str, str]:
    """EyeQ image stem -> "good"/"usable"/"reject" from every Label_EyeQ_*.csv at `where` (a folder or one file)."""
    where = Path(where)
    files = [where] if where.is_file() else sorted(where.glob("Label_EyeQ_*.csv"))
    out: dict[str, str] = {}
    for f in files:
        for row in read_table(f, ("image", "quality")):
            q = to_int(row["quality"], f"{f} image {row['image']}")
            if q is not None:
                out[Path(row["image"].strip()).stem] = EYEQ_QUALITY.get(q)
    return out
