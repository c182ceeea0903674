"""CLI command for synthetic data: `generate` (registered on the shared app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import app, result
from ._options import Device, Model, OptionalRecipe, Overrides

Out = Annotated[Path, typer.Option("--out", "-o", help="FILE.png for one image, or a directory for a dataset.")]
Prompt = Annotated[
    Optional[list[str]], typer.Option("--prompt", "-p", help="Free-text prompt; repeatable.", show_default=False)
]
PromptsFile = Annotated[
    Optional[Path], typer.Option("--prompts-file", help="Text file, one prompt per line.", show_default=False)
]
Count = Annotated[
    Optional[int],
    typer.Option(
        "--n", help="Number of images (default: one per prompt; required without prompts).", show_default=False
    ),
]
CaptionsFrom = Annotated[
    Optional[Path],
    typer.Option(
        "--captions-from", help="Captioned dataset: use real captions of rows with the same labels.", show_default=False
    ),
]


@app.command("generate")
def generate_cmd(
    model: Model,
    out: Out,
    prompt: Prompt = None,
    prompts_file: PromptsFile = None,
    n: Count = None,
    captions_from: CaptionsFrom = None,
    recipe: OptionalRecipe = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """Generate one fundus image, or a labelled synthetic dataset from prompts or label conditions.

    Without --prompt/--prompts-file, N label sets are drawn from the recipe's conditions (default recipe:
    recipes/generate/conditions.yaml, which also holds the sampling settings).

    Examples: retinalogos generate -m tiny:lumina-next -p "A fundus photograph of the left eye." -o fundus.png
    retinalogos generate -m ORG/model --n 10000 -o synth sampling.batch_size=16
    """
    from ..generate import generate

    res = generate(
        model,
        out,
        prompts=prompt or (),
        prompts_file=prompts_file,
        recipe=recipe,
        n=n,
        captions_from=captions_from,
        overrides=overrides or (),
        device=device,
    )
    result("Generated", out=res.out, images=res.rows, seeds=f"{res.seeds[0]}..{res.seeds[-1]}", resumed=res.resumed)
