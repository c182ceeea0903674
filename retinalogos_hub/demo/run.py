"""`retinalogos demo`: the whole RetinaLogos path, offline, on procedural data and embedded tiny models.

public-dataset layouts -> curate -> caption -> push-dataset --local-dir -> train (step 1 -> purify -> step 3, and a
LoRA variant) -> push-model --local-dir -> export -> DiffusionPipeline.from_pretrained -> sample grid. Each stage only reads the previous
stage's directory, exactly as the CLI commands would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import SHIPPED

RECIPES = "recipes/tiny/lumina-next"
PROMPTS = (
    "A colour fundus photograph of the right eye with no diabetic retinopathy.",
    "A colour fundus photograph of the left eye with moderate non-proliferative diabetic retinopathy.",
)


@dataclass
class Stage:
    name: str
    output: str
    count: str
    seconds: float


@dataclass
class DemoResult:
    workdir: Path
    stages: list[Stage] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def demo_sources(raw: Path, patients: int, seed: int) -> list[tuple[str, Path]]:
    """EyePACS (both eyes per patient, all five grades), APTOS 2019 and IDRiD on their real layouts. One EyePACS
    photo is also planted in IDRiD, as happens across public sets: curation must keep one copy, the IDRiD one,
    because IDRiD's licence (CC BY 4.0) lets the published dataset carry its pixels."""
    import shutil

    from .layouts import write_layout

    eyepacs = write_layout("eyepacs", raw / "eyepacs", n=2 * patients, seed=seed, size=160)
    aptos = write_layout("aptos", raw / "aptos", n=patients, seed=seed + 1, size=160)
    idrid = write_layout("idrid", raw / "idrid", n=4, seed=seed + 2, size=160)
    shared = sorted((eyepacs / "train").glob("*.jpeg"))[0]
    shutil.copyfile(shared, sorted(idrid.rglob("a. Training Set/*.jpg"))[0])
    return [("eyepacs", eyepacs), ("aptos", aptos), ("idrid", idrid)]


def quiet_progress_bars() -> None:
    """The demo prints one summary table; the libraries' per-call progress bars would bury it."""
    import datasets
    import diffusers
    import transformers

    datasets.disable_progress_bars()
    diffusers.utils.logging.set_verbosity_error()  # the tiny Gemma tokenizer truncates long captions at 256 tokens
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def run_demo(workdir: Path, *, patients: int = 6, seed: int = 0) -> DemoResult:
    # Imports are local: the demo composes every stage, the stages never import each other.
    from .. import caption, curate, hub, train
    from ..chain import run as run_chain
    from ..hub.model import push_model

    quiet_progress_bars()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    res = DemoResult(workdir)

    def timed(name, fn, output, count):
        t = time.perf_counter()
        out = fn()
        res.stages.append(
            Stage(name, str(Path(output).relative_to(workdir)), count(out), round(time.perf_counter() - t, 1))
        )
        return out

    # 1. Miniature public layouts (EyePACS, APTOS 2019, IDRiD), one image shared by two of them.
    raw = workdir / "raw"
    sources = timed("sources", lambda: demo_sources(raw, patients, seed), raw, lambda s: f"{len(s)} sources")
    # 2-4. Data stages.
    cur = timed(
        "curate",
        lambda: curate.curate(sources, workdir / "curated"),
        workdir / "curated",
        lambda r: f"{r.kept} kept / {r.excluded} excluded / {r.duplicates} dup",
    )
    cap = timed(
        "caption",
        lambda: caption.caption_dataset(cur.out, workdir / "captioned", caption.shipped("template", f"seed={seed}")),
        workdir / "captioned",
        lambda r: f"{r.rows} rows",
    )
    pub = timed(
        "push-dataset",
        lambda: hub.push_dataset(cap.out, "retinalogos/demo-fundus", local_dir=workdir / "hub-dataset"),
        workdir / "hub-dataset",
        lambda r: f"{r.rows} rows, {len(r.configs)} configs",
    )
    # 5. Three-step training: step 1 (low res, full) -> step 2 purify -> step 3 (high res from step 1's EMA weights).
    recipes = SHIPPED / "recipes" / "demo"
    runs = workdir / "runs"
    chain = timed(
        "train 1->2->3",
        lambda: run_chain(recipes / "pipeline.yaml", [f"dataset={cap.out}", f"output_dir={runs / 'pipeline'}"]),
        runs / "pipeline",
        lambda r: ", ".join(f"{k} {s.global_step} steps, loss {s.final_loss:.3f}" for k, s in r.steps.items()),
    )
    step1 = chain.steps["step1"]
    lora = timed(
        "train step 3 (LoRA)",
        lambda: train.run(
            recipes / "step3_hires_sft_lora.yaml",
            [
                f"data.dataset={runs / 'pipeline' / 'step2'}",
                f"output_dir={runs / 'step3-lora'}",
                f"model.base_model={step1.pipeline_dir}",
            ],
        ),
        runs / "step3-lora",
        lambda r: f"{r.global_step} steps, loss {r.final_loss:.3f}",
    )
    pipeline_dirs = {
        "step1": str(step1.pipeline_dir),
        "step3": str(chain.pipeline_dir),
        "step3_lora": str(lora.pipeline_dir),
    }
    # 6. Publish the step-3 model as a Hub model repo folder (card, gallery, no checkpoints).
    model = timed(
        "push-model",
        lambda: push_model(chain.output_dir, "retinalogos/demo-lumina-next", local_dir=workdir / "hub-model"),
        workdir / "hub-model",
        lambda r: f"{len(r.files)} files",
    )
    # 7. Reload every exported pipeline with plain diffusers and sample a grid.
    grid = workdir / "samples.png"
    timed(
        "generate",
        lambda: sample_grid(list(pipeline_dirs.values()), PROMPTS, grid, seed=seed),
        grid,
        lambda _: f"{len(pipeline_dirs) * len(PROMPTS)} images",
    )

    res.summary = {
        "workdir": str(workdir),
        "dataset_dir": str(cap.out),
        "curated_dir": str(cur.out),
        "hub_dataset_dir": str(pub.local_dir),
        "pipeline_dirs": pipeline_dirs,
        "hub_model_dir": str(model.local_dir),
        "run_dirs": {k: str(v.output_dir) for k, v in chain.steps.items()} | {"step3_lora": str(lora.output_dir)},
        "samples_png": str(grid),
        "stages": [s.__dict__ for s in res.stages],
    }
    (workdir / "summary.json").write_text(json.dumps(res.summary, indent=2))
    return res


def sample_grid(pipeline_dirs, prompts, out_png: Path, *, seed: int = 0, size: int = 64) -> Path:
    """One row per pipeline, one column per prompt, each reloaded with plain `DiffusionPipeline.from_pretrained`."""
    import torch
    from diffusers import DiffusionPipeline
    from diffusers.utils import make_image_grid

    from ..pipelines import call_kwargs

    images = []
    for folder in pipeline_dirs:
        pipe = DiffusionPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)
        for prompt in prompts:
            images += pipe(
                prompt,
                height=size,
                width=size,
                num_inference_steps=8,
                generator=torch.Generator().manual_seed(seed),
                **call_kwargs(pipe),
            ).images
    make_image_grid(images, rows=len(pipeline_dirs), cols=len(prompts)).save(out_png)
    return out_png
