"""Miniature replicas of every source's real on-disk layout: procedural fundus images plus label files with the exact
file names, columns, separators and quirks of the real distributions. Tests and the demo point adapters at them.

`write_layout(name, root, n)` writes about `n` images (layouts built from eye pairs round up to an even count) and
returns the root to pass as `--source name=root`. Labels cycle deterministically, so small `n` (>= 8) covers every
class an adapter maps (all five DR grades, both eyes, both glaucoma classes).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from ..errors import SourceError
from .fundus import fundus_image

SIDES = ("left", "right")


def write_layout(name: str, root: Path, n: int = 8, seed: int = 0, size: int = 96) -> Path:
    if name not in WRITERS:
        raise SourceError(f"no miniature layout for {name!r}; known: {', '.join(sorted(WRITERS))}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    WRITERS[name](_Writer(root, seed, size), n)
    return root


class _Writer:
    """Draws the i-th image of a layout and writes label tables."""

    def __init__(self, root: Path, seed: int, size: int):
        self.root, self.seed, self.size = root, seed, size

    def image(self, rel: str, i: int, *, eye: str = "right", dr_grade: int = 0, glaucoma: bool = False,
              aspect: float = 1.0) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img = fundus_image(self.size, round(self.size * aspect), seed=self.seed * 10_000 + i, eye=eye,
                           dr_grade=dr_grade, glaucoma=glaucoma, notch=i % 3 != 2)
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".ppm": "PPM"}[path.suffix.lower()]
        img.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return path.name

    def table(self, rel: str, header: list[str], rows: list[list], sep: str = ",") -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=sep)
            w.writerow(header)
            w.writerows(rows)
        return path

    def text(self, rel: str, lines: list[str]) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
        return path


def _pairs(n: int) -> int:
    return max(1, (n + 1) // 2)


def _eyepacs(w: _Writer, n: int) -> None:
    # patients 10, 13, 16, ... (real ids are sparse); the last pair goes to test/ with the public/private Usage column
    train, test, eyeq = [], [], []
    pairs = _pairs(n)
    for p in range(pairs):
        pid = 10 + 3 * p
        for s, side in enumerate(SIDES):
            i = 2 * p + s
            grade = i % 5
            split = "test" if pairs > 1 and p == pairs - 1 else "train"
            w.image(f"{split}/{pid}_{side}.jpeg", i, eye=side, dr_grade=grade, aspect=2 / 3)
            if split == "test":
                test.append([f"{pid}_{side}", grade, "Public" if s == 0 else "Private"])
            else:
                train.append([f"{pid}_{side}", grade])
                if p < pairs - 2:  # EyeQ covers a subset of EyePACS
                    eyeq.append([len(eyeq), f"{pid}_{side}.jpeg", i % 3, grade])
    w.table("trainLabels.csv", ["image", "level"], train)
    if test:
        w.table("retinopathy_solution.csv", ["image", "level", "Usage"], test)
    w.table("Label_EyeQ_train.csv", ["", "image", "quality", "DR_grade"], eyeq)


def _aptos(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        code = f"{(0x1a2b3c4d5e6f + 7919 * i) & 0xFFFFFFFFFFFF:012x}"  # real ids are 12 hex digits
        w.image(f"train_images/{code}.png", i, dr_grade=i % 5)
        rows.append([code, i % 5])
    w.table("train.csv", ["id_code", "diagnosis"], rows)
    w.table("test.csv", ["id_code"], [])  # present in the real download, unlabelled


WRITERS: dict[str, Callable[[_Writer, int], None]] = {
    "eyepacs": _eyepacs,
    "aptos": _aptos,
}
