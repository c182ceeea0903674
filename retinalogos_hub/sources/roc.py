"""ROC (Retinopathy Online Challenge, University of Iowa; Niemeijer et al. 2010): 50 training and 50 test images of
patients with diabetes, microaneurysms (and dot haemorrhages) marked on the training images by retinal specialists.

Layout: `ROCtraining/image{0..49}_training.jpg` with the consensus markings `annotations-consensus-ma-only.xml` (or
`annotations-consensus.xml`) beside them, and `ROCtestImages/.../image{N}_test.jpg` (no markings published); the
archives often unpack into one more folder (`ROCtraining/ROCtraining/`). The XML is `<set>` with one
`<annotations-per-image imagename="imageN_training.jpg">` per image and one `<annotation>` per lesion (`<mark x y>`,
`<lesion>microaneurysm</lesion>`, `<probability>`). Facts from the webeye.ophth.uiowa.edu/ROC/ page, FLAIR's
`local_data/prepare_partitions.py` (github.com/jusiro/FLAIR, `26_ROC/*/*/*.jpg`) and public loaders of
`ROCtraining/annotations-consensus-ma-only.xml` (found with the code search; their XML header comment states the
copyright and the use rules). The training/test division is the challenge's own split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from ..errors import InputError, SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, missing_image, require_dir
from .vocab import DR

NAME = re.compile(r"^image\d+_(training|test)$", re.I)
SPLITS = {"training": "train", "test": "test"}
MARKINGS = ("annotations-consensus.xml", "annotations-consensus-ma-only.xml")  # the fuller one first


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="roc",
    title="ROC (Retinopathy Online Challenge) microaneurysm set",
    expects="ROCtraining/image{N}_training.jpg + annotations-consensus[-ma-only].xml; ROCtestImages/image{N}_test.jpg",
    labels=("diseases", "findings", "split"),
    homepage="http://webeye.ophth.uiowa.edu/ROC/",
    patient_key="none published (the XML header: a random sample of unique patients)",
    notes=(
        "training images with marked lesions -> DR (grade unknown), lesion counts in findings",
        "test images carry no labels (the challenge kept them)",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "roc")
    images = {p.stem.lower(): p for p in iter_images(root) if NAME.match(p.stem)}
    if not images:
        raise SourceError(f"roc: {root} does not look like the ROC layout: expected image{{N}}_training.jpg files")
    marks: dict[str, list[str]] = {}
    for xml in _marking_files(root):
        for name, line, lesions in _read_markings(xml):
            stem = Path(name).stem.lower()
            if stem not in images:
                missing_image(cfg, xml, line, str(xml.parent / name))
                continue
            marks.setdefault(stem, []).extend(lesions)
    for stem, path in sorted(images.items()):
        split = SPLITS[NAME.match(path.stem).group(1).lower()]
        lesions = marks.get(stem) if split == "train" else None
        yield {
            "path": str(path),
            "source_id": path.stem,
            "diseases": [DR] if lesions else [],
            "findings": _findings(lesions) if lesions is not None else None,
            "split": split,
        }


def _marking_files(root: Path) -> list[Path]:
    """The consensus XML of each training folder (the fuller file when both ship, never both: same lesions)."""
    by_folder: dict[Path, list[Path]] = {}
    for p in sorted(root.rglob("annotations-consensus*.xml")):
        by_folder.setdefault(p.parent, []).append(p)
    rank = {name: i for i, name in enumerate(MARKINGS)}
    return [min(files, key=lambda p: rank.get(p.name, len(rank))) for _, files in sorted(by_folder.items())]


def _read_markings(path: Path) -> list[tuple[str, int, list[str]]]:
    """(imagename, line, lesion kinds) per `annotations-per-image` element, with the line for error messages."""
    entries: list[tuple[str, int, list[str]]] = []
    text: list[str] = []
    kind: list[str] = []  # the <lesion> text of the annotation being read

    def start(tag, attrs):
        if tag == "annotations-per-image":
            entries.append((attrs.get("imagename", ""), parser.CurrentLineNumber, []))
        elif tag == "annotation":
            kind.clear()
        elif tag == "lesion":
            text.clear()

    def end(tag):
        if tag == "lesion":
            kind[:] = [" ".join("".join(text).split()).lower()]
        elif tag == "annotation" and entries:
            entries[-1][2].append((kind[0] if kind else "") or "lesion")

    parser = expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as e:
        raise InputError(f"{path} line {e.lineno}: not valid XML ({expat.ErrorString(e.code)})") from None
    for name, line, _ in entries:
        if not name:
            raise InputError(f"{path} line {line}: annotations-per-image without an imagename attribute")
    return entries


def _findings(lesions: list[str]) -> str:
    if not lesions:
        return "no microaneurysm or haemorrhage marked by the retinal specialists"
    counts: dict[str, int] = {}
    for kind in lesions:
        counts[kind] = counts.get(kind, 0) + 1
    parts = [f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items()]
    return "marked by the retinal specialists: " + ", ".join(parts)
