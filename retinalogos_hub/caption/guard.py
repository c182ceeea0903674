"""Label-consistency guard: does a caption contradict the row's labels?

`check(caption, row)` returns a list of issues (empty = consistent). It reads English clinical prose: a term counts
only when it is affirmed; negations ("no haemorrhages", "without exudates", "microaneurysms are absent",
"non-glaucomatous") are honoured within a clause, and a negation spans a list ("no microaneurysms, haemorrhages or
exudates"). Clauses end at sentence punctuation and at contrast words ("but", "however"). Unknown labels (None) are
never checked.
"""

from __future__ import annotations

import re

DR_LESIONS = {
    "microaneurysms": r"micro-?aneurysm\w*",
    "haemorrhages": r"ha?emorrhag\w*",
    "exudates": r"exudat\w*",
    "cotton-wool spots": r"cotton[- ]wool",
    "neovascularisation": r"neovasculari[sz]\w*|new vessels",
    "venous beading": r"venous beading",
    "IRMA": r"intra-?retinal microvascular abnormalit\w*|\birma\b",
}
GLAUCOMA_SIGNS = (
    r"glaucomat\w*|\bglaucoma\b|enlarged (?:optic )?cup|(?:neuro-?)?retinal rim (?:thinning|notch\w*|loss)"
    r"|thinning of the (?:neuro-?)?retinal rim|\bnotching\b|pathological cupping"
)
DME_SIGNS = r"macular o?edema|\bdme\b|\bcsme\b|clinically significant macular|diabetic maculopathy"
DR_NAME = r"diabetic retinopathy|\bnpdr\b|\bpdr\b"
# Whole-fundus denials that contradict any graded disease.
NORMAL_CLAIMS = (
    r"\b(?:normal|unremarkable|healthy) (?:fundus|retina)\b"
    r"|\bno (?:\w+ )?(?:lesions?|abnormalit\w+|pathology)\b(?! grad)"
)
CDR = r"(?:cup[- ]to[- ]disc|c/d|cdr)(?: ratio)?\D{0,20}?(\d?\.\d+)"
EYE = r"\b(right|left) (?:eye|fundus|retina)\b"
NO_RETINOPATHY = (
    r"\bno (?:(?:signs?|evidence|features) of |definite |obvious |apparent )*"
    r"(?:diabetic retinopathy|retinopathy|npdr|pdr)\b"
)

_CLAUSE_END = re.compile(r"[.;:!?\n]|\b(?:but|however|although|though|whereas|while|yet|except)\b", re.I)
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|absence of|absent|free of|neither|nor|lack of|lacks|rules? out|ruled out|negative for|"
    r"denies|excluded?)\b|\bnon-?\s*$",
    re.I,
)
_NEG_AFTER = re.compile(
    r"^[^,]{0,40}?\b(?:not (?:seen|present|visible|identified|evident|detected|observed|noted|apparent)"
    r"|absent|ruled out)\b",
    re.I,
)
_SEVERITY = (  # (pattern, ICDR grade) stated in a clause that names diabetic retinopathy
    (r"(?<![-\w])proliferative|\bpdr\b", 4),
    (r"severe\s+(?:non-?proliferative|npdr)", 3),
    (r"moderate\s+(?:non-?proliferative|npdr|diabetic retinopathy)", 2),
    (r"mild\s+(?:non-?proliferative|npdr|diabetic retinopathy)", 1),
)


def clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE_END.split(text) if c.strip()]


def mentions(text: str, pattern: str) -> tuple[bool, bool]:
    """(affirmed, negated): whether `pattern` occurs outside / inside a negation anywhere in `text`."""
    affirmed = negated = False
    rx = re.compile(pattern, re.I)
    for clause in clauses(text):
        for m in rx.finditer(clause):
            if _NEG_BEFORE.search(clause[: m.start()]) or _NEG_AFTER.search(clause[m.end() :]):
                negated = True
            else:
                affirmed = True
    return affirmed, negated


def _grade(row: dict) -> int | None:
    g = row.get("dr_grade")
    return None if g is None else int(g)


def check(caption: str, row: dict) -> list[str]:
    """Label-consistency issues of `caption` against the labels of schema row `row` (empty list = consistent)."""
    if not caption or not caption.strip():
        return ["empty caption"]
    issues: list[str] = []
    text = caption
    grade, dme, glaucoma, eye = _grade(row), row.get("dme"), row.get("glaucoma"), row.get("eye")

    # 1. Diabetic retinopathy: lesions, the stated severity, denials.
    if grade is not None:
        lesions = {name: mentions(text, rx) for name, rx in DR_LESIONS.items()}
        said = [name for name, (aff, _) in lesions.items() if aff]
        if grade == 0 and said and not _explains_lesions(row):
            issues.append(f"dr_grade 0 but the caption reports {', '.join(said)}")
        if grade == 0 and mentions(text, DR_NAME)[0]:
            issues.append("dr_grade 0 but the caption reports diabetic retinopathy")
        if grade >= 1:
            if re.search(NO_RETINOPATHY, text, re.I):
                issues.append(f"dr_grade {grade} but the caption says there is no retinopathy")
            elif mentions(text, NORMAL_CLAIMS)[0]:
                issues.append(f"dr_grade {grade} but the caption calls the fundus normal / lesion-free")
            elif not said and any(neg for _, neg in lesions.values()):
                issues.append(f"dr_grade {grade} but the caption denies every diabetic lesion")
        wrong = _stated_grades(text) - {grade}
        if wrong:
            issues.append(f"dr_grade {grade} but the caption states grade {', '.join(map(str, sorted(wrong)))}")

    # 2. Eye.
    if eye in ("left", "right"):
        other = {m.group(1).lower() for m in re.finditer(EYE, text, re.I)} - {eye}
        if other:
            issues.append(f"eye is {eye} but the caption says {other.pop()} eye")

    # 3. Glaucoma.
    if glaucoma is not None:
        aff, neg = mentions(text, GLAUCOMA_SIGNS)
        ratios = [float(m.group(1)) for m in re.finditer(CDR, text, re.I) if 0 < float(m.group(1)) < 1]
        if glaucoma is False and aff:
            issues.append("glaucoma-negative but the caption reports glaucomatous signs")
        if glaucoma is False and any(r >= 0.7 for r in ratios):
            issues.append(f"glaucoma-negative but the caption gives cup-to-disc ratio {max(ratios)}")
        if glaucoma is True and neg and not aff:
            issues.append("glaucoma-positive but the caption denies glaucomatous signs")
        if glaucoma is True and ratios and max(ratios) <= 0.3:
            issues.append(f"glaucoma-positive but the caption gives cup-to-disc ratio {max(ratios)}")

    # 4. Diabetic macular oedema.
    if dme is not None:
        aff, neg = mentions(text, DME_SIGNS)
        if int(dme) == 0 and aff:
            issues.append("dme 0 but the caption asserts macular oedema")
        if int(dme) >= 1 and neg and not aff:
            issues.append(f"dme {int(dme)} but the caption denies macular oedema")

    # 5. Other labelled diseases vs "normal fundus".
    others = [d for d in (row.get("diseases") or []) if d not in ("diabetic retinopathy", "normal")]
    if others and mentions(text, NORMAL_CLAIMS)[0] and not any("calls the fundus normal" in i for i in issues):
        issues.append(f"labelled {', '.join(others)} but the caption calls the fundus normal")
    return issues


def _stated_grades(text: str) -> set[int]:
    """ICDR grades the caption states in clauses naming diabetic retinopathy (affirmed only)."""
    out: set[int] = set()
    for clause in clauses(text):
        if not re.search(DR_NAME + r"|\bicdr\b|\bdr\b", clause, re.I):
            continue
        for m in re.finditer(r"\b(?:icdr\s+|dr\s+)?grade\s*([0-4])\b", clause, re.I):
            out.add(int(m.group(1)))
        for rx, g in _SEVERITY:
            for m in re.finditer(rx, clause, re.I):
                if not _NEG_BEFORE.search(clause[: m.start()]):
                    out.add(g)
                    break
            else:
                continue
            break  # the most severe stated term wins ("severe non-proliferative" also matches weaker ones)
    return out


def _explains_lesions(row: dict) -> bool:
    """Haemorrhages without DR are expected with these labels (vein occlusion, hypertension)."""
    names = " ".join(row.get("diseases") or []).lower()
    return any(k in names for k in ("occlusion", "rvo", "hypertens", "haemorrhage", "hemorrhage"))
