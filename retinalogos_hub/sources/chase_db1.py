"""CHASE_DB1 (Child Heart and Health Study in England): both eyes of 14 children.
Layout: `Image_{nn}{L|R}.jpg` (+ vessel masks `Image_{nn}{L|R}_1stHO.png` / `_2ndHO.png`, not listed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, require_dir

NAME = re.compile(r"^Image_(\d+)([LR])$", re.I)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="chase_db1",
    title="CHASE_DB1",
    expects="Image_{nn}{L|R}.jpg",
    labels=("eye", "patient_id"),
    homepage="https://blogs.kingston.ac.uk/retinal/chasedb1/",
    patient_key="{nn} from Image_{nn}{L|R}",
    notes=("no diagnosis labels (school children)",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "chase_db1")
    paths = [p for p in iter_images(root) if NAME.match(p.stem)]
    if not paths:
        raise SourceError(f"chase_db1: no images like Image_01L.jpg under {root}")
    for path in paths:
        m = NAME.match(path.stem)
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": m.group(1),
            "eye": "left" if m.group(2).upper() == "L" else "right",
        }
