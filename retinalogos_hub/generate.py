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
DR_LESIONS = ("microaneurysms", "haemorrhages", "hard exudates", "cotton-wool spots", "neovascularisation")


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
    """Distributions over labels; each synthetic image gets one label set drawn from them."""

    dr_grade: dict  # ICDR grade -> weight
    eye: dict  # side -> weight
    glaucoma: float  # probability
    dme: float  # probability, among images with dr_grade >= 1
    lesions: dict  # lesion -> probability, among images with dr_grade >= 1

    def __post_init__(self):
        for name in ("dr_grade", "eye", "lesions"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        # an override `conditions.dr_grade.3=0.5` arrives with a string key
        grades = {int(g) if isinstance(g, str) and g.isdigit() else g: w for g, w in self.dr_grade.items()}
        object.__setattr__(self, "dr_grade", grades)
        if not grades or any(g not in range(5) or not _weight(w) for g, w in grades.items()):
            raise ValueError(f"dr_grade must map ICDR grades 0-4 to weights >= 0, got {grades}")
        if not self.eye or any(e not in ("left", "right") or not _weight(w) for e, w in self.eye.items()):
            raise ValueError(f"eye must map 'left'/'right' to weights >= 0, got {self.eye}")
        lesions = [("lesions." + k, v) for k, v in self.lesions.items()]
        for name, p in [("glaucoma", self.glaucoma), ("dme", self.dme), *lesions]:
            if not (_weight(p) and p <= 1):
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        unknown = set(self.lesions) - set(DR_LESIONS)
        if unknown:
            raise ValueError(f"unknown lesion(s) {sorted(unknown)}; known: {', '.join(DR_LESIONS)}")


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
    """n label sets (schema columns) drawn from `cond`; deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    grades, gw = zip(*sorted(cond.dr_grade.items()))
    eyes, ew = zip(*sorted(cond.eye.items()))
    if sum(gw) <= 0 or sum(ew) <= 0:
        raise ConfigError("conditions: dr_grade and eye weights must not all be zero")
    rows = []
    for _ in range(n):
        grade = int(rng.choice(grades, p=np.array(gw) / sum(gw)))
        eye = str(rng.choice(eyes, p=np.array(ew) / sum(ew)))
        glaucoma = bool(rng.random() < cond.glaucoma)
        draws = {k: rng.random() < p for k, p in sorted(cond.lesions.items())}  # drawn always: stable stream
        dme_draw = rng.random() < cond.dme
        lesions = [k for k, hit in draws.items() if hit and grade >= 1]
        diseases = (["diabetic retinopathy"] if grade >= 1 else []) + (["glaucoma"] if glaucoma else [])
        dme = int(dme_draw and grade >= 1)
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
    from .caption.guard import check
    from .caption.template import TemplateCaptioner

    seed = cfg.sampling.seed
    rows = sample_labels(cfg.conditions, len(ids), seed)
    captioner = TemplateCaptioner(seed=seed)
    real = _RealCaptions(captions_from, seed) if captions_from else None
    for row, source_id in zip(rows, ids):
        row["id"], row["source_id"] = make_id(SOURCE, source_id), source_id
        found = real.pick(row) if real else None
        if real and found:
            row["caption"], row["caption_fields"] = found
            row["caption_model"] = f"real:{real.name}"
        else:
            row["caption"], row["caption_fields"] = captioner.caption(row)
            row["caption_model"] = "template"
        row["caption_fields"] = {k: row["caption_fields"].get(k) for k in CAPTION_FIELD_NAMES}
        row["caption_prompt_version"] = None
        row["caption_issues"] = check(row["caption"], row)
        row["caption_consistent"] = not row["caption_issues"]
        row["prompt"] = row["caption"]
    return rows


class _RealCaptions:
    """Captions of real rows with the same (dr_grade, eye, glaucoma), drawn at random per request."""

    KEY = ("dr_grade", "eye", "glaucoma")

    def __init__(self, path: Path, seed: int):
        from datasets import load_from_disk

        from .schema import require_columns

        if not Path(path).exists():
            raise InputError(f"--captions-from {path}: not found; pass a captioned dataset directory")
        self.name = Path(path).name
        ds = load_from_disk(str(path))
        require_columns(ds.column_names, ("caption", "caption_fields", *self.KEY), f"--captions-from {path}")
        ds = ds.remove_columns([c for c in ds.column_names if c not in ("caption", "caption_fields", *self.KEY)])
        self.groups: dict[tuple, list[tuple[str, dict]]] = {}
        for r in ds:
            if r["caption"]:
                key = tuple(r[k] for k in self.KEY)
                self.groups.setdefault(key, []).append((r["caption"], r["caption_fields"] or {}))
        self.rng = np.random.default_rng(seed)

    def pick(self, row: dict) -> tuple[str, dict] | None:
        group = self.groups.get(tuple(row[k] for k in self.KEY))
        return group[int(self.rng.integers(len(group)))] if group else None


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
