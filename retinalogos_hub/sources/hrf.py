"""HRF (High-Resolution Fundus). Layout: `images/{nn}_{dr|g|h}.jpg` (15 each; h = healthy); vessel masks in `manual1/`
and FOV masks in `mask/` are not listed. Each image is a different patient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, require_dir
from .vocab import DR

NAME = re.compile(r"^(\d+)_(dr|g|h)$", re.I)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="hrf",
    title="HRF (High-Resolution Fundus image database)",
    expects="images/{nn}_{dr|g|h}.jpg",
    labels=("diseases", "dr_grade", "glaucoma"),
    homepage="https://www5.cs.fau.de/research/data/fundus-images/",
    patient_key="the file stem (one image per patient)",
    notes=("_dr DR (grade unknown), _g glaucoma, _h healthy",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "hrf")
    images = locate(root, "hrf", "images")
    paths = sorted({p for k, p in image_index(images).items() if NAME.match(p.stem)})
    if not paths:
        raise SourceError(f"hrf: no images like images/01_dr.jpg under {root}")
    for path in paths:
        kind = NAME.match(path.stem).group(2).lower()
        yield {
            "path": str(path),
            "source_id": path.stem,
            "patient_id": path.stem,
            "dr_grade": 0 if kind == "h" else None,
            "glaucoma": {"g": True, "h": False}.get(kind),
            "diseases": [DR] if kind == "dr" else [],
        }
