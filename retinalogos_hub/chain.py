"""The paper's three steps as one orchestration: step 1 (pretrain) -> step 2 (purify) -> step 3 (hi-res SFT from step
1's exported weights), declared by a pipeline recipe (`recipes/<backbone>/pipeline.yaml`).

It composes two stages that meet on disk, training and purification, so it lives outside `train/` (training never
imports curation or captioning: docs/architecture.md). Each step writes OUTPUT_DIR/step{1,2,3}; a finished step (its
run.json at max_steps, or purify's retinalogos.json) is skipped on a re-run, so a killed chain resumes where it
stopped. CLI overrides `stepN.key=value` go to step N's recipe. OUTPUT_DIR/retinalogos.json records the chain.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from . import stage
from .config import load_config
from .errors import ConfigError
from .train import load_recipe
from .train.config import PipelineConfig, TrainConfig

if TYPE_CHECKING:
    from .train import TrainResult

log = logging.getLogger("retinalogos.train")

STEPS = ("step1", "step2", "step3")


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`step3.train.max_steps=2` -> step3's `train.max_steps=2`; anything else is a pipeline key."""
    own, routed = [], {s: [] for s in STEPS}
    for item in overrides:
        head, dot, rest = item.partition(".")
        if dot and head in routed and "=" in rest:
            routed[head].append(rest)
        else:
            own.append(item)
    return own, routed


def _finished(cfg: TrainConfig) -> TrainResult | None:
    out = Path(cfg.output_dir)
    run = out / "run.json"
    if not run.is_file():
        return None
    info = json.loads(run.read_text())
    if info.get("global_step") != cfg.train.max_steps:
        return None
    from .train import TrainResult

    pipe, lora = out / "pipeline", out / "lora"
    return TrainResult(
        out,
        pipe if pipe.is_dir() else None,
        lora if lora.is_dir() else None,
        info["global_step"],
        info.get("final_loss"),
    )


def _train(cfg: TrainConfig, resume: str | None) -> TrainResult:
    done = _finished(cfg)
    if done is not None:
        log.info("%s already finished in %s; skipped", cfg.stage, cfg.output_dir)
        return done
    has_ckpt = any((Path(cfg.output_dir) / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    from .train import run_step

    return run_step(cfg, resume if (resume and (has_ckpt or resume != "latest")) else None)


def is_pipeline(recipe: Path) -> bool:
    try:
        data = yaml.safe_load(Path(recipe).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False  # load_config reports the problem with the file name
    return isinstance(data, dict) and "steps" in data


def run(recipe: Path, overrides: Sequence[str] = (), resume: str | None = None) -> TrainResult:
    """`retinalogos train`: a step recipe (one training run) or a pipeline recipe (step 1 -> purify -> step 3)."""
    recipe = Path(recipe)
    if not recipe.is_file():
        raise ConfigError(f"recipe not found: {recipe}")
    pipeline = is_pipeline(recipe)
    if resume is not None and resume.startswith("hf://") and not pipeline:
        from .train.remote import check_state

        check_state(resume, load_recipe(recipe, overrides))  # before torch loads: a bad revision or recipe fails fast
    try:
        if pipeline:
            result = run_pipeline(recipe, overrides, resume)
        else:
            from .train import run_step

            result = run_step(load_recipe(recipe, overrides), resume)
    except BaseException:
        _end_process_group(wait=False)  # a failed rank must not wait for the others (they may be mid-step)
        raise
    _end_process_group(wait=True)  # once, at the very end: every step and the purify barrier share it
    return result


def run_pipeline(recipe: Path, overrides: Sequence[str] = (), resume: str | None = None) -> TrainResult:
    if resume is not None and resume.startswith("hf://"):
        raise ConfigError(
            f"--resume {resume}: a state on the Hub resumes one step recipe, not the pipeline {recipe}; run that "
            "step's recipe with it (output_dir=OUTPUT_DIR/stepN), then this pipeline recipe with --resume latest"
        )
    own, routed = split_overrides(overrides)
    cfg = load_config(PipelineConfig, recipe, own)
    here, out = Path(recipe).parent, Path(cfg.output_dir)
    provenance = stage.start("chain", out, cfg, captioned=cfg.dataset)
    # 1. Step 1 on every caption-image pair
    s1 = load_config(
        TrainConfig,
        here / cfg.steps.step1,
        [f"data.dataset={cfg.dataset}", f"output_dir={out / 'step1'}", *cfg.step1, *routed["step1"]],
    )
    r1 = _train(s1, resume)
    if r1.pipeline_dir is None:
        raise ConfigError(
            f"{here / cfg.steps.step1}: step 1 exported no pipeline/ (a LoRA step 1 needs lora.fuse_export: true), so step 3 has nothing to start from"
        )
    # 2. Purify: score every pair, keep the consistent ones
    step2 = out / "step2"
    if not (step2 / stage.PROVENANCE).is_file() and _rank() == 0:  # written last, once the dataset is in place
        from .purify import purify

        purify(Path(cfg.dataset), here / cfg.steps.step2, step2, [*cfg.step2, *routed["step2"]])
    _barrier()  # under `accelerate launch`: purify runs once, every rank then reads its output
    # 3. Step 3 from step 1's exported (EMA) weights, on the rows step 2 kept
    s3 = load_config(
        TrainConfig,
        here / cfg.steps.step3,
        [
            f"model.base_model={r1.pipeline_dir}",
            f"data.dataset={step2}",
            "data.require_purify_keep=true",
            f"output_dir={out / 'step3'}",
            *cfg.step3,
            *routed["step3"],
        ],
    )
    r3 = _train(s3, resume)
    r3.steps = {"step1": r1, "step3": r3}
    kept = stage.read_provenance(step2)["counts"]
    if _rank() != 0:
        return r3
    provenance.finish(
        step1_steps=r1.global_step,
        step1_loss=r1.final_loss,
        step2_kept=kept["kept"],
        step2_dropped=kept["dropped"],
        step3_steps=r3.global_step,
        step3_loss=r3.final_loss,
    )
    return r3


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _end_process_group(wait: bool) -> None:
    if "torch" not in sys.modules:  # failed before training loaded torch: there is no process group
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
