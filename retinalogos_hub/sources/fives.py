"""FIVES (Fundus Image Vessel Segmentation, 800 images). Layout: `{train,test}/Original/{n}_{A|D|G|N}.png` (+ the
vessel masks in `Ground truth/`, not listed). The suffix is the diagnosis: AMD, DR, glaucoma, normal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, require_dir, split_of
from .vocab import AMD, DR

NAME = re.compile(r"^(\d+)_([ADGN])$", re.I)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="fives",
    title="FIVES",
    expects="{train,test}/Original/{n}_{A|D|G|N}.png",
    labels=("diseases", "dr_grade", "glaucoma", "split"),
    homepage="https://doi.org/10.6084/m9.figshare.19688169",
    patient_key="none published",
    notes=("_A AMD, _D DR (grade unknown), _G glaucoma, _N normal",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "fives")
    n = 0
    for path in iter_images(root):
        m = NAME.match(path.stem)
        if not m or path.parent.name.lower() != "original":
            continue
        code = m.group(2).upper()
        split = split_of(path.parent.parent.name)
        n += 1
        yield {
            "path": str(path),
            "source_id": f"{split}-{path.stem}" if split else path.stem,
            "dr_grade": 0 if code == "N" else None,
            "glaucoma": code == "G" if code in "GN" else None,
            "diseases": {"A": [AMD], "D": [DR]}.get(code, []),
            "split": split,
        }
    if not n:
        raise SourceError(f"fives: no images like train/Original/1_A.png under {cfg.root}")
