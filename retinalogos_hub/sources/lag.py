"""LAG (Large-scale Attention-based Glaucoma, Li et al. 2019/2020).

Layout: `{glaucoma,non_glaucoma,suspicious_glaucoma}/image/*.jpg` with the ophthalmologists' attention maps in
`attention_map/` beside each `image/` (not listed). Suspicious cases stay suspects."""

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
    expects="{glaucoma,non_glaucoma,suspicious_glaucoma}/image/*.jpg (+ attention_map/)",
    labels=("glaucoma", "diseases"),
    homepage="https://github.com/smilell/AG-CNN",
    patient_key="none published",
    notes=("suspicious_glaucoma -> 'glaucoma suspect', glaucoma None",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "lag", CLASSES, INFO.expects, name_of=_class_of)


def _class_of(path) -> str:
    return path.parent.parent.name if path.parent.name.lower() in ("image", "images") else path.parent.name
