"""CLI command for training (registered on the shared app)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._app import app, result
from ._options import Overrides, Recipe


@app.command("train")
def train(
    recipe: Recipe,
    overrides: Overrides = None,
    resume: Annotated[
        Optional[str], typer.Option("--resume", help="'latest' or a RUN_DIR/checkpoints/checkpoint-NNNNNN dir.")
    ] = None,
) -> None:
    """Train a text-to-fundus model from a recipe: a step (recipes/<backbone>/step*.yaml) or the step 1 -> purify ->
    step 3 chain (recipes/<backbone>/pipeline.yaml).

    Examples: retinalogos train --recipe recipes/tiny/lumina-next/step1_pretrain_full.yaml train.max_steps=8
    """
    from ..chain import run

    out = run(recipe, overrides or [], resume)
    steps = {name: str(r.pipeline_dir or r.lora_dir) for name, r in out.steps.items()}
    result(
        "Training finished",
        output_dir=out.output_dir,
        global_step=out.global_step,
        final_loss=out.final_loss,
        pipeline=out.pipeline_dir,
        lora=out.lora_dir,
        **({"steps": steps} if steps else {}),
    )
