"""Drishti-GS1 (Aravind Eye Hospital, Madurai; Sivaswamy et al. 2014/2015): 101 images (50 training, 51 test), optic
disc and cup outlined by four experts, and an image-level normal / glaucomatous decision.

Layout: `Drishti-GS1_files/{Training,Test}/Images/drishtiGS_NNN.png` (the archive sometimes nests
`Drishti-GS1_files/Drishti-GS1_files/`; the `GT/` folders hold the disc and cup maps and are not listed) and the
diagnosis sheet `Drishti-GS1_diagnosis.xlsx` (some copies export it as `.csv`): a few title rows, then a header with
`Patient ID`, `Drishti-GS File`, the experts' columns and `Total` (`Normal` / `Glaucomatous`); file names in the sheet
carry a trailing quote (`drishtiGS_001'`). Facts from FLAIR's `local_data/prepare_partitions.py`
(github.com/jusiro/FLAIR: `skiprows=3`, `Drishti-GS File`, `Total`, `Training/Images`, `Test/Images`) and public
Drishti audit and loader scripts found with the code search (the header row found by `Drishti-GS File`, the quote
stripped, `Patient ID`). Training and test are the release's own split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, col, image_index, locate, matched, read_table, require_dir

log = logging.getLogger(__name__)

FILE = "Drishti-GS File"
TOTAL = "Total"
PATIENT = "Patient ID"
SHEETS = ("Drishti-GS1_diagnosis.xlsx", "Drishti-GS1_diagnosis.csv")
PARTS = (("Training", "train"), ("Test", "test"))
NAME = re.compile(r"drishtiGS_\d+", re.I)
DECISIONS = {"normal": False, "glaucomatous": True, "glaucoma": True}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="drishti_gs",
    title="Drishti-GS1 (glaucoma, optic disc and cup)",
    expects="Drishti-GS1_files/{Training,Test}/Images/drishtiGS_NNN.png + Drishti-GS1_diagnosis.xlsx "
    "(Patient ID, Drishti-GS File, Total)",
    labels=("glaucoma", "split", "patient_id"),
    homepage="http://cvit.iiit.ac.in/projects/mip/drishti-gs/mip-dataset2/Home.php",
    patient_key="the sheet's Patient ID",
    notes=("Total: Normal -> glaucoma False, Glaucomatous -> True; any other value stays unknown",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "drishti_gs")
    sheet = locate(root, "drishti_gs", *SHEETS)
    index: dict[str, Path] = {}
    split_of_path: dict[Path, str] = {}
    for folder, split in PARTS:
        for images in sorted(p for p in root.rglob(f"{folder}/Images") if p.is_dir()):
            for key, path in image_index(images).items():
                index.setdefault(key, path)
                split_of_path[path] = split
    if not index:
        raise SourceError(f"drishti_gs: no images under {root} (expected Drishti-GS1_files/Training/Images/*.png)")
    rows = read_table(sheet, (FILE, TOTAL), strip_names=True)
    # the experts' sub-header and the notes under the table are not image rows
    picked = type(rows)([r if NAME.fullmatch(_name(r)) else {} for r in rows], first_line=rows.first_line)
    unknown = 0
    for row, path in matched(cfg, sheet, picked, index, _name):
        decision = col(row, TOTAL).lower()
        glaucoma = DECISIONS.get(decision)
        if glaucoma is None and decision:
            unknown += 1
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": col(row, PATIENT) or None,
            "glaucoma": glaucoma,
            "split": split_of_path[path],
        }
    if unknown:
        log.warning(
            "%s: %d rows whose Total is neither Normal nor Glaucomatous (glaucoma left unknown)", sheet, unknown
        )


def _name(row: dict) -> str:
    """`drishtiGS_001'` -> `drishtiGS_001` (the sheet quotes its file names)."""
    return col(row, FILE).strip().strip("'\u2019\"` ")
