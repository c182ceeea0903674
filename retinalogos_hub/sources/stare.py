"""STARE (STructured Analysis of the REtina). Layout: `all-images/im{nnnn}.ppm` (decompressed from the release's
`.ppm.gz`) + `all-mg-codes.txt`, one line per image: `im0001<TAB>codes<TAB>diagnosis text`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, SourceError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, matched, read_text, require_dir
from .vocab import DR, HYPERTENSIVE, unique

# STARE's diagnosis codes
CODES = {
    0: None,
    1: "hollenhorst emboli",
    2: "branch retinal artery occlusion",
    3: "cilio-retinal artery occlusion",
    4: "branch retinal vein occlusion",
    5: "central retinal vein occlusion",
    6: "hemi-central retinal vein occlusion",
    7: DR,
    8: DR,
    9: "arteriosclerotic retinopathy",
    10: HYPERTENSIVE,
    11: "coats' disease",
    12: "macroaneurysm",
    13: "choroidal neovascularization",
    14: "other",
}
PDR = 8
LINE = re.compile(r"^\s*(im\d+)\s+((?:\d+\s*)+)(.*)$")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="stare",
    title="STARE",
    expects="all-mg-codes.txt (im0001 <codes> <text>) + all-images/im0001.ppm (gunzip the .ppm.gz first)",
    labels=("diseases", "dr_grade", "findings"),
    homepage="https://cecas.clemson.edu/~ahoover/stare/",
    patient_key="none published",
    notes=("code 8 (proliferative DR) -> grade 4; code 0 (normal) -> grade 0", "diagnosis text -> findings"),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "stare")
    labels = locate(root, "stare", "all-mg-codes.txt")
    index = image_index(root, recursive=True)
    if not index and list(root.rglob("*.ppm.gz")):
        raise SourceError(f"stare: {root} holds only .ppm.gz files; decompress them first (gunzip {root}/*/*.gz)")
    for row, path in matched(cfg, labels, read_codes(labels), index, "image", first_line=1):
        codes = row["codes"]
        yield {
            "path": str(path),
            "source_id": path.stem,
            "dr_grade": 4 if PDR in codes else 0 if codes == [0] else None,
            "diseases": unique(d for d in (CODES.get(c) for c in codes) if d),
            "findings": row["text"] or None,
        }


def read_codes(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        m = LINE.match(line)
        if not m:
            raise InputError(f"{path} line {n}: expected 'im0001 <codes> <diagnosis>', got {line!r}")
        rows.append({"image": m.group(1), "codes": [int(c) for c in m.group(2).split()], "text": m.group(3).strip()})
    return rows
