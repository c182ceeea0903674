"""Chákṣu (Kumar et al. 2023): 1,345 images from three Indian fundus cameras (Bosch, Forus, Remidio), glaucoma decisions
of five experts.

Layout: `{Train,Test}/1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/*` (Bosch `.JPG`, Forus `.png`, Remidio `.JPG`)
and one decision sheet per camera,
`{Train,Test}/6.0_Glaucoma_Decision/Glaucoma_Decision_Comparison_<camera>_majority.csv`
(`Images,Expert.1,...,Expert.5,Majority Decision`; the test set's Forus and Remidio sheets call the last column
`Glaucoma Decision`), values `NORMAL` / `GLAUCOMA SUSPECT`. `Images` holds names such as `Image101.jpg-Image101-1.jpg`
whose extension need not match the file's: the image is the part before the first `-`, matched by stem. The
`Majority/`, `Mean/`, `Median/` sub-folders of `6.0_Glaucoma_Decision/` hold cup-to-disc measurements, not decisions,
and are not read. A suspect stays a suspect: glaucoma None, disease 'glaucoma suspect'.
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `adequate_32_chaksu`: the sheet name,
both column spellings, the per-camera extensions) and public Chákṣu loaders found with `find_string` (the
`6.0_Glaucoma_Decision/` folder, the `Expert.N` header, the `Image101.jpg-Image101-1.jpg` names, the `Remedio`
misspelling in the test set, an expert's `GLAUCOMA  SUSUPECT`); the row key, the sheet choice and the decision
spelling were fixed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, matched, read_table, require_dir, split_of

CAMERAS = ("Bosch", "Forus", "Remidio")
SPELLINGS = {"Remidio": ("remidio", "remedio")}  # the release misspells Remidio in parts of its test set
VOTES = ("Majority Decision", "Glaucoma Decision")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="chaksu",
    title="Chaksu (glaucoma, three Indian cameras)",
    expects="{Train,Test}/1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/* + {Train,Test}/6.0_Glaucoma_Decision/"
    "Glaucoma_Decision_Comparison_{Bosch,Forus,Remidio}_majority.csv (Images, Majority|Glaucoma Decision)",
    labels=("glaucoma", "diseases", "split"),
    homepage="https://doi.org/10.6084/m9.figshare.20123135",
    patient_key="none published",
    notes=("NORMAL -> glaucoma False; GLAUCOMA SUSPECT -> 'glaucoma suspect' (glaucoma None)",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "chaksu")
    originals = sorted(p for p in root.rglob("1.0_Original_Fundus_Images") if p.is_dir())
    if not originals:
        locate(root, "chaksu", "1.0_Original_Fundus_Images")  # raises, naming the layout
    for images in originals:
        part = images.parent
        split = split_of(part.name)
        decisions = part / "6.0_Glaucoma_Decision"
        decisions = decisions if decisions.is_dir() else part  # FLAIR's copy keeps the sheets beside the images
        for camera in CAMERAS:
            folder = next((f for f in sorted(images.iterdir()) if f.is_dir() and _is(camera, f.name)), None)
            sheet = _sheet(decisions, camera)
            if folder is None or sheet is None:
                continue
            rows = read_table(sheet, ("Images",), strip_names=True)
            vote = next((c for c in VOTES if rows and c in rows[0]), None)
            if vote is None:
                raise InputError(f"{sheet}: expected a 'Majority Decision' or 'Glaucoma Decision' column beside Images")
            for row, path in matched(cfg, sheet, rows, image_index(folder, recursive=True), _image_of):
                suspect = _decision(row[vote], f"{sheet} image {row['Images']}")
                yield {
                    "path": str(path),
                    "source_id": "-".join(x for x in (split, camera, path.stem) if x),
                    "glaucoma": None if suspect else False,
                    "diseases": ["glaucoma suspect"] if suspect else [],
                    "split": split,
                }


def _is(camera: str, name: str) -> bool:
    return name.lower() in SPELLINGS.get(camera, (camera.lower(),))


def _sheet(decisions: Path, camera: str) -> Path | None:
    """The camera's decision sheet (not the measurement sheets in Majority/, Mean/, Median/): the comparison sheet
    first, then any sheet naming the camera and a decision."""
    names = SPELLINGS.get(camera, (camera.lower(),))
    sheets = [p for p in sorted(decisions.glob("*.csv")) if any(n in p.name.lower() for n in names)]
    ranked = sorted(sheets, key=lambda p: ("comparison" not in p.name.lower(), "majority" not in p.name.lower()))
    return ranked[0] if ranked else None


def _image_of(row: dict) -> str:
    """'Image101.jpg-Image101-1.jpg' -> 'Image101' (matched by stem: the sheet's extension need not be the file's)."""
    return Path(str(row["Images"]).strip().split("-")[0]).stem


def _decision(value: str, where: str) -> bool:
    """True for a glaucoma suspect, False for normal; the experts' spellings vary ('GLAUCOMA  SUSUPECT')."""
    text = re.sub(r"\s+", " ", str(value)).strip().upper()
    if text == "NORMAL":
        return False
    if text.startswith("GLAUCOMA"):
        return True
    raise InputError(f"{where}: decision {value!r} is not NORMAL or GLAUCOMA SUSPECT")
