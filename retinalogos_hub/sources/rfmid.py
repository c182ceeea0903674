"""RFMiD 1.0 (Retinal Fundus Multi-disease Image Dataset); `rfmid2` reuses `split_records` for the 2.0 release.

Layout: `Training_Set/Training_Set/{RFMiD_Training_Labels.csv,Training/}`, `Evaluation_Set/Evaluation_Set/
{RFMiD_Validation_Labels.csv,Validation/}`, `Test_Set/Test_Set/{RFMiD_Testing_Labels.csv,Test/}`; labels
`ID,Disease_Risk,DR,ARMD,MH,...` (0/1 per code), images `{ID}.png`. IDs restart in each split, so source ids carry it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import Record, SourceConfig, SourceInfo, flag, image_index, locate, matched, read_table, require_dir
from .vocab import DR, RFMID_CODES, from_codes

# (split, label-file patterns, image folder names)
# The Kaggle-style mirror first, then the official release (`1. Original Images/{a. Training,b. Validation,c. Testing}
# Set/`, `2. Groundtruths/{a,b,c}. RFMiD_{Training,Validation,Testing}_Labels.csv`).
PARTS = (
    ("train", ("RFMiD_Training_Labels.csv", "*RFMiD_Training_Labels.csv"), ("Training", "*Training Set")),
    ("validation", ("RFMiD_Validation_Labels.csv", "*RFMiD_Validation_Labels.csv"), ("Validation", "*Validation Set")),
    ("test", ("RFMiD_Testing_Labels.csv", "*RFMiD_Testing_Labels.csv"), ("Test", "*Testing Set", "*Test Set")),
)
ID = ("ID", "id")  # mirrors differ in case
NOT_CODES = {"ID", "WNL", "NL"}
CODE = re.compile(r"^[A-Z][A-Z0-9/]*$")  # disease columns are upper-case codes (not Disease_Risk, not blank columns)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="rfmid",
    title="RFMiD 1.0",
    expects="{Training,Evaluation,Test}_Set/*/RFMiD_{Training,Validation,Testing}_Labels.csv (ID,Disease_Risk,DR,ARMD,"
    "...) + {Training,Validation,Test}/{ID}.png; or the official 1. Original Images/{a. Training,b. Validation,"
    "c. Testing} Set/ + 2. Groundtruths/{a,b,c}. RFMiD_*_Labels.csv",
    labels=("diseases", "dr_grade", "split"),
    homepage="https://riadd.grand-challenge.org/",
    patient_key="none (one image per row)",
    notes=("codes -> disease names (retinalogos_hub/sources/vocab.py)", "DR=0 -> dr_grade 0; DR=1 -> grade unknown"),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from split_records(cfg, "rfmid", PARTS)


def split_records(cfg: SourceConfig, source: str, parts) -> Iterator[Record]:
    root = require_dir(cfg.root, source)
    for split, label_names, image_dirs in parts:
        labels = locate(root, source, *label_names, required=split == "train")
        if labels is None:
            continue
        rows = read_table(labels, (ID,), strip_names=True)
        images = image_index(_image_dir(labels.parent, image_dirs), recursive=True)
        for row, path in matched(cfg, labels, rows, images, ID):
            codes = [c for c in row if CODE.match(c) and c not in NOT_CODES and flag(row[c])]
            diseases = from_codes(codes, RFMID_CODES)
            yield {
                "path": str(path),
                "source_id": f"{split}-{path.stem}",
                "dr_grade": None if DR in diseases else 0,
                "diseases": diseases,
                "split": split,
            }


def _image_dir(folder: Path, names: tuple[str, ...]) -> Path:
    """The split's image folder next to its label file, or (the official release) in the `*Original Images` folder
    beside the label file's `*Groundtruths` folder; the label file's folder itself when images sit beside it."""
    for where in (folder, *sorted(folder.parent.glob("*Original Images"))):
        for name in names:
            for p in sorted(where.glob(name)):
                if p.is_dir():
                    return p
    return folder
