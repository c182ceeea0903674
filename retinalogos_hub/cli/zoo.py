"""CLI commands for the model zoo: convert-official, zoo list | build | publish (registered on the shared app)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import app, console, result, table
from ._options import Models, OptionalRecipe, Overrides, Private, Token

zoo_app = typer.Typer(help="The model zoo manifest (zoo.yaml): list, build, publish.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")

Manifest = Annotated[Path, typer.Option("--zoo", help="The zoo manifest.")]


@app.command("convert-official")
def convert_official_cmd(
    ckpt_dir: Annotated[
        Path, typer.Argument(help="The authors' folder: consolidated[_ema].00-of-01.pth + model_args.pth.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The diffusers pipeline folder to write.")],
    text_encoder: Annotated[
        Optional[str], typer.Option("--text-encoder", help="Gemma-2B: Hub id or local dir (default: the recipe's).")
    ] = None,
    vae: Annotated[
        Optional[str], typer.Option("--vae", help="SDXL VAE: Hub id or local dir (default: the recipe's).")
    ] = None,
    repo_id: Annotated[
        Optional[str], typer.Option("--repo-id", help="The repo id the card's snippet loads (default: OUT).")
    ] = None,
    recipe: OptionalRecipe = None,
    overrides: Overrides = None,
) -> None:
    """Convert the RetinaLogos authors' Lumina-Next checkpoint (junzhin/RetinaLogo) into a diffusers LuminaPipeline.

    Default recipe: recipes/convert/official.yaml (EMA weights, 50 Euler steps, time shift 1.0, CFG 4.0).
    """
    from ..convert_official import convert_official

    res = convert_official(
        ckpt_dir, out, text_encoder=text_encoder, vae=vae, repo_id=repo_id, recipe=recipe, overrides=overrides or []
    )
    cfg = res.transformer_config
    result(
        "Converted",
        out=res.out,
        checkpoint=res.checkpoint.name,
        transformer=f"dim {cfg['hidden_size']}, {cfg['num_layers']} layers, {cfg['num_attention_heads']}/{cfg['num_kv_heads']} heads",
        parameters=f"{res.parameters:,}",
    )


@zoo_app.command("list")
def zoo_list(zoo: Manifest = Path("zoo.yaml")) -> None:
    """List the zoo's entries and whether each is built."""
    from ..zoo import load_zoo, statuses

    rows = [[s.entry.name, s.entry.repo_id, s.entry.backbone, s.entry.stage, s.entry.mode, "yes" if s.built else "no"]
            for s in statuses(load_zoo(zoo), zoo)]  # fmt: skip
    table("zoo", ["name", "repo", "backbone", "step", "mode", "built"], rows)


@zoo_app.command("build")
def zoo_build(
    zoo: Manifest = Path("zoo.yaml"),
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Build only this entry (repeatable).")] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the launch commands instead of running them.")
    ] = False,
) -> None:
    """Build every unbuilt entry (run its recipe's launch command, or convert the official weights)."""
    from ..zoo import build

    out = build(zoo, only=only or [], dry_run=print_only)
    for s in out:
        prefix = "# built: " if s.built else ""
        console.print(prefix + shlex.join(s.command or []), highlight=False, soft_wrap=True, markup=False)
    if not print_only:
        result("Zoo built", entries=len(out), built=sum(s.built for s in out))


@zoo_app.command("publish")
def zoo_publish(zoo: Manifest = Path("zoo.yaml"), private: Private = False, token: Token = None) -> None:
    """Push every entry with its card, create or update the Hub Collection, and push the zoo card (leaderboard)."""
    from ..zoo import publish

    res = publish(zoo, token=token, private=private)
    table("zoo publish", ["entry", "url"], [[k, v] for k, v in res.urls.items()])
    result("Zoo published", collection=res.collection, card=res.card_url, leaderboard_rows=len(res.leaderboard))


@app.command("app")
def app_cmd(
    model: Models = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default: the recipe's).")] = None,
    recipe: OptionalRecipe = None,
    overrides: Overrides = None,
) -> None:
    """Serve the RetinaLogos demo (the Space) locally: prompt builder, model picker, gallery. Default recipe:
    recipes/app/space.yaml."""
    from ..space import launch

    launch(model or [], port, recipe, overrides or [])
