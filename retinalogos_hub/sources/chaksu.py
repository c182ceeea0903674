"""Chákṣu (Kumar et al. 2023): 1,345 images from three Indian fundus cameras (Bosch, Forus, Remidio), glaucoma decisions
of five experts.

Layout: `{Train,Test}/1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/*` and the decision sheets under
`{Train,Test}/6.0_Glaucoma_Decision/` (one per camera, named after it, with `Images` and a majority-decision column,
values `NORMAL` / `GLAUCOMA SUSPECT`). A suspect stays a suspect: glaucoma None, disease 'glaucoma suspect'.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, matched, read_table, require_dir, split_of

CAMERAS = ("Bosch", "Forus", "Remidio")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="chaksu",
    title="Chaksu (glaucoma, three Indian cameras)",
    expects="{Train,Test}/1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/* + {Train,Test}/6.0_Glaucoma_Decision/"
    "*{Bosch,Forus,Remidio}*.csv (Images, majority decision)",
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
        for camera in CAMERAS:
            folder = images / camera
            sheets = sorted(p for p in decisions.rglob(f"*{camera}*.csv")) if decisions.is_dir() else []
            if not folder.is_dir() or not sheets:
                continue
            sheet = next((s for s in sheets if "majority" in s.name.lower()), sheets[0])
            rows = read_table(sheet, ("Images",), strip_names=True)
            vote = next(
                (c for c in (rows[0] if rows else {}) if "majority" in c.lower() or "decision" in c.lower()), None
            )
            if vote is None:
                raise InputError(f"{sheet}: expected a majority-decision column beside Images")
            for row, path in matched(cfg, sheet, rows, image_index(folder, recursive=True), "Images"):
                decision = row[vote].strip().upper()
                suspect = "SUSPECT" in decision or decision == "GLAUCOMA"
                if not suspect and decision != "NORMAL":
                    raise InputError(
                        f"{sheet} image {row['Images']}: decision {row[vote]!r} is not NORMAL or GLAUCOMA SUSPECT"
                    )
                yield {
                    "path": str(path),
                    "source_id": "-".join(x for x in (split, camera, path.stem) if x),
                    "glaucoma": None if suspect else False,
                    "diseases": ["glaucoma suspect"] if suspect else [],
                    "split": split,
                }
