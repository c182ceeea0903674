"""JSIEC 1000 (Joint Shantou International Eye Centre): 39 class folders, no label file.

Layout: `{class folder}/*.jpg`, folder names like `0.0.Normal`, `0.3.DR1`, `1.0.DR2`, `10.0.Possible glaucoma`,
`29.1.Blur fundus with suspected PDR`. The class name (without its number) is the finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SourceError
from .base import Record, SourceConfig, SourceInfo, iter_images, require_dir
from .vocab import DR, HYPERTENSIVE, MYOPIA, from_keywords

# class name (lower-case, number stripped) -> (diseases, dr_grade, glaucoma); other classes keep their own name
CLASSES: dict[str, tuple[tuple[str, ...], int | None, bool | None]] = {
    "normal": ((), 0, False),
    "dr1": ((DR,), 1, None),
    "dr2": ((DR,), 2, None),
    "dr3": ((DR,), None, None),  # JSIEC's DR3 holds severe NPDR and PDR: grade 3 or 4, so no single grade (findings)
    "blur fundus with suspected pdr": (("proliferative diabetic retinopathy suspect",), None, None),
    "blur fundus without pdr": ((), None, None),
    "possible glaucoma": (("glaucoma suspect",), None, None),
    "large optic cup": (("large optic cup",), None, None),
    "severe hypertensive retinopathy": ((HYPERTENSIVE,), None, None),
    "pathological myopia": ((MYOPIA, "pathological myopia"), None, None),
    "tessellated fundus": (("tessellation",), None, None),
    "brvo": (("branch retinal vein occlusion",), None, None),
    "crvo": (("central retinal vein occlusion",), None, None),
    "rao": (("retinal artery occlusion",), None, None),
    "rhegmatogenous rd": (("retinal detachment",), None, None),
    "cscr": (("central serous retinopathy",), None, None),
    "erm": (("epiretinal membrane",), None, None),
    "mh": (("macular hole",), None, None),
    "maculopathy": (("maculopathy",), None, None),
}
# classes that span grades: the grade stays None and the finding says which grades the class holds
AMBIGUOUS = {"dr3": "DR3 (JSIEC class holding severe NPDR and PDR: ICDR grade 3 or 4)"}
FOLDER = re.compile(r"^\d+(?:\.\d+)?\.\s*(.+)$")


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="jsiec",
    title="JSIEC 1000 fundus images (39 classes)",
    expects="39 class folders named '<n>.<m>.<Class name>' (e.g. 0.0.Normal, 0.3.DR1, 10.0.Possible glaucoma) of *.jpg",
    labels=("diseases", "dr_grade", "glaucoma", "findings"),
    homepage="https://www.kaggle.com/datasets/linchundan/fundusimage1000",
    patient_key="none",
    notes=(
        "DR1/DR2 -> grades 1/2; DR3 holds severe NPDR and PDR -> grade None, 'grade 3 or 4' in findings",
        "suspected classes stay suspects ('glaucoma suspect', 'proliferative diabetic retinopathy suspect')",
        "the class name goes to findings",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "jsiec")
    folders = [d for d in sorted(root.rglob("*")) if d.is_dir() and FOLDER.match(d.name)]
    if not folders:
        raise SourceError(f"jsiec: {root} has no class folders like '0.0.Normal' or '1.0.DR2'")
    for folder in folders:
        name = FOLDER.match(folder.name).group(1).strip()
        known = [d for d in from_keywords(name) if d != "other"] or [name.lower()]
        diseases, grade, glaucoma = CLASSES.get(name.lower(), (tuple(known), None, None))
        for path in iter_images(folder):
            if path.parent != folder:
                continue
            yield {
                "path": str(path),
                "source_id": f"{folder.name}/{path.stem}".replace("/", "_").replace(" ", "_"),
                "dr_grade": grade,
                "glaucoma": glaucoma,
                "diseases": list(diseases),
                "findings": AMBIGUOUS.get(name.lower(), name),
            }
