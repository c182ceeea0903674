"""`retinalogos demo`: the whole RetinaLogos path, offline, on procedural data and embedded tiny models.

public-dataset layouts -> curate -> caption -> push-dataset --local-dir -> train (step 1 -> purify -> step 3, and a
LoRA variant) -> push-model --local-dir -> export -> DiffusionPipeline.from_pretrained -> sample grid -> generate from
label conditions with step 1 and step 3 -> evaluate (FID / PRDC against the real set, laterality) -> one report.
Each stage only reads the previous stage's directory, exactly as the CLI commands would.
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

    # 8. Evaluate: synthetic sets from step 1 and step 3 against the real images (FID, PRDC, laterality).
    evaluation = timed(
        "evaluate",
        lambda: evaluate_demo(workdir, {k: pipeline_dirs[k] for k in ("step1", "step3")}, cap.out, seed=seed),
        workdir / "eval",
        lambda r: ", ".join(f"FID {k} {v:.1f}" for k, v in r["fid"].items()),
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
        "evaluation_report": evaluation["report"],
        "evaluation": evaluation,
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


def evaluate_demo(workdir: Path, pipelines: dict[str, str], real: Path, *, seed: int = 0, n: int = 8) -> dict:
    """`n` label-conditioned images from each pipeline, scored against the real set: FID (the TF-FID Inception) and
    precision/recall, laterality from the optic disc; one report at WORKDIR/eval/report.html. Returns its figures."""
    from ..evaluate.fid import fid_report
    from ..evaluate.fidelity import fidelity
    from ..evaluate.images import open_images
    from ..evaluate.report import Report, Table, bar_plot, write_report
    from ..generate import generate

    out = workdir / "eval"
    sampling = ["sampling.height=64", "sampling.width=64", "sampling.num_inference_steps=8", f"sampling.batch_size={n}"]
    sets = {}
    for name, folder in pipelines.items():
        sets[name] = generate(
            folder, workdir / f"synthetic-{name}", n=n, overrides=[*sampling, f"sampling.seed={seed}"]
        )
    n_real = len(open_images(real, option="real"))
    kid = max(2, min(n, n_real // 2))
    fid = fid_report(
        [f"real={real}"],
        [f"{k}={v.out}" for k, v in sets.items()],
        out / "fid",
        overrides=[f"kid_subset_size={kid}", "min_condition_images=4", "nearest_k=3"],
        features=["inception"],
    )
    lat = {k: fidelity(v.out, out / f"fidelity-{k}") for k, v in sets.items()}
    m = fid.metrics["inception"]
    figures = {
        "fid": {k: m[k]["real"]["fd"] for k in sets},
        "fid_real_vs_real": m["real vs real (halves)"]["real"]["fd"],
        "precision": {k: m[k]["real"]["precision"] for k in sets},
        "recall": {k: m[k]["real"]["recall"] for k in sets},
        "laterality_accuracy": {k: r.laterality_accuracy for k, r in lat.items()},
        "laterality_clear_calls": {k: r.laterality_decided for k, r in lat.items()},
    }
    rows = [
        [
            k,
            figures["fid"][k],
            figures["precision"][k],
            figures["recall"][k],
            figures["laterality_accuracy"][k],
            figures["laterality_clear_calls"][k],
        ]
        for k in sets
    ] + [["real vs real (halves)", figures["fid_real_vs_real"], None, None, None, None]]
    table = Table(
        f"{n} label-conditioned images per model vs {n_real} real images",
        ["model", "FID (Inception)", "precision", "recall", "laterality accuracy", "laterality clear calls"],
        rows,
        "Tiny models after a CPU-minute of training: the figures show the pipeline working end to end, not image "
        "quality. Details: fid/report.html, fidelity-*/report.html.",
    )
    plot = bar_plot(
        "FID against the real set",
        list(sets) + ["real halves"],
        {"FID": [*figures["fid"].values(), figures["fid_real_vs_real"]]},
        "FID",
    )
    real_set = open_images(real, option="real")
    grids = [("real", [(str(i), real_set.image(i)) for i in range(min(n, n_real))])]
    for k, v in sets.items():
        images = open_images(v.out, option=k)
        labels = images.column("dr_grade"), images.column("eye")
        grids.append(
            (
                f"{k}: generated from label conditions",
                [(f"grade {labels[0][i]}, {labels[1][i]}", images.image(i)) for i in range(len(images))],
            )
        )
    summary = {f"FID {k}": v for k, v in figures["fid"].items()} | {"FID real vs real": figures["fid_real_vs_real"]}
    summary |= {f"laterality accuracy {k}": v for k, v in figures["laterality_accuracy"].items()}
    _, html = write_report(
        Report(
            "demo",
            "Demo evaluation: step 1 and step 3 against the real set",
            summary,
            [table],
            grids,
            [("FID", plot)],
            data=figures,
        ),
        out,
    )
    return {**figures, "report": str(html)}
