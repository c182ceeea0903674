"""DIARETDB1 v2.1 (Kauppi et al. 2007): 89 images, 84 with at least mild NPDR, lesions marked by four experts.

Layout: `diaretdb1_v_1_1/resources/images/ddb1_fundusimages/image0NN.png` and the experts' consensus maps
`ddb1_groundtruth/{hardexudates,softexudates,hemorrhages,redsmalldots}/image0NN.png` (grey level = share of experts who
marked the pixel; `haemorrhages/` is accepted too). A lesion counts when at least `min_agreement` of the experts marked
some pixel of it; they go to findings. The official split is `resources/traindatasets/trainset.txt` and
`resources/testdatasets/testset.txt` (one image per line), read when present.
Layout facts: public loaders of `diaretdb1_v_1_1.zip` found with `find_string` (the toolkit's own path list
`../images/ddb1_groundtruth/{hardexudates,softexudates,redsmalldots,hemorrhages}/`, `ddb1_fundusmask/`, and the
`traindatasets/trainset.txt` / `testdatasets/testset.txt` paths); the folder was `hemorrhages`, not `haemorrhages`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    image_index,
    iter_images,
    locate,
    near,
    read_text,
    require_dir,
)
from .vocab import DR

# (folders the consensus maps are in, finding): the release spells it `hemorrhages`
LESIONS = (
    (("hardexudates",), "hard exudates"),
    (("softexudates",), "soft exudates (cotton-wool spots)"),
    (("hemorrhages", "haemorrhages"), "haemorrhages"),
    (("redsmalldots",), "microaneurysms (red small dots)"),
)
SPLITS = (("train", "trainset.txt"), ("test", "testset.txt"))


@dataclass
class Config(SourceConfig):
    min_agreement: float = 0.75  # share of the four experts (consensus map grey / 255) for a lesion to count


INFO = SourceInfo(
    name="diaretdb1",
    title="DIARETDB1 v2.1",
    expects="ddb1_fundusimages/image0NN.png + ddb1_groundtruth/{hardexudates,softexudates,hemorrhages,redsmalldots}/"
    " (+ traindatasets/trainset.txt, testdatasets/testset.txt)",
    labels=("diseases", "findings", "split"),
    homepage="https://www.it.lut.fi/project/imageret/diaretdb1/",
    patient_key="none published",
    notes=(
        "lesions with expert agreement >= min_agreement -> findings; any lesion -> DR (grade unknown)",
        "official split from trainset.txt / testset.txt when present",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "diaretdb1")
    # the zip unpacks as diaretdb1_v_1_1/resources/images/ddb1_fundusimages: one level deeper than `locate` looks
    images = locate(root, "diaretdb1", "ddb1_fundusimages", "*/*/*/ddb1_fundusimages")
    truth = near(images, root, "diaretdb1", "ddb1_groundtruth", required=False)
    maps = {name: _maps(truth, kinds) for kinds, name in LESIONS}
    split = _official_split(root)
    for path in iter_images(images):
        found = [name for _, name in LESIONS if _marked(maps[name].get(path.stem), cfg.min_agreement)]
        yield {
            "path": str(path),
            "source_id": path.stem,
            "diseases": [DR] if found else [],
            "findings": ("lesions marked by the experts: " + ", ".join(found)) if found else None,
            "split": split.get(path.stem),
        }


def _maps(truth: Path | None, kinds: tuple[str, ...]) -> dict[str, Path]:
    """The consensus maps of one lesion kind, under whichever of its spellings the release uses."""
    for kind in kinds:
        if truth is not None and (truth / kind).is_dir():
            return image_index(truth / kind)
    return {}


def _official_split(root: Path) -> dict[str, str]:
    """image stem -> train/test from the release's trainset.txt / testset.txt (first token of each line)."""
    out: dict[str, str] = {}
    for split, name in SPLITS:
        listing = locate(root, "diaretdb1", name, f"*/{name}", f"*/*/{name}", required=False)
        for line in read_text(listing).splitlines() if listing else []:
            token = line.replace(",", " ").split()[0] if line.strip() else ""
            if token:
                out.setdefault(Path(token.replace("\\", "/")).stem, split)
    return out


def _marked(mask, agreement: float) -> bool:
    if mask is None:
        return False
    with Image.open(mask) as im:
        return int(np.asarray(im.convert("L")).max()) >= round(agreement * 255)
