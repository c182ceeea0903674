"""Label-consistency guard: does a caption contradict the row's labels?

`check(caption, row)` returns a list of issues (empty = consistent); `row` is a schema row (labels, and optionally its
`caption_fields`, which are checked too, each issue prefixed with `caption_fields.<name>:`). Unknown labels (None)
are never checked. The rules read English clinical prose:

- **Polarity.** Every mention is affirmed, negated or hedged. A negation ("no", "without", "free of", "absence of",
  "non-") covers a list up to its verb ("no microaneurysms, haemorrhages or exudates are seen") and stops at a new
  predicate, "with", "except", "other than" or a contrast word; a trailing negation ("haemorrhages are absent",
  "... were not seen") counts too. Hedges ("possible", "suspicious for", "cannot be excluded", "?") are neither
  findings nor denials, so they never raise an issue.
- **ICDR.** Lesions imply a lowest grade (microaneurysms 1; haemorrhages, exudates, cotton-wool spots, venous beading,
  IRMA 2; the 4-2-1 pattern and pan-retinal laser scars 3; new vessels, vitreous / pre-retinal haemorrhage and
  fibrovascular tissue 4); "microaneurysms only" a highest one; stated grades, levels, stages (ICDR and ETDRS) and
  severity names (mild / moderate / severe NPDR, PDR, "no retinopathy") a set of grades. Haemorrhages, exudates and
  new vessels explained by another labelled disease (vein occlusion, hypertension, AMD) or by DME are not counted.
- **Whole-fundus and local "normal" claims** ("normal fundus", "no lesions", "otherwise" excepted; "the macula is
  healthy"; "the disc is normal", "small physiological cup") against the grade, DME, glaucoma and AMD labels.
- **Laterality** in every common form: right/left eye, OD/OS, O.D./O.S., oculus dexter/sinister, RE/LE.
- **Glaucoma**: glaucomatous signs and cup-to-disc ratios (>= 0.7 against a negative label, <= 0.4 against a
  positive one) and normal-disc claims. **DME**: oedema, macular thickening and exudates at the fovea against DME 0;
  denials and normal-macula claims against DME present. **AMD**: drusen / AMD claims against a "normal" label;
  denials and normal-macula claims against AMD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .labels import Labels

CDR_HIGH = 0.7  # a glaucoma-negative eye with a cup-to-disc ratio this large or larger is a contradiction
CDR_LOW = 0.4  # a glaucoma-positive eye with a ratio this small or smaller is a contradiction

_I = re.I

# ---- polarity -------------------------------------------------------------------------------------------------
_SENT = re.compile(r"(?<!\d)[.!?;](?!\d)|\n")
_CONTRAST = re.compile(r"\b(?:but|however|although|though|whereas|while|yet)\b", _I)
_MASK = (  # rewritten before any rule reads a clause
    (re.compile(r"\bO\.D\.(?!\w)"), "OD"),
    (re.compile(r"\bO\.S\.(?!\w)"), "OS"),
    (re.compile(r"\bcan not\b", _I), "cannot"),
    (re.compile(r"\b(?:cannot|can't|could not|couldn't)\s+(?:be\s+)?(?:excluded?|ruled?\s+out)\b", _I), " maybe "),
    (re.compile(r"\b(?:cannot|can't|could not|couldn't)\s+(?:exclude|rule\s+out)\b", _I), " maybe "),
    (
        re.compile(
            r"\b(?:could not|couldn't|cannot|can't)\s+be\s+(?:seen|identified|detected|found|visuali[sz]ed)", _I
        ),
        " not seen",
    ),
)
_NEG_PRE = re.compile(
    r"\b(?:no|not|without|absence of|absent|free of|neither|nor|lack of|lacks|lacking|negative for|nil|denies|"
    r"rules? out|ruled out|never)\b",
    _I,
)
_HEDGE_PRE = re.compile(
    r"\b(?:possible|possibly|probable|probably|suspected|suspect|suspicious (?:for|of)|suggestive of|suggesting|"
    r"questionable|query|equivocal|borderline|likely|may|might|could|maybe|doubtful|uncertain|early signs of)\b|\?",
    _I,
)
_DET = r"(?:the|a|an|there|several|some|few|a few|scattered|numerous|multiple|many|occasional|isolated|extensive)\b"
_BREAK = re.compile(
    r"\b(?:is|are|was|were|seen|noted|present|visible|identified|observed|shows?|showing|has|have|appears?|with|"
    rf"other than|except|apart from|besides|aside from)\b|\band (?={_DET})|,\s*(?={_DET})|[():]",
    _I,
)
_FIRST_AFTER = re.compile(
    r"\b(?:is|are|was|were|appears?|remains?|seems?|not|absent|none|nil|ruled out|excluded|maybe|may|might|could|"
    r"possible|possibly|suspect\w*|questionable|probable|likely|seen|noted|present|visible|identified|observed|shows?|"
    r"with|other than|except)\b|\?",
    _I,
)
_COPULA_NEG = re.compile(r"\s*(?:not\b|absent\b|none\b|no longer\b|ruled out\b|excluded\b|nil\b)", _I)
_COPULA_HEDGE = re.compile(r"\s*(?:possibl\w*|suspect\w*|questionabl\w*|likely|probabl\w*|equivocal|maybe)\b", _I)


@lru_cache(maxsize=4096)
def clauses(text: str) -> tuple[str, ...]:
    """Sentences split further at contrast words; hedge / negation phrases normalised (`_MASK`)."""
    for rx, repl in _MASK:
        text = rx.sub(repl, text)
    return tuple(c for s in _SENT.split(text) for c in _CONTRAST.split(s) if c.strip())


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, _I)


def polarity(clause: str, start: int, end: int) -> str:
    """'aff', 'neg' or 'hedge' for the mention clause[start:end]."""
    before = clause[:start]
    if re.search(r"\bnon[- ]?$", before, _I):
        return "neg"
    cut = 0
    for m in _BREAK.finditer(before):
        cut = m.end()
    scope = before[cut:]
    if _NEG_PRE.search(scope):
        return "neg"
    if _HEDGE_PRE.search(scope):
        return "hedge"
    after = clause[end:]
    first = _FIRST_AFTER.search(after)
    if not first:
        return "aff"
    word = first.group(0).lower()
    if word in ("is", "are", "was", "were", "appear", "appears", "remain", "remains", "seem", "seems"):
        rest = after[first.end() :]
        if _COPULA_NEG.match(rest):
            return "neg"
        if _COPULA_HEDGE.match(rest):
            return "hedge"
        return "aff"
    if word in ("not", "absent", "none", "nil", "ruled out", "excluded"):
        return "neg"
    if word in ("maybe", "may", "might", "could", "possible", "possibly", "questionable", "probable", "likely", "?"):
        return "hedge"
    if word.startswith("suspect"):
        return "hedge"
    return "aff"


def mentions(text: str, pattern: str | re.Pattern) -> dict[str, list[tuple[str, re.Match]]]:
    """Every match of `pattern` in `text` by polarity: {'aff': [(clause, match)], 'neg': [...], 'hedge': [...]}."""
    rx = _compiled(pattern) if isinstance(pattern, str) else pattern
    out: dict[str, list[tuple[str, re.Match]]] = {"aff": [], "neg": [], "hedge": []}
    for clause in clauses(text):
        if _OTHER_EYE.search(clause):
            continue  # "the fellow eye has new vessels" says nothing about this eye
        for m in rx.finditer(clause):
            out[polarity(clause, m.start(), m.end())].append((clause, m))
    return out


# ---- vocabularies ---------------------------------------------------------------------------------------------
_HAEM = r"ha?emorrhag\w*"
# (name, pattern, lowest ICDR grade it implies, label words that explain it without DR)
DR_LESIONS: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("microaneurysms", r"micro-?\s?aneurysm\w*", 1, ("occlusion", "rvo", "hypertens")),
    (
        "haemorrhages",
        rf"(?<!disc )(?<!vitreous )(?<!preretinal )(?<!pre-retinal )(?<!subhyaloid )(?<!subretinal )(?<!splinter )"
        rf"\b{_HAEM}|\bdot[- ](?:and[- ])?blot\b|\bblot\b",
        2,
        ("occlusion", "rvo", "hypertens", "haemorrhage", "hemorrhage", "amd", "macular degeneration"),
    ),
    (
        "hard exudates",
        r"(?<!soft )\bexudat\w*",
        2,
        ("occlusion", "rvo", "hypertens", "amd", "macular degeneration", "DME"),
    ),
    ("cotton-wool spots", r"cotton[- ]wool|soft exudat\w*", 2, ("occlusion", "rvo", "hypertens")),
    ("venous beading", r"venous beading|beaded veins?|beading of (?:the )?veins|veins? (?:show|with) beading", 2, ()),
    ("IRMA", r"intra-?retinal microvascular abnormalit\w*|\birma\b", 2, ()),
    (
        "pan-retinal laser scars",
        r"(?<!focal )(?<!grid )(?<!macular )(?:pan-?retinal photocoagulation|\bprp\b|scatter laser|"
        r"\blaser (?:photocoagulation )?(?:scars?|burns?|marks?|spots?)|photocoagulation scars?)",
        3,
        ("occlusion", "rvo"),
    ),
    (
        "new vessels",
        r"(?<!choroidal )(?:neovasculari[sz]\w*|\bnew vessels?|\bnv[de]\b|fibrovascular|fibrous (?:tissue|proliferation)|"
        r"traction(?:al)? (?:retinal )?detachment)",
        4,
        ("occlusion", "rvo", "sickle"),
    ),
    (
        "vitreous / pre-retinal haemorrhage",
        rf"(?:vitreous|pre-?retinal|subhyaloid) {_HAEM}|{_HAEM} into the vitreous|vitreous bleed\w*",
        4,
        ("occlusion", "rvo"),
    ),
)
# The 4-2-1 rule in words, each part counted only in a clause that affirms its lesion.
_SEVERE = {
    "haemorrhages": re.compile(
        r"(?:all|each of the|every|each) (?:four|4) quadrants|\bevery quadrant|\b(?:more than|over|>) ?(?:20|twenty)",
        _I,
    ),
    "venous beading": re.compile(
        r"\b(?:two|2|three|3|four|4|multiple|several|both) or more quadrants|"
        r"\bin (?:two|2|three|3|four|4|multiple|several|all|both \w+) quadrants",
        _I,
    ),
    "IRMA": re.compile(r"\bprominent\b|\bextensive\b", _I),
}
_MA_ONLY = r"micro-?\s?aneurysms? only|only (?:a few |scattered |isolated |some )?micro-?\s?aneurysms?"

_NUM = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "i": 1, "ii": 2, "iii": 3, "iv": 4}
_DR_STATEMENT = re.compile(
    r"\bretinopathy\s*[:,-]?\s*(?P<np2>non[- ]?proliferative|proliferative)\b|"
    r"(?P<sev>\b(?:very severe|mild|moderate|severe|minimal|advanced)\s+)?"
    r"(?P<np>\bnon[- ]?proliferative|\bpre-?proliferative|(?<![-\w])proliferative)?\s*"
    r"(?P<name>\b(?:diabetic\s+)?retinopathy|\bdr\b|\bdiabetic eye disease|(?<=proliferative )(?:disease|changes|stage))"
    r"|(?P<sev2>\b(?:very severe|mild|moderate|severe)\s+)?\b(?P<abbr>npdr|pdr)\b",
    _I,
)
_GRADE_STMT = re.compile(
    r"\b(?:grade|level|stage|score|category)\s*(?:of\s+|:\s*|=\s*|is\s+)?(?P<n>[0-4]|zero|one|two|three|four|iv|i{1,3})"
    r"\b(?!\s*(?:/|of\s+[5-9]|\.\d))|\bicdr\s*(?:[:=]\s*)?(?P<n2>[0-4])\b|\b(?P<r>[0-4])\s*/\s*4\b",
    _I,
)
_ETDRS = re.compile(r"\betdrs\s+(?:severity\s+)?(?:level|step|scale)?\s*(?:of\s+)?(?P<e>\d{2})\b", _I)
_DR_CONTEXT = re.compile(r"\bicdr\b|retinopathy|\bdr\b|\bn?pdr\b|diabetic|etdrs", _I)
_NOT_DR = re.compile(
    r"quality|macula|o?edema|\bdme\b|hypertensive|keith|cataract|\bamd\b|drusen|glaucoma|areds|myop", _I
)


def _etdrs(level: int) -> set[int]:
    if level < 20:
        return {0}
    if level < 35:
        return {1}
    if level < 53:
        return {2}
    if level < 61:
        return {3}
    return {4}


NORMAL_WHOLE = re.compile(
    r"\b(?:normal|unremarkable|healthy)(?:[- ]appearing)? (?:fundus|retina|eye|fundus photograph|examination|study|"
    r"fundoscopy|posterior pole)\b|\b(?:fundus|retina|eye|examination|photograph|image)(?: itself)? "
    r"(?:is|appears|looks|seems) (?:entirely |completely |essentially |totally )?(?:normal|unremarkable|healthy)\b|"
    r"within normal limits|\bno (?:\w+ ){0,2}?(?:abnormalit\w+|pathology|patholog\w+ findings?|disease)\b|"
    r"\bno (?:signs?|evidence) of (?:any )?(?:retinal |ocular )?(?:disease|pathology)|\bnormal findings\b",
    _I,
)
LESION_FREE = re.compile(r"\bno (?:\w+[- ]?){0,2}?lesions?\b|\blesion[- ]free\b|\bfree of (?:any )?lesions\b", _I)
_NOT_BEFORE = re.compile(r"\bnot\s+(?:an?\s+|the\s+|entirely\s+|completely\s+|quite\s+)?$", _I)
_EXCEPTED = re.compile(
    r"\b(?:otherwise|apart from|except|aside from|besides|other than|save for|recorded|graded|ungraded)\b", _I
)

GLAUCOMA_SIGNS = (
    r"glaucomat\w*|\bglaucoma\b|\benlarged (?:optic )?cup\w*|\b(?:large|deep|excavated|increased|big) cup(?:ping)?\b|"
    r"(?:neuro-?)?retinal rim (?:thinning|notch\w*|loss|narrowing)|\bthin(?:ning|ned)? (?:of )?(?:the )?(?:neuro-?)?"
    r"retinal rim|\brim (?:thinning|notch\w*|loss)|\b(?:rim|disc) notch\w*|\bnotching\b|pathological cupping|"
    r"bayonet\w*|\b(?:optic )?disc ha?emorrhage\w*|(?:drance|splinter) ha?emorrhage\w*|"
    r"nerve fib(?:re|er) layer (?:defect|loss|thinning|dropout)|wedge-shaped (?:\w+ ){0,4}?(?:defect|thinning)|"
    r"\b(?:increased|enlarged|large|high|raised|elevated) (?:vertical )?(?:cup[- ]to[- ]disc|c/d|cdr)"
)
NORMAL_DISC = (
    r"\b(?:optic )?disc (?:is|appears|looks) (?:\w+ ){0,2}?(?:normal|healthy|unremarkable)\b"
    r"(?! in (?:size|colou?r|position|shape))|\b(?:normal|healthy|unremarkable)[- ](?:appearing )?(?:optic )?"
    r"(?:disc|nerve head)\b(?! size)|\bhealthy (?:neuro-?)?retinal rim|(?:neuro-?)?retinal rim (?:is )?(?:healthy|"
    r"intact|preserved|normal|full)\b|\b(?:small|physiological|normal|shallow) cup\b|\bnormal cupping\b|"
    r"\b(?:normal|small|low) (?:vertical )?(?:cup[- ]to[- ]disc|c/d|cdr)"
)
CDR = re.compile(
    r"(?:cup[- ]?(?:to|:|/)[- ]?disc|\bc\s*[:/]\s*d\b|\bv?cdr\b)(?:\s+ratio)?\D{0,25}?(?<![\d.])(\d?\.\d+|[01])\b"
    r"(?:\s*(?:-|–|to)\s*(\d?\.\d+))?",
    _I,
)
DME_SIGNS = (
    r"macular o?edema|\bdme\b|\bcsme\b|\bcsmo\b|clinically significant macular|(?:diabetic )?maculopathy|"
    r"macular thickening|(?:retinal )?thickening (?:at|of|near|involving) the (?:macula|fovea|centre|center)|"
    r"(?:macula|fovea) (?:is |appears )?thickened|thickened macula|circinate|"
    r"(?:foveal|macular|perifoveal|central) exudat\w*|"
    r"exudat\w* (?:\w+ ){0,4}?(?:at|near|around|close to|within|involving|in|on|encroach\w* on|threaten\w*) "
    r"(?:the )?(?:macula|fovea|foveal|centre|center)"
)
_SPARED = re.compile(r"\b(?:sparing|away from|outside|distant from|far from|remote from|spares)\b", _I)
NORMAL_MACULA = (
    r"\b(?:macula|fovea|foveal region|macular region)(?: itself)? (?:is|appears|looks|remains) (?:\w+ ){0,2}?"
    r"(?:normal|healthy|unremarkable|dry|flat|clear)\b|\b(?:normal|healthy|unremarkable|dry|flat)[- ](?:appearing )?"
    r"(?:macula|fovea)\b|\bmacula (?:\w+ ){0,3}?(?:free of|without) (?:\w+ ){0,3}?(?:exudates|drusen|oedema|edema)"
)
AMD_SIGNS = (
    r"\bdrusen\b|(?:age-related )?macular degeneration|\bamd\b|\barmd\b|geographic atrophy|"
    r"choroidal neovasc\w*|\bcnv\b|disciform"
)
_RIGHT = re.compile(r"\bright(?:[- ]sided)?[- ](?:eye|fundus|retina|globe)\b|\boculus dexter\b", _I)
_LEFT = re.compile(r"\bleft(?:[- ]sided)?[- ](?:eye|fundus|retina|globe)\b|\boculus sinister\b", _I)
_OD = re.compile(  # case-sensitive; "the OD is pink" is the optic disc, not the eye
    r"(?<![\w/])(?:OD|RE)(?![\w/])(?!\s+(?:margin|rim|cup|is|appears|looks|shows|has|border|colou?r|size|edge|"
    r"pallor|head|disc))"
)
_OS = re.compile(r"(?<![\w/])(?:OS|LE)(?![\w/])")
_OTHER_EYE = re.compile(r"\b(?:fellow|contralateral|other|opposite) eye\b", _I)
_FELLOW = re.compile(r"\bfellow\b|\bcontralateral\b|\bother eye\b|\bboth eyes\b|\bbilateral", _I)


# ---- the check ------------------------------------------------------------------------------------------------
def check(caption: str, row: dict) -> list[str]:
    """Label-consistency issues of `caption` against the labels of schema row `row` (empty list = consistent).
    `row["caption_fields"]`, when present, is checked as well (issues prefixed `caption_fields.<name>:`)."""
    if not caption or not caption.strip():
        return ["empty caption"]
    issues = _issues(caption, row, whole=True)
    for name, text in sorted((row.get("caption_fields") or {}).items()):
        if text and str(text).strip():
            issues += [f"caption_fields.{name}: {i}" for i in _issues(str(text), row, whole=False) if i not in issues]
    return issues


class _Labels(Labels):
    """The labels plus what the guard derives from them: which ICDR grades they allow, and how to name that."""

    def __init__(self, row: dict):
        super().__init__(row)
        self.normal = "normal" in self.diseases and self.grade in (None, 0)
        self.amd = any("amd" in d or "macular degeneration" in d for d in self.diseases)
        if self.grade is not None:
            self.dr: set[int] | None = {self.grade}
            self.who = f"dr_grade {self.grade}"
        elif self.normal:
            self.dr, self.who = {0}, "labelled normal"
        elif "diabetic retinopathy" in self.diseases:
            self.dr, self.who = {1, 2, 3, 4}, "labelled diabetic retinopathy"
        else:
            self.dr, self.who = None, ""
        self.glaucoma_known = self.glaucoma if self.glaucoma is not None else (False if self.normal else None)
        self.dme_known = self.dme if self.dme is not None else (0 if self.normal else None)

    def explains(self, words: Iterable[str]) -> bool:
        names = " ".join(self.diseases)
        return any((w == "DME" and (self.dme or 0) >= 1) or (w != "DME" and w in names) for w in words)


def _issues(text: str, row: dict, *, whole: bool) -> list[str]:
    lab = _Labels(row)
    issues: list[str] = []
    if lab.dr is not None:
        issues += _dr_issues(text, lab, whole)
    issues += _normal_claims(text, lab, issues)
    if lab.eye:
        issues += _eye_issues(text, lab.eye)
    if lab.glaucoma_known is not None:
        issues += _glaucoma_issues(text, lab.glaucoma_known)
    if lab.dme_known is not None:
        issues += _dme_issues(text, lab.dme_known)
    issues += _amd_issues(text, lab)
    return list(dict.fromkeys(issues))


def _fmt(grades: set[int]) -> str:
    g = sorted(grades)
    return (
        str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" if g == list(range(g[0], g[-1] + 1)) else "/".join(map(str, g))
    )


def _dr_issues(text: str, lab: _Labels, whole: bool) -> list[str]:
    assert lab.dr is not None
    issues = []
    hi, lo = max(lab.dr), min(lab.dr)
    found = {name: mentions(text, rx) for name, rx, _, _ in DR_LESIONS}
    affirmed = {name for name, m in found.items() if m["aff"]}
    # 1. Lesions imply a lowest grade (the most severe one decides); the 4-2-1 pattern means severe NPDR.
    implied = {
        name: g
        for name, _, g, explained in DR_LESIONS
        if name in affirmed
        and not lab.explains(explained)
        and not (lab.dme and lab.dme >= 1 and name == "hard exudates")
    }
    for name, rx in _SEVERE.items():
        if name in implied and any(rx.search(clause) for clause, _ in found[name]["aff"]):
            implied.setdefault("the 4-2-1 pattern (severe NPDR)", 3)
    too_high = {n: g for n, g in implied.items() if g > hi}
    if too_high:
        top = max(too_high.values())
        names = ", ".join(n for n in too_high)
        issues.append(f"{lab.who} but the caption reports {names} (ICDR grade >= {top})")
    # 2. "Microaneurysms only" caps the grade at 1.
    if lo >= 2 and mentions(text, _MA_ONLY)["aff"]:
        issues.append(f"{lab.who} but the caption reports microaneurysms only (ICDR grade 1)")
    # 3. Stated grades, levels, stages and severity names.
    for allowed in _stated(text):
        if not allowed & lab.dr:
            if allowed == {1, 2, 3, 4}:
                issues.append(f"{lab.who} but the caption reports diabetic retinopathy")
            elif allowed == {0}:
                issues.append(f"{lab.who} but the caption says there is no diabetic retinopathy")
            else:
                issues.append(f"{lab.who} but the caption states grade {_fmt(allowed)}")
    # 4. Denials of every lesion that defines the grade (the prose as a whole only: a field describes one area).
    if whole and lo >= 1 and not affirmed:
        negated = {name for name, m in found.items() if m["neg"]}
        if "microaneurysms" in negated or (lo >= 2 and "haemorrhages" in negated):
            issues.append(f"{lab.who} but the caption denies every diabetic lesion")
    if whole and lo >= 4:
        pdr = {"new vessels", "vitreous / pre-retinal haemorrhage", "pan-retinal laser scars"}
        if not pdr & affirmed and found["new vessels"]["neg"] and not found["new vessels"]["hedge"]:
            issues.append(f"{lab.who} but the caption denies new vessels and names no other proliferative sign")
    return issues


def _stated(text: str) -> list[set[int]]:
    """The grade sets the caption states (affirmed: that set; negated: its complement; hedged: nothing)."""
    out: list[set[int]] = []
    every = {0, 1, 2, 3, 4}
    for clause in clauses(text):
        numeric = False
        if _DR_CONTEXT.search(clause):
            for m in _GRADE_STMT.finditer(clause):
                near = clause[max(0, m.start() - 25) : m.end() + 20]
                if _NOT_DR.search(near) and not re.search(r"retinopathy|\bdr\b|icdr", near, _I):
                    continue
                n = m.group("n") or m.group("n2") or m.group("r")
                grades = {_NUM[n.lower()] if n.lower() in _NUM else int(n)}
                numeric = True
                pol = polarity(clause, m.start(), m.end())
                if pol != "hedge":
                    out.append(grades if pol == "aff" else every - grades)
            for m in _ETDRS.finditer(clause):
                numeric = True
                if polarity(clause, m.start(), m.end()) == "aff":
                    out.append(_etdrs(int(m.group("e"))))
        for m in _DR_STATEMENT.finditer(clause):
            sev = (m.group("sev") or m.group("sev2") or "").strip().lower()
            np_ = (m.group("np") or m.group("np2") or "").lower().replace(" ", "").replace("-", "")
            abbr = (m.group("abbr") or "").lower()
            pre = clause[max(0, m.start() - 20) : m.start()].lower()
            post = clause[m.end() : m.end() + 25].lower()
            if (
                re.search(r"hypertensive|sickle|solar|radiation|serous|valsalva", pre)
                and "diabetic" not in m.group(0).lower()
            ):
                continue
            if re.match(r"\s*(?:of prematurity|screening|programme|program|clinic)", post) or pre.endswith("for "):
                continue
            if abbr == "pdr" or np_ == "proliferative":
                grades = {4}
            elif np_ == "preproliferative":
                grades = {3}
            elif abbr == "npdr" or np_ == "nonproliferative":
                grades = {"mild": {1}, "minimal": {1}, "moderate": {2}, "severe": {3}, "very severe": {3}}.get(
                    sev, {1, 2, 3}
                )
            else:
                grades = {
                    "mild": {1},
                    "minimal": {1},
                    "moderate": {2},
                    "severe": {3, 4},
                    "very severe": {3},
                    "advanced": {4},
                }.get(sev, {1, 2, 3, 4})
            pol = polarity(clause, m.start(), m.end())
            if pol == "hedge" or (pol == "aff" and numeric and not (sev or np_ or abbr)):
                continue  # "diabetic retinopathy, grade 0": the number decides
            if pol == "neg":
                if grades == {1, 2, 3, 4} or sev or np_ or abbr:
                    grades = every - grades if (sev or np_ or abbr) else {0}
                else:
                    continue
            out.append(grades)
    return out


def _normal_claims(text: str, lab: _Labels, earlier: list[str]) -> list[str]:
    """A whole-fundus 'normal' / 'no lesions' claim, reported once, against every label it contradicts."""
    whole = lesion_free = False
    for clause in clauses(text):
        if _EXCEPTED.search(clause) or _HEDGE_PRE.search(clause):
            continue
        if _OTHER_EYE.search(clause):
            continue
        said = [m for m in NORMAL_WHOLE.finditer(clause) if not _NOT_BEFORE.search(clause[: m.start()])]
        whole = whole or bool(said)
        lesion_free = lesion_free or bool(LESION_FREE.search(clause))
    if not (whole or lesion_free):
        return []
    if lab.dr is not None and 0 not in lab.dr:
        return [f"{lab.who} but the caption calls the fundus normal / lesion-free"]
    against = []
    if lab.dme_known:
        against.append(f"dme {lab.dme_known}")
    if lab.amd:
        against.append("amd")
    if whole:
        if lab.glaucoma_known:
            against.append("glaucoma")
        against += [d for d in lab.diseases if d not in ("diabetic retinopathy", "normal", "amd", "glaucoma")]
    return [f"labelled {', '.join(dict.fromkeys(against))} but the caption calls the fundus normal"] if against else []


def _eye_issues(text: str, eye: str) -> list[str]:
    said = set()
    for clause in clauses(text):
        if _FELLOW.search(clause):
            continue
        right = bool(_RIGHT.search(clause) or _OD.search(clause))
        left = bool(_LEFT.search(clause) or _OS.search(clause))
        if right != left:
            said.add("right" if right else "left")
    other = said - {eye}
    return [f"eye is {eye} but the caption says {other.pop()} eye"] if other else []


def _ratios(text: str) -> list[float]:
    out = []
    for clause in clauses(text):
        for m in CDR.finditer(clause):
            for v in m.groups():
                if v is not None and 0 < float(v) <= 1:
                    out.append(float(v))
    return out


def _glaucoma_issues(text: str, glaucoma: bool) -> list[str]:
    signs = mentions(text, GLAUCOMA_SIGNS)
    normal = mentions(text, NORMAL_DISC)
    ratios = _ratios(text)
    issues = []
    if glaucoma is False:
        if signs["aff"]:
            issues.append("glaucoma-negative but the caption reports glaucomatous signs")
        if ratios and max(ratios) >= CDR_HIGH:
            issues.append(f"glaucoma-negative but the caption gives cup-to-disc ratio {max(ratios)}")
    else:
        if not signs["aff"] and signs["neg"]:
            issues.append("glaucoma-positive but the caption denies glaucomatous signs")
        elif not signs["aff"] and normal["aff"]:
            issues.append("glaucoma-positive but the caption calls the optic disc normal")
        if ratios and max(ratios) <= CDR_LOW:
            issues.append(f"glaucoma-positive but the caption gives cup-to-disc ratio {max(ratios)}")
    return issues


def _dme_issues(text: str, dme: int) -> list[str]:
    signs = mentions(text, DME_SIGNS)
    aff = [(c, m) for c, m in signs["aff"] if not _SPARED.search(c)]
    if dme == 0:
        return ["dme 0 but the caption asserts macular oedema"] if aff else []
    if not aff and signs["neg"]:
        return [f"dme {dme} but the caption denies macular oedema"]
    if not aff and mentions(text, NORMAL_MACULA)["aff"]:
        return [f"dme {dme} but the caption calls the macula normal"]
    return []


def _amd_issues(text: str, lab: _Labels) -> list[str]:
    signs = mentions(text, AMD_SIGNS)
    if lab.normal and signs["aff"]:
        return ["labelled normal but the caption reports AMD signs (drusen / macular degeneration)"]
    if lab.amd and not signs["aff"]:
        if signs["neg"]:
            return ["labelled amd but the caption denies drusen / macular degeneration"]
        if mentions(text, NORMAL_MACULA)["aff"]:
            return ["labelled amd but the caption calls the macula normal"]
    return []
