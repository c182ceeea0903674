"""e-ophtha (OPHDIAT screening network, Decencière et al. 2013): e-ophtha EX (exudates) and e-ophtha MA
(microaneurysms), each with healthy controls.

Layout: `e_optha_EX/{EX,healthy}/<exam>/<image>.jpg` and `e_optha_MA/{MA,healthy}/<exam>/<image>.jpg`; the lesion masks
in `Annotation_EX/`, `Annotation_MA/` are not listed. The exam folder (`E0000043`) is the patient key; image names
are the release's own (`e_optha_MA/MA/E0000043/DS000DGS.JPG`, upper- or lower-case extensions).
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `e_optha_EX/EX/`,
`e_optha_EX/healthy/`, `e_optha_MA/MA/`) and public loaders found with `find_string` (`e_optha_MA/MA/E0000043/
DS000DGS.JPG`, `e_optha_MA/Annotation_MA/`, `e_optha_MA/healthy/`); as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import Record, SourceConfig, SourceInfo
from .folders import class_folders
from .vocab import DR

CLASSES = {
    "ex": {"diseases": [DR], "findings": "exudates (e-ophtha EX lesion masks)", "_tag": True},
    "ma": {"diseases": [DR], "findings": "microaneurysms (e-ophtha MA lesion masks)", "_tag": True},
    "healthy": {"diseases": [], "dr_grade": 0, "_tag": True},
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="e_ophtha",
    title="e-ophtha EX and MA",
    expects="e_optha_{EX,MA}/{EX|MA,healthy}/<exam>/*.jpg",
    labels=("diseases", "dr_grade", "findings", "patient_id"),
    homepage="https://www.adcis.net/en/third-party/e-ophtha/",
    patient_key="the exam folder",
    notes=("EX/MA -> DR (grade unknown) with the lesion kind in findings; healthy -> grade 0",),
)


def records(cfg: Config) -> Iterator[Record]:
    for rec in class_folders(
        cfg, "e_ophtha", CLASSES, INFO.expects, split=False, name_of=lambda p: p.parent.parent.name
    ):
        path = rec["path"]
        part = "ex" if "e_optha_ex" in path.lower() else "ma"
        exam = Path(path).parent.name
        yield {**rec, "source_id": f"{part}-{rec['source_id']}", "patient_id": exam}
