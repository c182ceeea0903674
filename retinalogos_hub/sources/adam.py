"""ADAM (Automatic Detection challenge on Age-related Macular degeneration, iChallenge-AMD, 2020).

Layout: `Training400/{AMD,Non-AMD}/{A,N}NNNN.jpg` (89 AMD, 311 non-AMD) beside `Training400/Fovea_location.xlsx`
(not read); the validation and test images have no public class folders and are not listed. REFUGE's own
`Training400/{Glaucoma,Non-Glaucoma}/` folders do not match.
Layout facts: public ADAM loaders found with `find_string` (`Training400/AMD/A0001.jpg`, `Training400/Non-AMD/`,
`Training400/Fovea_location.xlsx`, `Testing400/Images/`, 89 + 311) and amd.grand-challenge.org; as written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import AMD, CATARACT, DR, GLAUCOMA, MYOPIA  # noqa: F401

CLASSES = {"amd": {"diseases": [AMD]}, "non-amd": {"diseases": []}}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="adam",
    title="ADAM / iChallenge-AMD",
    expects="Training400/{AMD,Non-AMD}/*.jpg",
    labels=("diseases", "split"),
    homepage="https://amd.grand-challenge.org/",
    patient_key="none published",
    notes=("AMD -> amd; Non-AMD -> no AMD (other findings unknown)",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from class_folders(cfg, "adam", CLASSES, INFO.expects)
