"""ACRIMA (glaucoma; Diaz-Pinto et al. 2019): 705 disc-centred crops, 396 glaucomatous.

Layout: `Database/Images/Im{NNN}_ACRIMA.jpg` (normal) and `Im{NNN}_g_ACRIMA.jpg` (glaucoma): the class is in the name."""

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
    pass


INFO = SourceInfo(
    name="acrima",
    title="ACRIMA",
    expects="Database/Images/Im{NNN}[_g]_ACRIMA.jpg",
    labels=("glaucoma",),
    homepage="https://figshare.com/s/c2d31f850af14c5b5232",
    patient_key="none published",
    notes=("'_g_' in the file name -> glaucoma", "images are disc-centred crops"),
)


NAME = re.compile(r"^Im\d+(_g)?_ACRIMA$", re.I)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "acrima", CLASSES, INFO.expects, split=False, name_of=_class_of)


def _class_of(path) -> str:
    m = NAME.match(path.stem)
    return "" if not m else "glaucoma" if m.group(1) else "normal"
