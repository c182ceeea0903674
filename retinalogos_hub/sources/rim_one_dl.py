"""RIM-ONE DL (glaucoma; Batista et al. 2020): 485 optic-disc-centred crops of fundus photos.

Layout: `RIM-ONE_DL_images/{partitioned_by_hospital,partitioned_randomly}/{training_set,test_set}/{glaucoma,normal}/
*.png` (names `r{1,2,3}_Im{NNN}.png`, the prefix being the RIM-ONE release the image came from); both partitions hold
the same 485 images, so only the one named by `partition` is read. The reference segmentations
(`RIM-ONE_DL_reference_segmentations/{glaucoma,normal}/`, a separate zip that users often unpack beside the images)
are not listed.
Layout facts: github.com/miag-ull/rim-one-dl `README.md` (two partitions, 313 normal + 172 glaucoma) and public loaders
found with `find_string` (`RIM-ONE_DL_images/partitioned_by_hospital/{training_set,test_set}/glaucoma/r2_Im257.png`,
`RIM-ONE_DL_reference_segmentations`, `LICENSE.txt` beside the partitions); the segmentations folder, which has the
same class folders, was listed as images before and is now skipped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {"glaucoma": {"glaucoma": True}, "normal": {"glaucoma": False}}


@dataclass
class Config(SourceConfig):
    partition: str = "partitioned_by_hospital"  # or "partitioned_randomly" (the same images, split otherwise)


INFO = SourceInfo(
    name="rim_one_dl",
    title="RIM-ONE DL",
    expects="RIM-ONE_DL_images/partitioned_by_hospital/{training_set,test_set}/{glaucoma,normal}/*.png",
    labels=("glaucoma", "split"),
    homepage="https://github.com/miag-ull/rim-one-dl",
    patient_key="none published",
    notes=("partition=partitioned_by_hospital (default) or partitioned_randomly", "images are disc-centred crops"),
)


def records(cfg: Config) -> Iterator[Record]:
    other = "partitioned_randomly" if cfg.partition == "partitioned_by_hospital" else "partitioned_by_hospital"
    skip = re.compile(rf"{other}|mask|annotation|segmentation", re.I)
    yield from class_folders(cfg, "rim_one_dl", CLASSES, INFO.expects, skip=skip)
