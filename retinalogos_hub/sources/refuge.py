"""REFUGE / REFUGE2 (glaucoma, optic disc/cup, fovea).

Layouts accepted: REFUGE2's `{train,val,test}/Images/*.jpg` with `{split}/index.json` (ImgName,Fovea_X,Fovea_Y,Label);
REFUGE1's `Training400/{Glaucoma,Non-Glaucoma}/*.jpg`, `REFUGE-Validation400/`, `Test400/` with label sheets
(`*.xlsx`/`*.csv` with ImgName and a glaucoma label column). Training names start with g (glaucoma) or n (normal).
Masks, crops, ground-truth and illustration folders are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, SourceError
from .base import Record, SourceConfig, SourceInfo, flag, iter_images, locate, read_table, require_dir, to_float

SKIP = re.compile(r"mask|gts?$|crop|illustration|square|disc|cup|seg", re.I)
SPLIT_WORDS = (("train", "train"), ("val", "validation"), ("test", "test"))
LABEL_COLUMNS = ("Glaucoma Label", "Label(Glaucoma=1)", "Label")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="refuge",
    title="REFUGE / REFUGE2 glaucoma challenge",
    expects="{train,val,test}/Images/*.jpg (+ index.json) or Training400/{Glaucoma,Non-Glaucoma}/*.jpg, "
    "REFUGE-Validation400/, Test400/ (+ label sheets with ImgName)",
    labels=("glaucoma", "findings", "split"),
    homepage="https://refuge.grand-challenge.org/",
    patient_key="none published",
    notes=("training names g*/n* -> glaucoma", "fovea position from index.json / sheets -> findings"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = dataset_dir(require_dir(cfg.root, "refuge"))
    labels = sheet_labels(root)
    n = 0
    for path in iter_images(root):
        rel = path.relative_to(root).parts[:-1]
        if any(SKIP.search(p) for p in rel):
            continue
        split = next((s for part in rel for word, s in SPLIT_WORDS if word in part.lower()), None)
        glaucoma, fovea = labels.get(path.name, (None, None))
        if glaucoma is None and split == "train" and path.stem[:1].lower() in "gn":
            glaucoma = path.stem[:1].lower() == "g"
        if glaucoma is None and "glaucoma" in (p.lower() for p in rel):
            glaucoma = True
        if glaucoma is None and "non-glaucoma" in (p.lower() for p in rel):
            glaucoma = False
        n += 1
        yield {
            "path": str(path),
            "source_id": f"{split}-{path.stem}" if split else path.stem,
            "glaucoma": glaucoma,
            "findings": fovea,
            "split": split,
        }
    if not n:
        raise SourceError(f"refuge: no fundus images under {root} (expected train/Images/*.jpg or Training400/)")


def dataset_dir(root: Path) -> Path:
    """The REFUGE folder itself when `root` is a bundle holding it beside other datasets (G1020/, ORIGA/, REFUGE/):
    the folder above the first split `index.json` or REFUGE1 split folder; `root` when there is none."""
    hit = locate(root, "refuge", "index.json", "Training400", "*Validation400", required=False)
    if hit is None:
        return root
    base = hit.parent.parent if hit.name == "index.json" else hit.parent
    return base if base == root or root in base.parents else root


def sheet_labels(root: Path) -> dict[str, tuple[bool | None, str | None]]:
    """ImgName -> (glaucoma, fovea finding) from every index.json and label sheet below `root`."""
    out: dict[str, tuple[bool | None, str | None]] = {}
    for f in sorted(root.rglob("index.json")):
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{f}: not valid JSON ({e})") from None
        for item in data.values() if isinstance(data, dict) else data:
            _add(out, item)
    for f in sorted([*root.rglob("*.xlsx"), *root.rglob("*.csv")]):
        try:
            rows = read_table(f, ("ImgName",), strip_names=True)
        except InputError:  # some other sheet (challenge submissions, notes): not a label file
            continue
        for row in rows:
            _add(out, row)
    return out


def _add(out: dict, item: dict) -> None:
    name = str(item.get("ImgName", "")).strip()
    label = next((item[c] for c in LABEL_COLUMNS if c in item), None)
    x, y = to_float(item.get("Fovea_X", "")), to_float(item.get("Fovea_Y", ""))
    fovea = f"fovea centre at ({x:.0f}, {y:.0f}) px" if x is not None and y is not None and (x or y) else None
    if name:
        out[name] = (flag(label) if label is not None else None, fovea)
