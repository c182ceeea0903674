"""Synthetic data: a text-to-fundus pipeline turns prompts, or label sets sampled from clinical conditions, into images.

`generate(model, out, ...)` writes one PNG (`out` ends in .png/.jpg) or a HF dataset directory in `schema.CAPTIONED` +
`schema.SYNTHETIC_COLUMNS` (source "synthetic", split "train"), which `push-dataset` publishes like any other stage.
Every image has its own seed (`sampling.seed + index`), so any row can be regenerated alone, whatever the batch size.
A dataset run is resumable: the plan and finished images live in `OUT/_work/` until the dataset is saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ConfigError, InputError
from .schema import CAPTION_FIELD_NAMES, CAPTIONED, SYNTHETIC_COLUMNS, make_id

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SOURCE = "synthetic"
DR_LESIONS = ("microaneurysms", "haemorrhages", "hard exudates", "cotton-wool spots", "neovascularisation")


@dataclass
class Sampling:
    height: int = 512
    width: int = 512
    num_inference_steps: int = 50  # the paper samples with 50 Euler steps at CFG 4.0
    guidance_scale: float = 4.0
    batch_size: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.height < 8 or self.width < 8 or self.batch_size < 1 or self.num_inference_steps < 1:
            raise ValueError("sampling: height/width >= 8, batch_size >= 1 and num_inference_steps >= 1 are required")


@dataclass
class Conditions:
    """Distributions over labels; each synthetic image gets one label set drawn from them."""

    dr_grade: dict = field(default_factory=lambda: {0: 1.0})  # ICDR grade -> weight
    eye: dict = field(default_factory=lambda: {"left": 0.5, "right": 0.5})  # side -> weight
    glaucoma: float = 0.0  # probability
    dme: float = 0.0  # probability, among images with dr_grade >= 1
    lesions: dict = field(default_factory=dict)  # lesion -> probability, among images with dr_grade >= 1
    sampling: Sampling = field(default_factory=Sampling)

    def __post_init__(self):
        # an override `dr_grade.3=0.5` arrives with a string key
        self.dr_grade = {int(g) if isinstance(g, str) and g.isdigit() else g: w for g, w in self.dr_grade.items()}
        if not self.dr_grade or any(g not in range(5) or not _weight(w) for g, w in self.dr_grade.items()):
            raise ValueError(f"dr_grade must map ICDR grades 0-4 to weights >= 0, got {self.dr_grade}")
        if not self.eye or any(e not in ("left", "right") or not _weight(w) for e, w in self.eye.items()):
            raise ValueError(f"eye must map 'left'/'right' to weights >= 0, got {self.eye}")
        for name, p in [("glaucoma", self.glaucoma), ("dme", self.dme), *(("lesions." + k, v) for k, v in self.lesions.items())]:
            if not (_weight(p) and p <= 1):
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        unknown = set(self.lesions) - set(DR_LESIONS)
        if unknown:
            raise ValueError(f"unknown lesion(s) {sorted(unknown)}; known: {', '.join(DR_LESIONS)}")


def _weight(w) -> bool:
    return isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0


@dataclass
class GenerateResult:
    out: Path
    rows: int
    seeds: list[int]
    resumed: int = 0  # images found finished from an interrupted run


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
            {"eye": eye, "dr_grade": grade, "dme": dme, "glaucoma": glaucoma, "diseases": diseases,
             "findings": ", ".join(lesions) or None}
        )
    return rows


def generate(
    model: str,
    out: Path,
    *,
    prompts: Sequence[str] = (),
    prompts_file: Path | None = None,
    conditions: Path | None = None,
    n: int | None = None,
    captions_from: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
) -> GenerateResult:
    """Generate one image (`out` = FILE.png) or a labelled synthetic dataset (`out` = DIR).

    Give `prompts` / `prompts_file` (free text, one per line; cycled to `n` images) or `conditions` (a YAML of
    `Conditions`; `n` label sets are drawn and captioned by the template captioner, or by real captions of matching
    rows from `captions_from`).
    `overrides` (`sampling.num_inference_steps=20`, ...) apply to the conditions file or the default `Conditions`.
    """
    from .config import load_config

    out = Path(out)
    prompts = [*prompts, *read_prompts(prompts_file)]
    if bool(prompts) == bool(conditions):
        raise InputError("give either --prompt/--prompts-file or --conditions (exactly one)")
    if conditions and not Path(conditions).is_file():
        raise InputError(f"--conditions {conditions}: file not found (example: recipes/generate/conditions.yaml)")
    cond = load_config(Conditions, conditions, overrides)
    single = out.suffix.lower() in IMAGE_SUFFIXES
    n = n or (1 if single else len(prompts))
    if n < 1 or (single and n != 1):
        raise InputError(f"--n {n}: an image file --out {out} takes exactly one image; pass a directory for a dataset")
    if single and conditions:
        raise InputError(f"--conditions writes a dataset: pass a directory as --out, not {out}")

    # 1. The plan: one row per image (labels, caption, prompt, seed), fixed before any pixel is made.
    # ids are fixed first (the template captioner seeds its wording per id); the tag keeps runs apart when merged
    tag = _digest([model, _plan_settings(cond), list(prompts), n, str(captions_from)])[:10]
    ids = [f"{tag}-{i:06d}" for i in range(n)]
    rows = _plan_prompts(prompts, ids) if prompts else _plan_conditions(cond, ids, captions_from)
    for i, row in enumerate(rows):
        row["seed"] = cond.sampling.seed + i
        row["model"] = model
    if single:
        image = _Generator(model, cond.sampling, device)([rows[0]])[0]
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out)  # a fresh PIL image: no EXIF or text chunks to strip
        return GenerateResult(out, 1, [rows[0]["seed"]])

    # 2. Resume: the plan is the contract; a changed plan in the same --out is refused rather than mixed.
    work = out / "_work"
    fingerprint = _digest([model, _plan_settings(cond), rows])[:16]
    plan_file = work / "plan.json"
    if plan_file.exists() and json.loads(plan_file.read_text())["fingerprint"] != fingerprint:
        raise InputError(f"{out}: holds an unfinished run with other settings; pass a new --out or delete {work}")
    (work / "images").mkdir(parents=True, exist_ok=True)
    plan_file.write_text(json.dumps({"fingerprint": fingerprint, "model": model, "sampling": asdict(cond.sampling)}))
    paths = [work / "images" / f"{i:06d}.png" for i in range(len(rows))]
    todo = [i for i, p in enumerate(paths) if not p.exists()]

    # 3. Batched generation; each finished image is renamed into place, so a kill loses at most one batch.
    if todo:
        gen = _Generator(model, cond.sampling, device)
        for start in range(0, len(todo), cond.sampling.batch_size):
            batch = todo[start : start + cond.sampling.batch_size]
            for i, image in zip(batch, gen([rows[i] for i in batch])):
                tmp = paths[i].with_suffix(".tmp")
                image.save(tmp, format="PNG")
                tmp.replace(paths[i])
            log.info("generated %d/%d", len(rows) - len(todo) + start + len(batch), len(rows))

    # 4. The dataset, in the captioned schema plus the synthetic columns.
    _save(rows, paths, out)
    shutil.rmtree(work)
    return GenerateResult(out, len(rows), [r["seed"] for r in rows], resumed=len(rows) - len(todo))


class _Generator:
    """A loaded diffusers pipeline called with per-image generators and the family's required kwargs."""

    def __init__(self, model: str, sampling: Sampling, device: str | None):
        import torch
        from diffusers import DiffusionPipeline

        from .models import resolve
        from .pipelines import call_kwargs

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
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


def _plan_prompts(prompts: Sequence[str], ids: list[str]) -> list[dict]:
    rows = []
    for i, source_id in enumerate(ids):
        prompt = prompts[i % len(prompts)]
        rows.append(
            {"id": make_id(SOURCE, source_id), "source_id": source_id, "eye": None, "dr_grade": None, "dme": None, "glaucoma": None, "diseases": [], "findings": None,
             "caption": prompt, "caption_fields": dict.fromkeys(CAPTION_FIELD_NAMES), "caption_model": "prompt",
             "caption_prompt_version": None, "caption_consistent": None, "caption_issues": [], "prompt": prompt}
        )
    return rows


def _plan_conditions(cond: Conditions, ids: list[str], captions_from: Path | None) -> list[dict]:
    from .caption.guard import check
    from .caption.template import TemplateCaptioner

    rows = sample_labels(cond, len(ids), cond.sampling.seed)
    captioner = TemplateCaptioner(seed=cond.sampling.seed)
    real = _RealCaptions(captions_from, cond.sampling.seed) if captions_from else None
    for row, source_id in zip(rows, ids):
        row["id"], row["source_id"] = make_id(SOURCE, source_id), source_id
        found = real.pick(row) if real else None
        if found:
            row["caption"], row["caption_fields"] = found
            row["caption_model"] = f"real:{captions_from.name}"
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


def _plan_settings(cond: Conditions) -> dict:
    """What decides the images: everything but the batch size (per-image seeds make batching irrelevant)."""
    settings = asdict(cond)
    del settings["sampling"]["batch_size"]
    return settings


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _save(rows: list[dict], paths: list[Path], out: Path) -> None:
    from datasets import Dataset, Features

    from .licenses import license_for

    lic = license_for(SOURCE)
    features = Features({**CAPTIONED, **SYNTHETIC_COLUMNS})

    def records():
        from PIL import Image

        for row, path in zip(rows, paths):
            with Image.open(path) as im:
                width, height = im.size
            yield {
                **row,
                "image": {"bytes": path.read_bytes(), "path": None},
                "source": SOURCE, "patient_id": None,
                "age": None, "sex": None, "quality": None, "quality_score": None, "width": width, "height": height,
                "split": "train", "license": lic.license, "redistributable": lic.redistributable, "synthetic": True,
            }

    ds = Dataset.from_generator(records, features=features, cache_dir=str(out / "_work" / "cache"))
    ds.save_to_disk(str(out))
