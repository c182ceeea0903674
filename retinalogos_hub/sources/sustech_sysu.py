"""SUSTech-SYSU (Lin et al., Sci Data 2020): 1,219 images of DR patients and healthy controls, each with the eye, DR
grades on three scales, exudates boxed (hard `ex` and soft `se`), the optic disc box and the fovea position.

Layout (the authors' README, github.com/llmir/The-SUSTech-SYSU-dataset-for-automated-exudate-detection-and-diabetic-
retinopathy-grading, and the figshare record 10.6084/m9.figshare.12570770): `originalImages/NNNN.jpg` (0001-1219)
with `drLabels.csv` in that folder (some copies keep it beside it): `Fundus_images`,
`left_versus_right_eye(left_0_right_1)`, `DR_grade(International_Clinical_DR_Severity_Scale)` (0-5; 5 = DR with laser
spots or scars), `DR_grade(American_Academy_of_Ophthalmology)`, `DR_grade(Scottish_DR_grading_protocol)`;
`c5_DR_reclassified.csv` (same grade columns, for the grade-5 images); Pascal VOC XML per image in `exudateLabels/`
(FLAIR and others spell it `exudatesLabels/`) and `odFoveaLabels/` (the fovea as a one-pixel box). FLAIR's
`local_data/prepare_partitions.py` (github.com/jusiro/FLAIR) reads a renamed copy (`Labels.csv`,
`DR_grade_American_Academy_of_Ophthalmology`); both spellings are accepted. No split, no patient key is published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from ..errors import InputError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    col,
    image_index,
    locate,
    matched,
    near,
    read_table,
    require_dir,
    to_float,
    to_int,
)

FILE = "Fundus_images"
EYE = ("left_versus_right_eye(left_0_right_1)", "left_versus_right_eye_left_0_right_1", "left_versus_right_eye")
ICDR = ("DR_grade(International_Clinical_DR_Severity_Scale)", "DR_grade_International_Clinical_DR_Severity_Scale")
LASER = 5  # the release's ICDR code for "DR with laser spots or scars"
EYES = {"0": "left", "1": "right"}
EXUDATES = {"ex": "hard exudate", "se": "soft exudate"}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="sustech_sysu",
    title="SUSTech-SYSU (exudates, DR grading)",
    expects="originalImages/NNNN.jpg + drLabels.csv (Fundus_images, left_versus_right_eye(left_0_right_1), "
    "DR_grade(International_Clinical_DR_Severity_Scale), ...) + optional c5_DR_reclassified.csv, "
    "exudateLabels/*.xml, odFoveaLabels/*.xml",
    labels=("eye", "dr_grade", "diseases", "findings"),
    homepage="https://doi.org/10.6084/m9.figshare.12570770",
    patient_key="none published",
    notes=(
        "ICDR 5 (laser spots or scars) -> the grade of c5_DR_reclassified.csv, else unknown; 'laser scars' disease",
        "exudate boxes, optic disc box and fovea -> findings",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "sustech_sysu")
    labels = locate(root, "sustech_sysu", "drLabels.csv", "Labels.csv")
    images_dir = near(labels, root, "sustech_sysu", "originalImages", required=False) or labels.parent
    images = image_index(images_dir)
    regraded = _regraded(near(labels, root, "sustech_sysu", "c5_DR_reclassified.csv", required=False))
    exudates = near(labels, root, "sustech_sysu", "exudateLabels", "exudatesLabels", required=False)
    landmarks = near(labels, root, "sustech_sysu", "odFoveaLabels", required=False)
    rows = read_table(labels, (FILE, ICDR), strip_names=True)
    for row, path in matched(cfg, labels, rows, images, FILE):
        where = f"{labels} image {col(row, FILE)}"
        grade = to_int(col(row, ICDR), where)
        if grade is not None and not 0 <= grade <= LASER:
            raise InputError(f"{where}: ICDR grade must be 0-{LASER}, got {grade}")
        diseases = []
        if grade == LASER:
            diseases.append("laser scars")
            grade = regraded.get(path.name.lower())
        findings = [*_boxes(exudates, path.stem, EXUDATES), *_landmarks(landmarks, path.stem)]
        yield {
            "path": str(path),
            "source_id": path.stem,
            "eye": EYES.get(col(row, EYE)),
            "dr_grade": grade,
            "diseases": diseases,
            "findings": "; ".join(findings) or None,
        }


def _regraded(sheet: Path | None) -> dict[str, int | None]:
    """image name -> the ICDR grade given to a grade-5 (laser) image in `c5_DR_reclassified.csv`."""
    if sheet is None:
        return {}
    out = {}
    rows = read_table(sheet, (FILE, ICDR), strip_names=True)
    for line, row in enumerate(rows, start=rows.first_line):
        name = col(row, FILE)
        grade = to_int(col(row, ICDR), f"{sheet} line {line}")
        if grade is not None and not 0 <= grade < LASER:
            raise InputError(f"{sheet} line {line}: reclassified ICDR grade must be 0-{LASER - 1}, got {grade}")
        if name:
            out[name.lower()] = grade
    return out


def _objects(folder: Path | None, stem: str) -> list[tuple[str, tuple[float, ...] | None]]:
    """(name, (xmin, ymin, xmax, ymax)) of each object of the Pascal VOC file `<stem>.xml` in `folder`."""
    path = folder / f"{stem}.xml" if folder else None
    if path is None or not path.is_file():
        return []
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as e:
        raise InputError(f"{path} line {e.position[0]}: not valid XML ({e})") from None
    out = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        coords = (
            tuple(to_float(box.findtext(k) or "") for k in ("xmin", "ymin", "xmax", "ymax")) if box is not None else ()
        )
        out.append((name, coords if coords and None not in coords else None))
    return out


def _boxes(folder: Path | None, stem: str, kinds: dict[str, str]) -> list[str]:
    counts: dict[str, int] = {}
    for name, _ in _objects(folder, stem):
        label = kinds.get(name.lower(), name.lower())
        counts[label] = counts.get(label, 0) + 1
    return [f"{n} {label}{'s' if n > 1 else ''} boxed" for label, n in counts.items()]


def _landmarks(folder: Path | None, stem: str) -> list[str]:
    out = []
    for name, box in _objects(folder, stem):
        if box is None:
            continue
        x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        kind = name.lower()
        if kind.startswith(("od", "optic")):
            out.append(
                f"optic disc centre at ({x:.0f}, {y:.0f}) px, box {box[2] - box[0]:.0f} x {box[3] - box[1]:.0f} px"
            )
        elif kind.startswith(("fovea", "macula")):
            out.append(f"fovea centre at ({x:.0f}, {y:.0f}) px")
    return out
