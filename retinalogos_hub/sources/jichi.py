"""JICHI (Jichi Medical University; Takahashi et al., PLoS ONE 2017): 9,939 posterior-pole photographs of 2,740 patients
with diabetes (Nidek AFC-230), graded on the modified Davis scale.

Layout: one folder of `{patient}_{n}_{L|R}.jpg` images with `list.csv` (`Image`, `Davis_grading_of_concatenated_figures`,
`Davis_grading_of_one_figure`; values `ndr`, `sdr`, `ppdr`, `pdr`) beside them or one folder above (FLAIR keeps the
images in a subfolder). Facts from FLAIR's `local_data/prepare_partitions.py` (github.com/jusiro/FLAIR,
`adequate_31_jichi`: `list.csv`, `Image`, `Davis_grading_of_one_figure`), a public loader of the figshare download
(a `dmr/` folder holding the images and `list.csv`, columns 0 and 2) and a public dataset description found with the
code search (the file-name pattern, 9,939 rows, both grading columns). No split is published.

The modified Davis grades map to ICDR only where the classes coincide: `ndr` -> 0, `pdr` -> 4. `sdr` (simple DR,
Davis 1-2) and `ppdr` (pre-proliferative DR) span ICDR grades, so their grade stays unknown and the class goes to
findings with the other column's grade.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, col, eye_of, image_index, locate, matched, read_table, require_dir
from .vocab import DR

log = logging.getLogger(__name__)

IMAGE = "Image"
COLUMNS = {"one_figure": "Davis_grading_of_one_figure", "concatenated": "Davis_grading_of_concatenated_figures"}
DAVIS = {  # code -> (ICDR grade or None, words for findings)
    "ndr": (0, "no diabetic retinopathy"),
    "sdr": (None, "simple diabetic retinopathy"),
    "ppdr": (None, "pre-proliferative diabetic retinopathy"),
    "pdr": (4, "proliferative diabetic retinopathy"),
}
NAME = re.compile(r"^(\d+)_(\d+)_([LR])$", re.I)


@dataclass
class Config(SourceConfig):
    grading: str = "one_figure"  # which Davis column gives the grade: one_figure | concatenated

    def __post_init__(self):
        super().__post_init__()
        if self.grading not in COLUMNS:
            raise InputError(f"jichi: grading must be one of {', '.join(COLUMNS)}, got {self.grading!r}")


INFO = SourceInfo(
    name="jichi",
    title="JICHI (Takahashi et al. 2017, modified Davis grading)",
    expects="list.csv (Image, Davis_grading_of_concatenated_figures, Davis_grading_of_one_figure) + "
    "{patient}_{n}_{L|R}.jpg",
    labels=("dr_grade", "diseases", "findings", "eye", "patient_id"),
    homepage="https://figshare.com/articles/figure/Davis_Grading_of_One_and_Concatenated_Figures/4879853/1",
    patient_key="the first number of the file name",
    notes=(
        "ndr -> grade 0, pdr -> grade 4; sdr / ppdr span ICDR grades: DR with the grade unknown, the class in findings",
        "grading=one_figure (default) or concatenated picks the column that gives the grade",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "jichi")
    labels = locate(root, "jichi", "list.csv")
    rows = read_table(labels, (IMAGE, COLUMNS[cfg.grading]), strip_names=True)
    other = next(c for k, c in COLUMNS.items() if k != cfg.grading)
    unknown = 0
    for row, path in matched(cfg, labels, rows, image_index(labels.parent, recursive=True), IMAGE):
        code = col(row, COLUMNS[cfg.grading]).lower()
        grade, words = DAVIS.get(code, (None, None))
        if words is None and code:
            unknown += 1
        second = DAVIS.get(col(row, other).lower(), (None, None))[1]
        findings = [f"modified Davis grade: {words} ({cfg.grading.replace('_', ' ')})"] if words else []
        if second:
            findings.append(f"{second} ({other.removeprefix('Davis_grading_of_').replace('_', ' ')})")
        m = NAME.match(path.stem)
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": m.group(1) if m else None,
            "eye": eye_of(m.group(3)) if m else None,
            "dr_grade": grade,
            "diseases": [DR] if code in DAVIS and code != "ndr" else [],
            "findings": "; ".join(findings) or None,
        }
    if unknown:
        log.warning(
            "%s: %d rows whose %s is not ndr/sdr/ppdr/pdr (grade left unknown)", labels, unknown, COLUMNS[cfg.grading]
        )
