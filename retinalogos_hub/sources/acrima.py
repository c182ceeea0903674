"""ACRIMA (glaucoma; Diaz-Pinto et al. 2019): 705 disc-centred crops, 396 glaucomatous.

Layout: `Im{NNN}_ACRIMA.{jpg,png}` (normal) and `Im{NNN}_g_ACRIMA.{jpg,png}` (glaucoma), 309 + 396: the class is in the
name, so any folder works (`Database/Images/`, or FLAIR's `G/` and `noG/`).
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `36_ACRIMA/{G,noG}/`),
github.com/openmedlab/Awesome-Medical-Dataset `resources/ACRIMA.md` (naming rule, `Im686_g_ACRIMA`, PNG files) and a
public ACRIMA ingestion script found with `find_string` (`Im###_g_ACRIMA.png`, 396 + 309); as written (PNG accepted)."""

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
    expects="Im{NNN}[_g]_ACRIMA.{jpg,png} in any folder (Database/Images/, or G/ and noG/)",
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
