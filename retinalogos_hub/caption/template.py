"""Template captions: fluent English written from a row's labels, with no model (the demo default).

Every sentence is chosen from label-conditioned variants with a per-row RNG (seeded by `seed` and the row id), so
captions vary across rows yet are reproducible. Nothing is said that the labels do not support: unknown labels
(None) get neutral wording, and the result always passes `retinalogos_hub.caption.guard.check`.
"""

from __future__ import annotations

import random
from functools import lru_cache

from ..schema import CAPTION_FIELD_NAMES
from .labels import Labels

GRADE_NAMES = {
    0: "no diabetic retinopathy",
    1: "mild non-proliferative diabetic retinopathy",
    2: "moderate non-proliferative diabetic retinopathy",
    3: "severe non-proliferative diabetic retinopathy",
    4: "proliferative diabetic retinopathy",
}
DISEASE_NAMES = {
    "amd": "age-related macular degeneration",
    "rvo": "retinal vein occlusion",
    "dme": "diabetic macular oedema",
}
AREAS = ("optic_disc", "vessels", "nerve_fibre_layer", "macula", "lesions", "impression")  # the order of the prose


class TemplateCaptioner:
    """`TemplateCaptioner(seed=0).caption(row) -> (prose, caption_fields)` for a schema row (a dict of labels).

    `min_words` / `max_words` left out are those of the shipped `recipes/caption/template.yaml`, so captions written
    elsewhere (generate's prompts, test fixtures) are the length the caption stage writes; the YAML holds the numbers.
    """

    name = "template"

    def __init__(self, seed: int, min_words: int | None = None, max_words: int | None = None):
        if min_words is None or max_words is None:
            shipped = _shipped_words()
            min_words = shipped[0] if min_words is None else min_words
            max_words = shipped[1] if max_words is None else max_words
        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) must not exceed max_words ({max_words})")
        self.seed, self.min_words, self.max_words = seed, min_words, max_words

    @classmethod
    def from_config(cls, cfg, seed_offset: int = 0) -> TemplateCaptioner:
        """The captioner a `CaptionConfig` asks for (`seed_offset` varies the wording on retries)."""
        return cls(seed=cfg.seed + seed_offset, min_words=cfg.min_words, max_words=cfg.max_words)

    def caption(self, row: dict) -> tuple[str, dict[str, str]]:
        rng = random.Random(f"{self.seed}:{row.get('id')}")
        labels = Labels(row)
        core = {
            "optic_disc": _optic_disc(rng, labels),
            "vessels": _vessels(rng, labels),
            "nerve_fibre_layer": _nerve_fibre_layer(rng, labels),
            "macula": _macula(rng, labels),
            "lesions": _lesions(rng, labels),
            "impression": _impression(rng, labels),
        }
        extras = _extras(rng, labels)  # (field, sentence) pairs added only to reach min_words
        opening = _opening(rng, labels)
        fields = {k: [v] for k, v in core.items()}
        words = lambda: len(opening.split()) + sum(len(s.split()) for v in fields.values() for s in v)  # noqa: E731
        for field, sentence in extras:
            if words() >= self.min_words:
                break
            if words() + len(sentence.split()) <= self.max_words:
                fields[field].append(sentence)
        out = {k: " ".join(fields[k]) for k in CAPTION_FIELD_NAMES}
        prose = " ".join([opening] + [out[k] for k in AREAS])
        words_ = prose.split()
        if len(words_) > self.max_words:  # only with a tiny max_words: cut at a sentence end where possible
            cut = " ".join(words_[: self.max_words])
            prose = cut[: cut.rfind(".") + 1] or cut
        return prose, out


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _opening(rng, lab: Labels) -> str:
    eye = f"the {lab.eye} eye" if lab.eye else "one eye"
    who = ""
    aged = f"{int(lab.age)}-year-old" if lab.age is not None else f"{lab.age_band}-year-old" if lab.age_band else ""
    if aged and lab.sex:
        who = f" of a {aged} {lab.sex}"
    elif aged:
        who = f" of a {aged} patient"
    elif lab.sex:
        who = f" of a {lab.sex}"
    quality = {
        "good": _pick(rng, "of good quality", "with good focus and even illumination"),
        "usable": _pick(rng, "of usable quality with some uneven illumination", "of adequate, usable quality"),
        "reject": _pick(rng, "of poor quality, limiting assessment", "with poor focus that limits the assessment"),
    }.get(lab.quality or "", "")
    head = _pick(rng, "Colour fundus photograph", "Colour fundus image", "This colour fundus photograph shows")
    head = f"{head} of {eye}{who}" if not head.endswith("shows") else f"{head} {eye}{who}"
    return f"{head}, {quality}." if quality else f"{head}."


def _optic_disc(rng, lab: Labels) -> str:
    side = {
        "right": "to the right of the image centre, on the nasal side",
        "left": "to the left of the image centre, on the nasal side",
    }
    where = side.get(lab.eye, "nasal to the macula")
    if lab.glaucoma is True:
        cdr = _pick(rng, "0.7", "0.8")
        return _pick(
            rng,
            f"The optic disc lies {where}; it is pale with an enlarged cup, a cup-to-disc ratio of about {cdr} and "
            "thinning of the neuroretinal rim, consistent with glaucomatous cupping.",
            f"The optic disc, {where}, shows an enlarged cup (cup-to-disc ratio around {cdr}) with neuroretinal rim "
            "thinning, in keeping with glaucomatous optic neuropathy.",
        )
    if lab.glaucoma is False:
        cdr = _pick(rng, "0.3", "0.4")
        return _pick(
            rng,
            f"The optic disc lies {where}; it is round and pink with a sharp margin and a small physiological cup "
            f"(cup-to-disc ratio about {cdr}).",
            f"The optic disc, {where}, is pink with well-defined margins, a healthy neuroretinal rim and a "
            f"cup-to-disc ratio near {cdr}.",
        )
    return _pick(
        rng,
        f"The optic disc lies {where} with a distinct margin and an orange-pink rim.",
        f"The optic disc is seen {where}, round with a clear margin.",
    )


def _vessels(rng, lab: Labels) -> str:
    if lab.has("hypertens"):
        return _pick(
            rng,
            "The retinal arterioles are narrowed with arteriovenous nicking, while the venules follow their usual "
            "course.",
            "Arteriolar narrowing and arteriovenous crossing changes are visible along the arcades.",
        )
    if lab.grade == 4:
        return _pick(
            rng,
            "Fine new vessels arise from the retinal circulation, and the veins are dilated and irregular.",
            "The vascular arcades carry dilated, beaded veins, and abnormal new vessels are visible.",
        )
    if lab.grade == 3:
        return _pick(
            rng,
            "The major vessels radiate from the disc; the veins show beading and irregular calibre.",
            "The arcades are complete, with venous beading along the main veins.",
        )
    return _pick(
        rng,
        "The retinal vessels radiate evenly from the disc along the superior and inferior arcades with normal calibre "
        "and mild physiological tortuosity.",
        "Arteries and veins leave the disc in four arcades, evenly distributed, with a normal artery-to-vein calibre "
        "ratio.",
        "The vascular arcades are well distributed, the vessels of regular calibre and only gently tortuous.",
    )


def _nerve_fibre_layer(rng, lab: Labels) -> str:
    if lab.glaucoma is True:
        return _pick(
            rng,
            "The retinal nerve fibre layer shows wedge-shaped thinning along the arcuate bundles.",
            "Striations of the nerve fibre layer are reduced in the arcuate regions next to the disc.",
        )
    if lab.has("myop"):
        return "The background is tessellated, as seen in myopic eyes, and the nerve fibre layer striations are faint."
    return _pick(
        rng,
        "The nerve fibre layer striations are visible around the disc and along the arcades.",
        "The retinal nerve fibre layer reflex appears even around the disc.",
        "Peripapillary nerve fibre striations are preserved.",
    )


def _macula(rng, lab: Labels) -> str:
    parts = []
    if lab.dme is not None and lab.dme >= 1 and lab.grade == 0:  # labels disagree: say no more than the DME label
        parts.append("The macula appears thickened, consistent with macular oedema.")
    elif lab.dme is not None and lab.dme >= 1:
        parts.append(
            _pick(
                rng,
                "Hard exudates gather near the fovea, indicating diabetic macular oedema.",
                "The macula is thickened with exudates close to the centre, consistent with macular oedema.",
            )
        )
    elif lab.has("amd", "macular degeneration"):
        parts.append(
            _pick(
                rng,
                "Drusen and pigment changes are scattered over the macula.",
                "The macula carries soft drusen with mottled pigment.",
            )
        )
    elif lab.dme == 0:
        parts.append(
            _pick(
                rng,
                "The macula is flat with a bright foveal reflex and no macular oedema.",
                "The fovea is darker than the surrounding retina, with a preserved reflex and no sign of macular "
                "oedema.",
            )
        )
    else:
        parts.append(
            _pick(
                rng,
                "The macula lies temporal to the disc, with the fovea appearing as a darker central area.",
                "The fovea is centred in the darker macular region temporal to the disc.",
            )
        )
    return " ".join(parts)


def _lesions(rng, lab: Labels) -> str:
    g = lab.grade
    if g is None:
        if lab.has("occlusion"):
            return "Flame haemorrhages follow the course of the occluded vein."
        return _pick(rng, "Lesions are not graded for this image.", "The lesion grade is not recorded for this image.")
    if g == 0:
        base = _pick(
            rng,
            "No microaneurysms, haemorrhages, hard exudates or cotton-wool spots are seen.",
            "There are no microaneurysms, haemorrhages or exudates, and no new vessels.",
            "The retina is free of microaneurysms, haemorrhages and exudates.",
        )
        if lab.has("occlusion"):
            base = "Flame haemorrhages follow the course of the occluded vein, without diabetic microaneurysms."
        return base
    return {
        1: _pick(
            rng,
            "A few microaneurysms are scattered at the posterior pole, without haemorrhages or exudates.",
            "Isolated microaneurysms appear as tiny red dots near the arcades; no exudates are seen.",
        ),
        2: _pick(
            rng,
            "Microaneurysms and dot-blot haemorrhages are scattered across the posterior pole, with a few hard "
            "exudates.",
            "Several dot and blot haemorrhages, microaneurysms and some hard exudates are present.",
        ),
        3: _pick(
            rng,
            "Numerous intraretinal haemorrhages are present in all four quadrants, with cotton-wool spots and hard "
            "exudates.",
            "Extensive blot haemorrhages, microaneurysms and cotton-wool spots occupy every quadrant.",
        ),
        4: _pick(
            rng,
            "Neovascularisation, pre-retinal haemorrhage and scattered exudates are present.",
            "New vessels with fibrous tissue, haemorrhages and exudates are seen.",
        ),
    }[g]


def _impression(rng, lab: Labels) -> str:
    items = []
    if lab.grade is not None:
        items.append(f"{GRADE_NAMES[lab.grade]} (ICDR grade {lab.grade})")
    if lab.dme is not None and lab.dme >= 1:
        items.append("diabetic macular oedema" if lab.dme == 1 else "clinically significant macular oedema")
    if lab.glaucoma is True:
        items.append("glaucomatous optic disc")
    for d in lab.diseases:
        name = DISEASE_NAMES.get(d, d)
        if d not in ("diabetic retinopathy", "normal", "glaucoma") and name not in items:
            items.append(name)
    if not items:
        text = _pick(
            rng,
            "Impression: no graded abnormality is recorded for this image.",
            "Impression: ungraded fundus photograph.",
        )
    else:
        text = _pick(rng, "Impression: ", "Overall impression: ", "Summary: ") + "; ".join(items) + "."
    if lab.findings:
        text += f" Recorded findings: {lab.findings.rstrip('.')}."
    return text


def _extras(rng, lab: Labels) -> list[tuple[str, str]]:
    """Label-neutral or label-supported detail sentences, in random order, used to reach the minimum length."""
    out = [
        ("vessels", "The arteries are lighter and narrower than the accompanying veins, as expected."),
        ("vessels", "The vessel walls show a normal light reflex along their course."),
        ("macula", "The foveal avascular zone sits roughly two disc diameters temporal to the disc."),
        ("nerve_fibre_layer", "The peripapillary retina has an even, slightly glossy sheen."),
        ("optic_disc", "The disc margin is clearly separated from the surrounding retina."),
        (
            "impression",
            "The background colour is an even orange-red with a visible choroidal pattern in the periphery.",
        ),
        ("impression", "The field of view covers the posterior pole, centred between the disc and the macula."),
    ]
    if lab.quality in ("usable", "reject"):
        out.append(("impression", "Peripheral illumination falls off towards the edge of the field."))
    if lab.grade in (0, None) and lab.glaucoma is not True:
        out.append(("optic_disc", "The disc colour is uniform without pallor."))
    rng.shuffle(out)
    return out


@lru_cache(maxsize=1)
def _shipped_words() -> tuple[int, int]:
    from .config import shipped

    cfg = shipped("template")
    return cfg.min_words, cfg.max_words
