"""ARIA (Automated Retinal Image Analysis, Liverpool; Farnell et al. 2008).

Layout: the release's zips `aria_{a,c,d}_markups.zip` (images), `aria_{a,c,d}_markup_vessel.zip` (`*_BDP.tif`,
`*_BSS.tif`: two observers' vessels) and `aria_{c,d}_markupdiscfovea.zip` (`*_dfs.tif` / `*_dfd.tif`), often unpacked
one folder deeper (`aria_d_markups/aria_d_markups/`). Images are named `aria_{a|c|d}_<n>_<k>.tif` (a: AMD, c: control,
d: diabetic); a few carry a `(NNNN)` prefix and no second number (`(0001)aria_d_26.tif`). Markups are not listed.
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `aria_{a,c,d}_markups/`), a public
ARIA download script listing the zips, and a public ARIA ingestion script (names `aria_a_12_15.tif`,
`aria_c_23_4_dfs.tif`, `(0001)aria_d_26.tif`), both found with `find_string`; the `(NNNN)` prefix was added."""

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


# markups add _BDP/_BSS/_dfs/_dfd and do not match; some images carry a `(0001)` prefix
NAME = re.compile(r"^(?:\(\d+\))?aria_([acd])_\d+(?:_\d+)?$", re.I)


def records(cfg: Config) -> Iterator[Record]:
    skip = re.compile(r"vessel|disc|fovea|_bdp|_bss|_df[sd]\b", re.I)
    yield from class_folders(cfg, "aria", CLASSES, INFO.expects, split=False, skip=skip, name_of=_class_of)


def _class_of(path) -> str:
    m = NAME.match(path.stem)
    return m.group(1) if m else ""
