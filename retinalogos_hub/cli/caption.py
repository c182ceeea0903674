"""CLI group `caption` (registered on the shared app): `caption run` (sharded, resumable) and `caption merge`."""

from __future__ import annotations

import typer

from ._app import app, result
from ._options import InDir, OutDir, Overrides, Recipe, Shard

caption_cli = typer.Typer(
    help="Label-grounded captions for a curated dataset: run (sharded, resumable), merge.", no_args_is_help=True
)
app.add_typer(caption_cli, name="caption")


@caption_cli.command("run")
def caption_run(in_dir: InDir, out: OutDir, recipe: Recipe, shard: Shard = None, overrides: Overrides = None) -> None:
    """Caption every row of a curated dataset (caption, caption_fields, consistency verdict) as the recipe says.

    Reruns resume from OUT/.work/caption/. With --shard i/N only that share is captioned; the last shard to finish
    merges (or run `retinalogos caption merge --out OUT`). Under `accelerate launch` each process takes its part.

    Example: retinalogos caption run curated --out captioned --recipe recipes/caption/template.yaml max_words=150
    """
    from ..caption import caption_dataset, load

    r = caption_dataset(in_dir, out, load(recipe, overrides or []), shard=shard)
    part = f"shard {shard}" if shard else "this process's share"
    what = "Captioned" if r.merged else f"Captioned {part} (merge with `retinalogos caption merge --out {out}`)"
    result(what, out=r.out, rows=r.rows, flagged=r.flagged)


@caption_cli.command("merge")
def caption_merge(out: OutDir) -> None:
    """Join the finished shards in OUT/.work/caption/ into the dataset OUT (and OUT/retinalogos.json).

    Example: retinalogos caption merge --out captioned
    """
    from ..caption import merge_shards

    r = merge_shards(out)
    result("Merged", out=r.out, rows=r.rows, flagged=r.flagged)
