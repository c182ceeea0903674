"""Paraguay DR set (Zenodo record 4647952, fundus images from Paraguay graded on a seven-level DR scale), one of the
sets FLAIR pre-trains on.

Layout: one folder per grade: `1. No DR signs`, `2. Mild (or early) NPDR`, `3. Moderate NPDR`, `4. Severe NPDR`,
`5. Very Severe NPDR`, `6. PDR`, `7. Advanced PDR`. The folder names come from FLAIR's
`local_data/prepare_partitions.py` (github.com/jusiro/FLAIR, `adequate_10_paraguay`); the same seven class names appear
in other public loaders found with the code search. The Zenodo record itself could not be read with the search tools,
so its file names are taken on FLAIR's word. The seven levels fold into ICDR without ambiguity (very severe NPDR is
severe NPDR, advanced PDR is PDR); the finer level goes to findings. No split, no patient key is published.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders

LEVELS = {  # folder name without its "N. " prefix, lower-cased -> labels
    "no dr signs": {"dr_grade": 0},
    "mild (or early) npdr": {"dr_grade": 1},
    "moderate npdr": {"dr_grade": 2},
    "severe npdr": {"dr_grade": 3},
    "very severe npdr": {"dr_grade": 3, "findings": "very severe non-proliferative diabetic retinopathy"},
    "pdr": {"dr_grade": 4},
    "advanced pdr": {"dr_grade": 4, "findings": "advanced proliferative diabetic retinopathy"},
}
CLASSES = {name: {**labels, "_tag": True} for name, labels in LEVELS.items()}
PREFIX = re.compile(r"^\s*\d+\s*[.)_-]\s*")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="paraguay",
    title="Paraguay seven-level DR grading set",
    expects="{1. No DR signs, 2. Mild (or early) NPDR, 3. Moderate NPDR, 4. Severe NPDR, 5. Very Severe NPDR, 6. PDR, "
    "7. Advanced PDR}/*",
    labels=("dr_grade", "findings"),
    homepage="https://zenodo.org/record/4647952",
    patient_key="none published",
    notes=("very severe NPDR -> grade 3, advanced PDR -> grade 4, the finer level in findings",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "paraguay", CLASSES, INFO.expects, split=False, name_of=_level)


def _level(path) -> str:
    """'5. Very Severe NPDR' -> 'very severe npdr'."""
    return PREFIX.sub("", path.parent.name)
