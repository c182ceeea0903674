"""The shared label vocabulary: every adapter maps its codes and keywords to these disease names.

Names are lower-case English, short, and the same across sources ("diabetic retinopathy", "amd", "glaucoma", ...), so
captions, filters and evaluation can count a disease without knowing where a row came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DR = "diabetic retinopathy"
DME = "diabetic macular edema"
GLAUCOMA = "glaucoma"
AMD = "amd"
CATARACT = "cataract"
HYPERTENSIVE = "hypertensive retinopathy"
MYOPIA = "myopia"
NORMAL_WORDS = ("normal", "wnl", "no abnormal", "no apparent", "nil")

# RFMiD 1.0 / 2.0 column codes (the 2.0 release adds a few; an unknown code keeps its lower-cased code as the name).
RFMID_CODES: dict[str, str] = {
    "DR": DR,
    "ARMD": AMD,
    "MH": "media haze",
    "DN": "drusen",
    "MYA": MYOPIA,
    "BRVO": "branch retinal vein occlusion",
    "TSLN": "tessellation",
    "ERM": "epiretinal membrane",
    "LS": "laser scars",
    "MS": "macular scar",
    "CSR": "central serous retinopathy",
    "CSC": "central serous retinopathy",
    "ODC": "optic disc cupping",
    "CRVO": "central retinal vein occlusion",
    "TV": "tortuous vessels",
    "AH": "asteroid hyalosis",
    "ODP": "optic disc pallor",
    "ODE": "optic disc edema",
    "ST": "optociliary shunt",
    "AION": "anterior ischemic optic neuropathy",
    "PT": "parafoveal telangiectasia",
    "RT": "retinal traction",
    "RS": "retinitis",
    "CRS": "chorioretinitis",
    "EDN": "exudation",
    "RPEC": "rpe changes",
    "MHL": "macular hole",
    "RP": "retinitis pigmentosa",
    "CWS": "cotton wool spots",
    "CB": "coloboma",
    "ODPM": "optic disc pit maculopathy",
    "PRH": "preretinal hemorrhage",
    "MNF": "myelinated nerve fibers",
    "HR": "hemorrhagic retinopathy",
    "CRAO": "central retinal artery occlusion",
    "TD": "tilted disc",
    "CME": "cystoid macular edema",
    "PTCR": "post-traumatic choroidal rupture",
    "CF": "choroidal folds",
    "VH": "vitreous hemorrhage",
    "MCA": "macroaneurysm",
    "VS": "vasculitis",
    "BRAO": "branch retinal artery occlusion",
    "PLQ": "plaque",
    "HPED": "hemorrhagic pigment epithelial detachment",
    "CL": "collateral",
    "CNV": "choroidal neovascularization",
    "RD": "retinal detachment",
    "ME": "macular edema",
    "HTN": HYPERTENSIVE,
    "GRT": "giant retinal tear",
    "IIH": "idiopathic intracranial hypertension",
    "ON": "optic neuritis",
    "SOFE": "silicone oil filled eye",
    "RHL": "retinal hole",
    "RTR": "retinal tear",
    "MYA/PM": MYOPIA,
    "OPDM": "optic disc pit maculopathy",
}

# ODIR-5K patient-level flags (fallback only: the per-eye keywords decide per eye).
ODIR_FLAGS: dict[str, str] = {
    "D": DR,
    "G": GLAUCOMA,
    "C": CATARACT,
    "A": AMD,
    "H": HYPERTENSIVE,
    "M": MYOPIA,
    "O": "other",
}

# Free-text keyword -> disease (first match per keyword wins; order specific before general).
KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"diabetic retinopathy|\bnpdr\b|\bpdr\b|proliferative retinopathy", DR),
    (r"macular edema|macular oedema|\bdme\b", DME),
    (r"glaucoma suspect|suspected glaucoma|possible glaucoma|glaucoma\?", "glaucoma suspect"),
    (r"glaucoma", GLAUCOMA),
    (r"cataract", CATARACT),
    (r"macular degeneration|\bamd\b|\barmd\b", AMD),
    (r"hypertensive", HYPERTENSIVE),
    (r"myopi", MYOPIA),
    (r"drusen", "drusen"),
    (r"epiretinal membrane", "epiretinal membrane"),
    (r"branch retinal vein occlusion|\bbrvo\b", "branch retinal vein occlusion"),
    (r"central retinal vein occlusion|\bcrvo\b", "central retinal vein occlusion"),
    (r"retinal artery occlusion", "retinal artery occlusion"),
    (r"retinal detachment", "retinal detachment"),
    (r"retinitis pigmentosa", "retinitis pigmentosa"),
    (r"laser spot|laser scar", "laser scars"),
    (r"macular hole", "macular hole"),
    (r"tessellat|leopard", "tessellation"),
    (r"optic atrophy|optic disc pallor", "optic atrophy"),
    (r"vitreous", "vitreous opacity"),
    (r"myelinated", "myelinated nerve fibers"),
    (r"chorioretin", "chorioretinitis"),
    (r"coloboma", "coloboma"),
    (r"central serous", "central serous retinopathy"),
)
SUSPECTED = re.compile(r"\bsuspect|\bsuspicio|\bpossible\b|\bprobable\b|\?")
# Keywords that describe the photo, not the eye (ODIR has them per eye).
PHOTO_KEYWORDS = (
    "lens dust",
    "low image quality",
    "image offset",
    "optic disk photographically invisible",
    "no fundus image",
    "anterior segment image",
)


def from_codes(codes: Iterable[str], table: dict[str, str]) -> list[str]:
    """Disease names for a set of codes (unknown codes keep their lower-cased code)."""
    return unique(table.get(c.strip().upper(), c.strip().lower()) for c in codes if c.strip())


def from_keywords(text: str | None) -> list[str]:
    """Disease names mentioned in free text (ODIR keywords, reports); normal and photo-quality phrases give none."""
    out = []
    for part in re.split(r"[，,;]", (text or "").lower()):
        part = part.strip()
        if not part or part.startswith(NORMAL_WORDS) or part in PHOTO_KEYWORDS:
            continue
        name = next((d for pattern, d in KEYWORDS if re.search(pattern, part)), None)
        if name and SUSPECTED.search(part) and not name.endswith(" suspect"):
            name = f"{name} suspect"  # "suspected glaucoma", "suspicious diabetic retinopathy": not a diagnosis
        out.append(name or "other")
    return unique(out)


def derived_diseases(
    diseases: Iterable[str], dr_grade: int | None, dme: int | None, glaucoma: bool | None
) -> list[str]:
    """`diseases` plus what the graded labels say, so one vocabulary covers both."""
    out = list(diseases)
    if dr_grade is not None and dr_grade >= 1:
        out.append(DR)
    if dme:
        out.append(DME)
    if glaucoma:
        out.append(GLAUCOMA)
    return unique(out)


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
