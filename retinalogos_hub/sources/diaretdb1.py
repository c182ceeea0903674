"""DIARETDB1 v2.1 (Kauppi et al. 2007): 89 images, 84 with at least mild NPDR, lesions marked by four experts.

Layout: `ddb1_fundusimages/image0NN.png` and the experts' consensus maps `ddb1_groundtruth/{hardexudates,
softexudates,haemorrhages,redsmalldots}/image0NN.png` (grey level = share of experts who marked the pixel). A lesion
counts when at least `min_agreement` of the experts marked some pixel of it; they go to findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .base import Record, SourceConfig, SourceInfo, image_index, iter_images, locate, near, require_dir
from .vocab import DR

LESIONS = (
    ("hardexudates", "hard exudates"),
    ("softexudates", "soft exudates (cotton-wool spots)"),
    ("haemorrhages", "haemorrhages"),
    ("redsmalldots", "microaneurysms (red small dots)"),
)


@dataclass
class Config(SourceConfig):
    min_agreement: float = 0.75  # share of the four experts (consensus map grey / 255) for a lesion to count


INFO = SourceInfo(
    name="diaretdb1",
    title="DIARETDB1 v2.1",
    expects="ddb1_fundusimages/image0NN.png + ddb1_groundtruth/{hardexudates,softexudates,haemorrhages,redsmalldots}/",
    labels=("diseases", "findings"),
    homepage="https://www.it.lut.fi/project/imageret/diaretdb1/",
    patient_key="none published",
    notes=("lesions with expert agreement >= min_agreement -> findings; any lesion -> DR (grade unknown)",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "diaretdb1")
    images = locate(root, "diaretdb1", "ddb1_fundusimages")
    truth = near(images, root, "diaretdb1", "ddb1_groundtruth", required=False)
    maps = {kind: image_index(truth / kind) if truth else {} for kind, _ in LESIONS}
    for path in iter_images(images):
        found = [name for kind, name in LESIONS if _marked(maps[kind].get(path.stem), cfg.min_agreement)]
        yield {
            "path": str(path),
            "source_id": path.stem,
            "diseases": [DR] if found else [],
            "findings": ("lesions marked by the experts: " + ", ".join(found)) if found else None,
        }


def _marked(mask, agreement: float) -> bool:
    if mask is None:
        return False
    with Image.open(mask) as im:
        return int(np.asarray(im.convert("L")).max()) >= round(agreement * 255)
