"""LAG (Large-scale Attention-based Glaucoma, Li et al. 2019/2020).

Layout: `LAG_database_part_1/{non_glaucoma,suspicious_glaucoma}/image/*.jpg`, with the ophthalmologists' attention maps
in `attention_map/` and per-image `label/NNNN.txt` (0 negative, 1 suspicious) beside each `image/` (not listed).
The release has two classes: 6,882 negative and 4,878 "suspicious glaucoma", which the authors treat as the positive
class; here a suspect stays a suspect (glaucoma None, 'glaucoma suspect'). A third `glaucoma/` folder (three-class
re-packs: Glaucoma, Non_Glaucoma, Suspicious_Glaucoma) is accepted as definite glaucoma.
Layout facts: github.com/smilell/AG-CNN `README.md` (counts, 0/1 labels, Dropbox `LAG_database_part_1.rar`),
github.com/openmedlab/Awesome-Medical-Dataset `resources/LAG.md` (file tree), FLAIR (github.com/jusiro/FLAIR
`local_data/prepare_partitions.py`, `non_glaucoma/image/`, `suspicious_glaucoma/image/`); the writer's `glaucoma/`
folder (not in the release) was dropped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {
    "glaucoma": {"glaucoma": True, "_tag": True},
    "non_glaucoma": {"glaucoma": False, "_tag": True},
    "suspicious_glaucoma": {"glaucoma": None, "diseases": ["glaucoma suspect"], "_tag": True},
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="lag",
    title="LAG (Large-scale Attention-based Glaucoma)",
    expects="{non_glaucoma,suspicious_glaucoma}/image/*.jpg (+ attention_map/, label/)",
    labels=("glaucoma", "diseases"),
    homepage="https://github.com/smilell/AG-CNN",
    patient_key="none published",
    notes=("suspicious_glaucoma -> 'glaucoma suspect', glaucoma None",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "lag", CLASSES, INFO.expects, name_of=_class_of)


def _class_of(path) -> str:
    return path.parent.parent.name if path.parent.name.lower() in ("image", "images") else path.parent.name
