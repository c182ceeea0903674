"""DRIONS-DB (Digital Retinal Images for Optic Nerve Segmentation Database, Miguel Servet Hospital, Saragossa;
Carmona et al. 2008): 110 images of 55 patients (glaucoma and ocular hypertension), the optic disc outlined by two
experts.

Layout: `images/image_NNN.jpg` (001-110) and `experts_anotation/anotExpert{1,2}_NNN.txt` (the dataset's own spelling),
each a list of `x , y` contour points of the optic disc, one per line. Facts from the bob.ip.binseg DRIONS-DB protocol
files (github.com/bioidiap/bob.ip.binseg: `bob/ip/binseg/data/drionsdb/expert1.json`, `__init__.py`, which reads the
points as comma-separated numbers) and FLAIR's `local_data/prepare_partitions.py` (github.com/jusiro/FLAIR), which
uses the images without labels. The release publishes no per-image diagnosis, no patient-to-image key and no split
(the 60/50 split of those protocols comes from a later paper), so rows carry the disc outline only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, locate, near, read_text, require_dir

NAME = re.compile(r"^image_(\d+)$", re.I)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="drions_db",
    title="DRIONS-DB (optic nerve head segmentation)",
    expects="images/image_NNN.jpg + experts_anotation/anotExpert{1,2}_NNN.txt (optic disc contour points)",
    labels=("findings",),
    homepage="http://www.ia.uned.es/~ejcarmona/DRIONS-DB.html",
    patient_key="none published (55 patients, 110 images, no pairing)",
    notes=("the experts' optic disc outline -> findings (centre and size); no diagnosis per image",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "drions_db")
    images = locate(root, "drions_db", "images")
    outlines = near(images, root, "drions_db", "experts_anotation", "experts_annotation", required=False)
    n = 0
    for path in iter_images(images):
        m = NAME.match(path.stem)
        if not m:
            continue
        n += 1
        yield {
            "path": str(path),
            "source_id": path.stem,
            "findings": _disc(outlines, m.group(1)) if outlines else None,
        }
    if not n:
        raise SourceError(f"drions_db: {images} holds no image_NNN.jpg files")


def _disc(folder: Path, number: str) -> str | None:
    """'optic disc outlined by expert 1: centre at (x, y) px, about W x H px' from the first expert file present."""
    for f in sorted(folder.glob(f"anotExpert*_{number}.txt")):
        points = _points(f)
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        expert = f.stem.split("_")[0].removeprefix("anotExpert")
        return (
            f"optic disc outlined by expert {expert}: centre at ({sum(xs) / len(xs):.0f}, {sum(ys) / len(ys):.0f}) "
            f"px, about {max(xs) - min(xs):.0f} x {max(ys) - min(ys):.0f} px"
        )
    return None


def _points(path: Path) -> list[tuple[float, float]]:
    out = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            x, y = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise InputError(
                f"{path} line {line_no}: expected 'x , y' contour coordinates, got {line.strip()!r}"
            ) from None
        out.append((x, y))
    return out
