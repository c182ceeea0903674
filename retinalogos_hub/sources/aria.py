"""ARIA (Automated Retinal Image Analysis, Liverpool; Farnell et al. 2008).

Layout: images named `aria_{a|c|d}_<n>_<k>.tif` (a: AMD, c: control, d: diabetic) in folders per group; vessel,
disc and fovea markups (`*_BDP`, `*_BSS`, markup folders) are not listed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {"a": {"diseases": [AMD]}, "c": {"diseases": [], "dr_grade": 0}, "d": {"diseases": [DR]}}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="aria",
    title="ARIA (Automated Retinal Image Analysis)",
    expects="aria_{a,c,d}_*.tif (a AMD, c control, d diabetic)",
    labels=("diseases", "dr_grade"),
    homepage="https://www.damianjjfarnell.com/?page_id=276",
    patient_key="none published",
    notes=("d -> DR (grade unknown); c -> no disease",),
)


NAME = re.compile(r"^aria_([acd])_\d+(?:_\d+)?$", re.I)  # markups add _BDP/_BSS and do not match


def records(cfg: Config) -> Iterator[Record]:
    skip = re.compile(r"vessel|disc|fovea|_bdp|_bss", re.I)
    yield from class_folders(cfg, "aria", CLASSES, INFO.expects, split=False, skip=skip, name_of=_class_of)


def _class_of(path) -> str:
    m = NAME.match(path.stem)
    return m.group(1) if m else ""
