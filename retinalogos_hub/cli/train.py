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
        Optional[str],
        typer.Option(
            "--resume",
            help="'latest', a RUN_DIR/checkpoints/checkpoint-NNNNNN dir, or hf://ORG/NAME-state[@REVISION] "
            "(a state pushed with push-state, downloaded once per machine).",
        ),
    ] = None,
) -> None:
    """Train a text-to-fundus model from a recipe: a step (recipes/<backbone>/step*.yaml) or the step 1 -> purify ->
    step 3 chain (recipes/<backbone>/pipeline.yaml).

    Examples: retinalogos train --recipe recipes/tiny/lumina-next/step1_pretrain_full.yaml train.max_steps=8
    retinalogos train --recipe recipes/tiny/lumina-next/step1_pretrain_full.yaml --resume hf://my-lab/run-state@step-000004
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
