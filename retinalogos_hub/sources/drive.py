"""DRIVE (Digital Retinal Images for Vessel Extraction). Layout: `{training,test}/images/{nn}_{training,test}.tif`;
`1st_manual/`, `2nd_manual/` and `mask/` hold annotations and are not listed. No per-image diagnosis is published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, require_dir, split_of


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="drive",
    title="DRIVE",
    expects="{training,test}/images/{nn}_{training,test}.tif",
    labels=("split",),
    homepage="https://drive.grand-challenge.org/",
    patient_key="none published",
    notes=("no diagnosis labels (7 of 40 show mild DR, unlabelled per image)",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "drive")
    paths = [p for p in iter_images(root) if p.parent.name.lower() == "images"]
    if not paths:
        raise SourceError(f"drive: no images like training/images/21_training.tif under {root}")
    for path in paths:
        yield {"path": str(path), "source_id": path.stem, "split": split_of(path.parent.parent.name)}
