"""G1020 (glaucoma, Bajwa et al. 2020). Layout: `G1020.csv` (imageID,binaryLabels; 1 = glaucoma) + `Images/{imageID}`.

The `Images_Cropped`, `Images_Square` and `NerveRemoved_Images` folders are derived copies and are not listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo, flag, locate, matched, near, read_table, require_dir


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="g1020",
    title="G1020",
    expects="G1020.csv (imageID,binaryLabels) + Images/{imageID}",
    labels=("glaucoma",),
    homepage="https://arxiv.org/abs/2006.09158",
    patient_key="none published",
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "g1020")
    labels = locate(root, "g1020", "G1020.csv")
    images = near(labels, root, "g1020", "Images")
    for row, path in matched(cfg, labels, read_table(labels, ("imageID", "binaryLabels")), images, "imageID"):
        yield {"path": str(path), "source_id": path.stem, "glaucoma": flag(row["binaryLabels"])}
