"""HEI-MED (Hamilton Eye Institute Macular Edema Dataset, formerly DMED; Giancardo et al. 2012): 169 JPEG images from
a diabetic retinopathy telemedicine network, bright lesions (exudates, other bright lesions) outlined by one
ophthalmologist.

Layout (github.com/lgiancaUTH/HEI-MED: `DMED/`, `misc/Dmed.m`, `misc/ReadGNDFile.m`, `README.md`): one folder `DMED/`
with, per image, `<name>.jpg` (names such as `(00000003).jpg` or `0278250_(949).dcm.jpg`), `<name>.meta` (lines
`~Key~Value`: `PatientGender`, `PatientRace`, `PatientDOB`, `QualityValue` (the ELVD quality, 0-1), `DiabetesType`,
`ONrow`, `ONcol`), and when the expert marked lesions `<name>.GND` (first line the number of marked blobs, optionally
after a `GNDVERSION2.0 ...` header line, then one line per blob: `Exudate 1`, `MicroAneurysm 0`,
`Other Bright Lesion 1`, ...), `<name>.map.gz` and `<name>_vess.png` (machine vessel maps, not listed). As in
`Dmed.m`, an image with a `<name>*bad` file beside it is left out, and an image without a `.GND` has no marked lesion.
The README states that no patient is duplicated, so the image name is the patient key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, SourceError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    locate,
    missing_image,
    read_text,
    require_dir,
    sex_of,
    to_float,
)
from .vocab import DR

META_LINE = re.compile(r"^~\s*([A-Za-z]+)\s*:?\s*~(.*)$")
DR_LESIONS = ("exudate", "microaneurysm")  # the lesions `Dmed.isHealthy` looks for
LESION_NAMES = {"exudate": "exudates", "microaneurysm": "microaneurysms", "other bright lesion": "other bright lesions"}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="hei_med",
    title="HEI-MED (Hamilton Eye Institute Macular Edema Dataset)",
    expects="DMED/<name>.jpg + <name>.meta (~Key~Value lines) + optional <name>.GND (expert lesion list)",
    labels=("diseases", "findings", "sex", "patient_id"),
    homepage="https://github.com/lgiancaUTH/HEI-MED",
    patient_key="the image name (the README: no patient is duplicated)",
    notes=(
        "exudates or microaneurysms in the .GND -> DR (grade unknown); the marked lesion kinds go to findings",
        "the optic nerve head position, diabetes type and ELVD quality value of the .meta go to findings",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "hei_med")
    folder = _dataset_folder(root)
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    bad = [name for name in files if name.lower().endswith("bad")]
    for meta in sorted(p for p in files.values() if p.suffix.lower() == ".meta"):
        prefix = meta.name[: -len(meta.suffix)]
        image = next((files[prefix + s] for s in (".jpg", ".JPG", ".jpeg") if prefix + s in files), None)
        if image is None:
            missing_image(cfg, meta, 1, str(folder / f"{prefix}.jpg"))
            continue
        if any(name.startswith(image.name) for name in bad):
            continue  # flagged bad by the dataset itself (`Dmed.m` skips these)
        fields = _meta(meta)
        gnd = next((files[prefix + s] for s in (".GND", ".gnd") if prefix + s in files), None)
        lesions = _lesions(gnd) if gnd is not None else []
        findings = []
        if lesions:
            findings.append("lesions outlined by the expert: " + ", ".join(lesions))
        row, col = to_float(fields.get("onrow", "")), to_float(fields.get("oncol", ""))
        if row is not None and col is not None:
            findings.append(f"optic nerve head at ({col:.0f}, {row:.0f}) px")
        if fields.get("diabetestype"):
            findings.append(f"diabetes {fields['diabetestype'].lower()}")
        quality = to_float(fields.get("qualityvalue", ""))
        if quality is not None:
            findings.append(f"ELVD image quality {quality:.2f} (0-1)")
        yield {
            "path": str(image),
            "source_id": prefix,
            "patient_id": prefix,
            "sex": sex_of(fields.get("patientgender")),
            "diseases": [DR] if any(LESION_NAMES[k] in lesions for k in DR_LESIONS) else [],
            "findings": "; ".join(findings) or None,
        }


def _dataset_folder(root: Path) -> Path:
    """`DMED/` (at the root or up to two folders below), or the root itself when the .meta files lie there."""
    if any(p.suffix.lower() == ".meta" for p in root.iterdir()):
        return root
    folder = locate(root, "hei_med", "DMED")
    if not any(p.suffix.lower() == ".meta" for p in folder.iterdir()):
        raise SourceError(f"hei_med: {folder} holds no <name>.meta files beside its images")
    return folder


def _meta(path: Path) -> dict[str, str]:
    """lower-cased key -> value of a `.meta` file; lines that are not `~Key~Value` are ignored."""
    out = {}
    for line in read_text(path).splitlines():
        m = META_LINE.match(line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2).strip()
    return out


def _lesions(path: Path) -> list[str]:
    """The kinds of blob an expert marked in a `.GND` file, in the file's order, each once."""
    lines = read_text(path).splitlines()
    at = 1 if lines and lines[0].strip().upper().startswith("GNDVERSION") else 0
    count = lines[at].strip() if len(lines) > at else ""
    if not count.isdigit():
        raise InputError(f"{path} line {at + 1}: expected the number of marked blobs, got {count!r}")
    n = int(count)
    blobs = lines[at + 1 : at + 1 + n]
    if len(blobs) < n:
        raise InputError(f"{path} line {at + 1}: announces {n} blobs but lists {len(blobs)}")
    kinds: list[str] = []
    for line in blobs:
        kind = re.sub(r"\s+\d+\s*$", "", line.strip()).lower()  # "Exudate 1": the digit is bright (1) / dark (0)
        name = LESION_NAMES.get(kind, kind)
        if name and name not in kinds:
            kinds.append(name)
    return kinds
