"""PALM (PAthoLogic Myopia challenge, iChallenge-PM, 2019).

Layout: `PALM-Training400/{H,N,P}NNNN.jpg`, usually unpacked one folder deeper from the inner
`PALM-Training400.zip` (`PALM-Training400/PALM-Training400/`): H high myopia, N normal, P pathological myopia (the first
letter of the file name is the class); lesion and disc masks in other folders are not listed. The validation images
(`PALM-Validation400/V0001.jpg`, labels in `PALM-Validation-GT/PM_Label_and_Fovea_Location.xlsx` with `imgName`,
`Label` 1 PM / 0 not PM) do not match the name pattern and are not listed: label 0 there cannot tell high myopia from
normal.
Layout facts: public iChallenge-PM loaders found with `find_string` (`PALM-Training400/PALM-Training400`,
`PALM-Validation400`, `PALM-Validation-GT/PM_Label_and_Fovea_Location.xlsx`, the H/N/P naming rule) and
github.com/openmedlab/Awesome-Medical-Dataset `resources/PALM19.md`; as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {
    "h": {"diseases": [MYOPIA, "high myopia"]},
    "p": {"diseases": [MYOPIA, "pathological myopia"]},
    "n": {"diseases": []},
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="palm",
    title="PALM / iChallenge-PM (pathologic myopia)",
    expects="PALM-Training400/{H,N,P}NNNN.jpg",
    labels=("diseases",),
    homepage="https://palm.grand-challenge.org/",
    patient_key="none published",
    notes=("H -> myopia, high myopia; P -> myopia, pathological myopia; N -> none",),
)


NAME = re.compile(r"^([HNP])\d{4}$", re.I)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "palm", CLASSES, INFO.expects, split=False, name_of=_class_of)


def _class_of(path) -> str:
    m = NAME.match(path.stem)
    return m.group(1) if m else ""
