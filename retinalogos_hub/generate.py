"""Synthetic data: a text-to-fundus pipeline turns prompts, or label sets sampled from clinical conditions, into images.

`generate(model, out, ...)` writes one PNG (`out` ends in .png/.jpg) or a HF dataset directory in `schema.CAPTIONED` +
`schema.SYNTHETIC_COLUMNS` (source "synthetic", split "train"), which `push-dataset` publishes like any other stage.
Every image has its own seed (`sampling.seed + index`), so any row can be regenerated alone, whatever the batch size.

The recipe (`GenerateConfig`, default `recipes/generate/conditions.yaml`) holds the sampling settings and the label
conditions; with `prompts` only its sampling settings are used. A dataset run follows the stage-output contract
(`stage.py`): finished images are committed to `OUT/.work/generate/`, which is bound to the plan and the settings (a
rerun with other settings is refused, naming them), and `OUT/retinalogos.json` records the resolved config.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import stage
from .config import load_config
from .errors import ConfigError, InputError
from .schema import CAPTION_FIELD_NAMES, CAPTIONED, SYNTHETIC_COLUMNS, make_id

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SOURCE = "synthetic"
# The ICDR severity scale, as the sampler applies it (FIELD-NOTES, "ICDR severity scale"): which lesions a grade may
# show, and which signs define it (a drawn label set without one of them is drawn again).
DR_LESIONS = (
    "microaneurysms",
    "haemorrhages",
    "hard exudates",
    "cotton-wool spots",
    "venous beading",
    "IRMA",
    "neovascularisation",
    "preretinal haemorrhage",
)
NPDR = DR_LESIONS[:4]  # moderate NPDR: more than microaneurysms only, none of the 4-2-1 signs
ALLOWED = {
    0: (),
    1: ("microaneurysms",),  # mild NPDR: microaneurysms only
    2: NPDR,
    3: (*NPDR, "venous beading", "IRMA"),  # severe NPDR: the 4-2-1 rule, no sign of PDR
    4: DR_LESIONS,
}
DEFINING = {  # at least one of these, per grade
    1: ("microaneurysms",),
    2: ("haemorrhages", "hard exudates", "cotton-wool spots"),
    3: ("haemorrhages", "venous beading", "IRMA"),  # haemorrhages in all 4 quadrants, beading in 2, IRMA in 1
    4: ("neovascularisation", "preretinal haemorrhage"),
}
DME_EXUDATES = "hard exudates"  # DME is judged from hard exudates near the fovea: a DME image shows them


@dataclass(frozen=True)
class Sampling:
    height: int  # px
    width: int
    num_inference_steps: int
    guidance_scale: float
    batch_size: int  # images per pipeline call (per-image seeds: the images do not depend on it)
    seed: int  # image i gets seed + i

    def __post_init__(self):
        if self.height < 8 or self.width < 8 or self.batch_size < 1 or self.num_inference_steps < 1:
            raise ValueError("sampling: height/width >= 8, batch_size >= 1 and num_inference_steps >= 1 are required")


@dataclass(frozen=True)
class Conditions:
    """Distributions over labels; each synthetic image gets one clinically coherent label set drawn from them.

    The grade is drawn first; DME and the lesions are drawn given the grade (`dme`, `lesions` are keyed by ICDR
    grade), within what the ICDR scale allows (`ALLOWED`), and a set that lacks every sign defining its grade
    (`DEFINING`) is drawn again. A DME image also shows hard exudates."""

    dr_grade: dict  # ICDR grade -> weight
    eye: dict  # side -> weight
    glaucoma: float  # probability
    dme: dict  # ICDR grade -> probability of diabetic macular oedema (0 without DR)
    lesions: dict  # ICDR grade -> {lesion -> probability}

    def __post_init__(self):
        for name in ("dr_grade", "eye", "dme", "lesions"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        # an override `conditions.dr_grade.3=0.5` arrives with a string key
        for name in ("dr_grade", "dme", "lesions"):
            object.__setattr__(self, name, {_grade_key(g): v for g, v in getattr(self, name).items()})
        grades, dme, lesions = self.dr_grade, self.dme, self.lesions
        if not grades or any(g not in range(5) or not _weight(w) for g, w in grades.items()):
            raise ValueError(f"dr_grade must map ICDR grades 0-4 to weights >= 0, got {grades}")
        if not self.eye or any(e not in ("left", "right") or not _weight(w) for e, w in self.eye.items()):
            raise ValueError(f"eye must map 'left'/'right' to weights >= 0, got {self.eye}")
        if not (_weight(self.glaucoma) and self.glaucoma <= 1):
            raise ValueError(f"glaucoma must be a probability in [0, 1], got {self.glaucoma!r}")
        for g in sorted({*dme, *lesions}, key=str):
            if g not in range(5):
                raise ValueError(f"dme and lesions are keyed by ICDR grade 0-4, got {g!r}")
        for g, p in dme.items():
            if not (_weight(p) and p <= 1):
                raise ValueError(f"dme.{g} must be a probability in [0, 1], got {p!r}")
            if g <= 1 and p > 0:  # no DR: no diabetic oedema; mild NPDR is microaneurysms only (no exudates)
                raise ValueError(f"dme.{g} must be 0: DME shows hard exudates, which ICDR grade {g} does not have")
        for g, table in lesions.items():
            if not isinstance(table, dict):
                raise ValueError(f"lesions.{g} must map lesions to probabilities, got {table!r}")
            unknown = set(table) - set(DR_LESIONS)
            if unknown:
                raise ValueError(f"unknown lesion(s) {sorted(unknown)} in lesions.{g}; known: {', '.join(DR_LESIONS)}")
            for lesion, p in table.items():
                if not (_weight(p) and p <= 1):
                    raise ValueError(f"lesions.{g}.{lesion} must be a probability in [0, 1], got {p!r}")
                if p > 0 and lesion not in ALLOWED[g]:
                    allowed = ", ".join(ALLOWED[g]) or "none"
                    raise ValueError(f"lesions.{g}.{lesion}: ICDR grade {g} does not show it (allowed: {allowed})")
        for g, w in grades.items():
            if g == 0 or w <= 0:
                continue
            table = lesions.get(g, {})
            if not any(table.get(k, 0) > 0 for k in DEFINING[g]) and not (g == 2 and dme.get(g, 0) > 0):
                raise ValueError(
                    f"lesions.{g}: ICDR grade {g} needs one of {', '.join(DEFINING[g])} with a probability > 0"
                )


def _grade_key(g):
    return int(g) if isinstance(g, str) and g.isdigit() else g


@dataclass(frozen=True)
class GenerateConfig:
    """`retinalogos generate`'s recipe: how to sample, and (without prompts) which labels to draw."""

    DEFAULT_RECIPE: ClassVar[str] = "generate/conditions.yaml"

    conditions: Conditions
    sampling: Sampling


def _weight(w) -> bool:
    return isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0


@dataclass
class GenerateResult:
    out: Path
    rows: int
    seeds: list[int]
    resumed: int = 0  # images found finished from an interrupted run
    provenance: Path | None = None  # OUT/retinalogos.json (datasets only)


def read_prompts(path: Path | None) -> list[str]:
    """Prompts from a text file, one per non-empty line ([] for no file)."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--prompts-file {path}: file not found")
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise InputError(f"--prompts-file {path}: no prompts (one per line)")
    return prompts


def sample_labels(cond: Conditions, n: int, seed: int) -> list[dict]:
    """n clinically coherent label sets (schema columns) drawn from `cond`; row i depends only on (`seed`, i)."""
    grades, gw = zip(*sorted(cond.dr_grade.items()))
    eyes, ew = zip(*sorted(cond.eye.items()))
    if sum(gw) <= 0 or sum(ew) <= 0:
        raise ConfigError("conditions: dr_grade and eye weights must not all be zero")
    pg, pe = np.array(gw) / sum(gw), np.array(ew) / sum(ew)
    rows = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        grade = int(rng.choice(grades, p=pg))
        eye = str(rng.choice(eyes, p=pe))
        glaucoma = bool(rng.random() < cond.glaucoma)
        dme, lesions = _draw_dr(cond, grade, rng)
        diseases = (["diabetic retinopathy"] if grade >= 1 else []) + (["glaucoma"] if glaucoma else [])
        if dme:
            diseases.append("diabetic macular edema")
        rows.append(
            {
                "eye": eye,
                "dr_grade": grade,
                "dme": dme,
                "glaucoma": glaucoma,
                "diseases": diseases,
                "findings": ", ".join(lesions) or None,
            }
        )
    return rows


def _draw_dr(cond: Conditions, grade: int, rng: np.random.Generator) -> tuple[int, list[str]]:
    """(dme, lesions in `DR_LESIONS` order) for one image of ICDR `grade`: drawn given the grade, again until a sign
    that defines the grade is present (the recipe check guarantees one can be drawn)."""
    if grade == 0:
        return 0, []
    table = cond.lesions.get(grade, {})
    for _ in range(10_000):
        dme = int(rng.random() < cond.dme.get(grade, 0.0))
        hit = {k for k in DR_LESIONS if k in table and rng.random() < table[k]}
        if dme:
            hit.add(DME_EXUDATES)
        if hit & set(DEFINING[grade]):
            return dme, [k for k in DR_LESIONS if k in hit]
    raise ConfigError(f"conditions.lesions.{grade}: the grade's defining signs are too unlikely to draw")


def generate(
    model: str,
    out: Path,
    *,
    prompts: Sequence[str] = (),
    prompts_file: Path | None = None,
    recipe: Path | None = None,
    n: int | None = None,
    captions_from: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
) -> GenerateResult:
    """Generate one image (`out` = FILE.png) or a labelled synthetic dataset (`out` = DIR).

    Give `prompts` / `prompts_file` (free text, one per line; cycled to `n` images), or neither: then `n` label sets
    are drawn from the recipe's `conditions` and captioned by the template captioner, or by real captions of matching
    rows from `captions_from`. `recipe` (default: the shipped `recipes/generate/conditions.yaml`) and `overrides`
    (`sampling.num_inference_steps=20`, ...) give the sampling settings. `device`: default cuda when available.
    """
    out = Path(out)
    inline, prompts = list(prompts), [*prompts, *read_prompts(prompts_file)]
    cfg = load_config(GenerateConfig, recipe, overrides)
    single = out.suffix.lower() in IMAGE_SUFFIXES
    if not prompts and single:
        raise InputError(f"--out {out}: label conditions write a dataset; pass a directory (or --prompt for one image)")
    if not prompts and n is None:
        raise InputError("--n: give the number of images to draw from the recipe's conditions (or give --prompt)")
    if prompts and captions_from:
        raise InputError("--captions-from captions images drawn from label conditions; drop it or drop --prompt")
    n = n or (1 if single else len(prompts))
    if n < 1 or (single and n != 1):
        raise InputError(f"--n {n}: an image file --out {out} takes exactly one image; pass a directory for a dataset")

    # 1. The plan: one row per image (labels, caption, prompt, seed), fixed before any pixel is made.
    # ids are fixed first (the template captioner seeds its wording per id); the tag keeps runs apart when merged
    settings = _plan_settings(model, cfg, prompts, n, captions_from)
    ids = [f"{stage.fingerprint(settings)[:10]}-{i:06d}" for i in range(n)]
    rows = _plan_prompts(prompts, ids) if prompts else _plan_conditions(cfg, ids, captions_from)
    for i, row in enumerate(rows):
        row["seed"] = cfg.sampling.seed + i
        row["model"] = model
    if single:
        image = _Generator(model, cfg.sampling, device)([rows[0]])[0]
        # a fresh PIL image: no EXIF or text chunks to strip
        stage.atomic_write(out, _encode(image, "PNG" if out.suffix.lower() == ".png" else "JPEG"))
        return GenerateResult(out, 1, [rows[0]["seed"]])

    # 2. Resume: the work folder is bound to the plan; a changed plan in the same --out is refused rather than mixed.
    record = {
        "n": n,
        "prompts": inline or None,
        "sampling": asdict(cfg.sampling),
        "conditions": None if prompts else asdict(cfg.conditions),
    }
    run = stage.start("generate", out, record, model=model, prompts_file=prompts_file, captions_from=captions_from)
    work = stage.WorkDir(out, "generate")
    with work.lock("generate"):
        work.bind(
            {**settings, "plan": stage.fingerprint(rows)},
            hint=f"rerun with the same settings to resume, or pass a new --out (or delete {work.dir})",
        )
        done = {p.name for p in work.committed("*.png")}
        todo = [i for i in range(len(rows)) if _image_name(i) not in done]

        # 3. Batched generation; each image is committed atomically, so a kill loses at most one batch.
        if todo:
            gen = _Generator(model, cfg.sampling, device)
            for start in range(0, len(todo), cfg.sampling.batch_size):
                batch = todo[start : start + cfg.sampling.batch_size]
                for i, image in zip(batch, gen([rows[i] for i in batch])):
                    work.commit(_image_name(i), _encode(image, "PNG"))
                log.info("generated %d/%d", len(rows) - len(todo) + start + len(batch), len(rows))

        # 4. The dataset, in the captioned schema plus the synthetic columns; then the provenance.
        _save(rows, work, out)
        work.remove()
    resumed = len(rows) - len(todo)
    provenance = run.finish(images=len(rows), resumed=resumed)
    return GenerateResult(out, len(rows), [r["seed"] for r in rows], resumed=resumed, provenance=provenance)


class _Generator:
    """A loaded diffusers pipeline called with per-image generators and the family's required kwargs."""

    def __init__(self, model: str, sampling: Sampling, device: str | None):
        import torch
        from diffusers import DiffusionPipeline

        from .models import resolve, resolve_device
        from .pipelines import call_kwargs

        self.device = resolve_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.pipe = DiffusionPipeline.from_pretrained(resolve(model, option="--model"), dtype=dtype).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.sampling = sampling
        self.kwargs = call_kwargs(self.pipe)

    def __call__(self, rows: list[dict]):
        import torch

        s = self.sampling
        generators = [torch.Generator(self.device).manual_seed(r["seed"]) for r in rows]
        return self.pipe(
            prompt=[r["prompt"] for r in rows],
            height=s.height,
            width=s.width,
            num_inference_steps=s.num_inference_steps,
            guidance_scale=s.guidance_scale,
            generator=generators,
            output_type="pil",
            **self.kwargs,
        ).images


def _plan_settings(model: str, cfg: GenerateConfig, prompts: Sequence[str], n: int, captions_from: Path | None) -> dict:
    """What decides the images, flat so a changed one is named: everything but the batch size (per-image seeds make
    batching irrelevant), and the conditions only when they are used."""
    settings: dict[str, Any] = {"model": model, "n": n}
    settings.update({f"sampling.{k}": v for k, v in asdict(cfg.sampling).items() if k != "batch_size"})
    if prompts:
        settings["prompts"] = stage.fingerprint(list(prompts))
    else:
        settings.update({f"conditions.{k}": v for k, v in asdict(cfg.conditions).items()})
        settings["captions_from"] = stage.folder_fingerprint(captions_from) if captions_from else None
    return settings


def _plan_prompts(prompts: Sequence[str], ids: list[str]) -> list[dict]:
    rows: list[dict] = []
    for i, source_id in enumerate(ids):
        prompt = prompts[i % len(prompts)]
        rows.append(
            {
                "id": make_id(SOURCE, source_id),
                "source_id": source_id,
                "eye": None,
                "dr_grade": None,
                "dme": None,
                "glaucoma": None,
                "diseases": [],
                "findings": None,
                "caption": prompt,
                "caption_fields": dict.fromkeys(CAPTION_FIELD_NAMES),
                "caption_model": "prompt",
                "caption_prompt_version": None,
                "caption_consistent": None,
                "caption_issues": [],
                "prompt": prompt,
            }
        )
    return rows


def _plan_conditions(cfg: GenerateConfig, ids: list[str], captions_from: Path | None) -> list[dict]:
    """Label sets drawn from the conditions, each with a prompt that says what its labels say (and passes the guard):
    a real caption of a matching row (`captions_from`), or a template caption whose lesion and vessel sentences are
    written from the drawn lesions."""
    from .caption.guard import check

    seed = cfg.sampling.seed
    rows = sample_labels(cfg.conditions, len(ids), seed)
    real = _RealCaptions(captions_from, seed) if captions_from else None
    flagged = 0
    for row, source_id in zip(rows, ids):
        row["id"], row["source_id"] = make_id(SOURCE, source_id), source_id
        found = real.pick(row, check) if real else None
        if found:
            row["caption"], row["caption_fields"] = found
            row["caption_model"] = f"real:{real.name}"
        else:
            row["caption"], row["caption_fields"] = _template_prompt(row, seed, check)
            row["caption_model"] = "template"
        row["caption_fields"] = {k: (row["caption_fields"] or {}).get(k) for k in CAPTION_FIELD_NAMES}
        row["caption_prompt_version"] = None
        row["caption_issues"] = check(row["caption"], row)
        row["caption_consistent"] = not row["caption_issues"]
        flagged += bool(row["caption_issues"])
        row["prompt"] = row["caption"]
    if flagged:
        first = next(r for r in rows if r["caption_issues"])
        log.warning("%d prompt(s) fail the label guard, e.g. %s: %s", flagged, first["id"], first["caption_issues"][0])
    return rows


def _template_prompt(row: dict, seed: int, check, attempts: int = 4) -> tuple[str, dict]:
    """The template caption of `row`, its lesion (and, from grade 3, vessel) sentence written from the drawn lesions;
    other wordings are tried when the guard objects to one."""
    from .caption.template import TemplateCaptioner

    lesions = [k for k in (row["findings"] or "").split(", ") if k]
    labels = {**row, "findings": None, "diseases": [d for d in row["diseases"] if d != "diabetic macular edema"]}
    for attempt in range(attempts):
        prose, fields = TemplateCaptioner(seed=seed + attempt).caption(labels)
        rng = np.random.default_rng([seed + attempt, int(row["source_id"].rsplit("-", 1)[-1])])
        edits = {"lesions": _lesion_sentence(row["dr_grade"], lesions, rng)}
        if row["dr_grade"] is not None and row["dr_grade"] >= 3:
            edits["vessels"] = _vessel_sentence(lesions)
        for name, text in edits.items():
            if fields.get(name) and fields[name] in prose:
                prose = prose.replace(fields[name], text)
                fields = {**fields, name: text}
        if not check(prose, row):
            break
    return prose, fields


LESION_PHRASES = {  # lesion -> (wording at the grade where it is rarest, wording from grade 3 on)
    "microaneurysms": ("scattered microaneurysms", "microaneurysms"),
    "haemorrhages": ("dot and blot haemorrhages", "intraretinal haemorrhages in all four quadrants"),
    "hard exudates": ("hard exudates", "hard exudates"),
    "cotton-wool spots": ("a few cotton-wool spots", "cotton-wool spots"),
    "venous beading": ("venous beading", "venous beading in two or more quadrants"),
    "IRMA": ("intraretinal microvascular abnormalities", "intraretinal microvascular abnormalities"),
    "neovascularisation": ("neovascularisation", "neovascularisation of the disc and elsewhere"),
    "preretinal haemorrhage": ("a preretinal haemorrhage", "a preretinal haemorrhage"),
}


def _lesion_sentence(grade: int | None, lesions: list[str], rng: np.random.Generator) -> str:
    """One sentence naming exactly the drawn lesions (grade 0: none of them)."""
    if not grade:
        return "No microaneurysms, haemorrhages, hard exudates or cotton-wool spots are seen."
    if grade == 1:
        return (
            "A few microaneurysms appear as tiny red dots at the posterior pole; no haemorrhages or exudates are seen."
        )
    # from severe NPDR on, haemorrhages lie in all four quadrants (the 4-2-1 rule)
    names = [LESION_PHRASES[k][int(grade >= 3)] for k in lesions]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 and not names[0].endswith("s") else "are"
    text = f"{listed[0].upper()}{listed[1:]} {verb} {['present', 'seen', 'visible'][int(rng.integers(3))]}"
    if grade < 4:
        text += "; no new vessels are seen"
    return text + "."


def _vessel_sentence(lesions: list[str]) -> str:
    if "venous beading" in lesions:
        return "The major veins are dilated, with beading and irregular calibre along the arcades."
    return "The major vessels radiate from the disc along the superior and inferior arcades."


class _RealCaptions:
    """Captions of real rows whose labels match a drawn label set, an unknown (None) real label matching any value:
    the most specific matches (most labels known) are tried first, at random within them, and a caption the guard
    objects to for the drawn labels is passed over."""

    KEY = ("dr_grade", "eye", "glaucoma", "dme")
    TRIES = 8  # candidates checked per image before falling back to the template

    def __init__(self, path: Path, seed: int):
        import itertools

        from datasets import load_from_disk

        from .schema import require_columns

        if not Path(path).exists():
            raise InputError(f"--captions-from {path}: not found; pass a captioned dataset directory")
        self.name = Path(path).name
        ds = load_from_disk(str(path))
        require_columns(ds.column_names, ("caption",), f"--captions-from {path}")
        keep = [c for c in ("caption", "caption_fields", *self.KEY) if c in ds.column_names]
        ds = ds.remove_columns([c for c in ds.column_names if c not in keep])
        self.groups: dict[tuple, list[tuple[str, dict]]] = {}
        for r in ds:
            if r["caption"]:
                key = tuple(r.get(k) for k in self.KEY)
                self.groups.setdefault(key, []).append((r["caption"], r.get("caption_fields") or {}))
        # which labels a real row may leave unknown, fewest first
        masks = itertools.product((False, True), repeat=len(self.KEY))
        self.masks = sorted(masks, key=sum)
        self.rng = np.random.default_rng(seed)

    def pick(self, row: dict, check) -> tuple[str, dict] | None:
        tried = 0
        for level in range(len(self.KEY) + 1):
            pool = []
            for mask in (m for m in self.masks if sum(m) == level):
                key = tuple(None if wild else row[k] for k, wild in zip(self.KEY, mask))
                pool += self.groups.get(key, [])
            for j in self.rng.permutation(len(pool)):
                if tried >= self.TRIES:
                    return None
                tried += 1
                caption, fields = pool[int(j)]
                if not check(caption, row):
                    return caption, fields
        return None


def _image_name(i: int) -> str:
    return f"{i:06d}.png"


def _encode(image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _save(rows: list[dict], work: stage.WorkDir, out: Path) -> None:
    from datasets import Dataset, Features

    from .licenses import license_for

    lic = license_for(SOURCE)
    features = Features({**CAPTIONED, **SYNTHETIC_COLUMNS})

    def records():
        from PIL import Image

        for i, row in enumerate(rows):
            path = work.path(_image_name(i))
            with Image.open(path) as im:
                width, height = im.size
            yield {
                **row,
                "image": {"bytes": path.read_bytes(), "path": None},
                "source": SOURCE,
                "patient_id": None,
                "age": None,
                "age_band": None,
                "sex": None,
                "quality": None,
                "quality_score": None,
                "width": width,
                "height": height,
                "split": "train",
                "license": lic.license,
                "redistributable": lic.redistributable,
                "synthetic": True,
            }

    ds = Dataset.from_generator(records, features=features, cache_dir=str(work.path("cache")))
    stage.save_dataset(ds, out)
