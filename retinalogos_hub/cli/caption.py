"""CLI group `caption` (registered on the shared app): `caption run` (sharded, resumable) and `caption merge`."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import app, result
from ._options import InDir, OutDir, Overrides, Recipe, Shard

caption_cli = typer.Typer(
    help="Label-grounded captions for a curated dataset: run (sharded, resumable), merge.", no_args_is_help=True
)
app.add_typer(caption_cli, name="caption")


RetryFailed = Annotated[
    bool,
    typer.Option(
        "--retry-failed", help="Caption again only the rows whose caption failed (their reason is in caption_issues)."
    ),
]


@caption_cli.command("run")
def caption_run(
    in_dir: InDir,
    out: OutDir,
    recipe: Recipe,
    shard: Shard = None,
    overrides: Overrides = None,
    retry_failed: RetryFailed = False,
) -> None:
    """Caption every row of a curated dataset (caption, caption_fields, consistency verdict) as the recipe says.

    Reruns resume from OUT/.work/caption/. With --shard i/N only that share is captioned; the last shard to finish
    merges (or run `retinalogos caption merge --out OUT`). Under `accelerate launch` each process takes its part.

    Example: retinalogos caption run curated --out captioned --recipe recipes/caption/template.yaml max_words=150
    """
    from ..caption import caption_dataset, load

    r = caption_dataset(in_dir, out, load(recipe, overrides or []), shard=shard, retry_failed=retry_failed)
    part = f"shard {shard}" if shard else "this process's share"
    what = "Captioned" if r.merged else f"Captioned {part} (merge with `retinalogos caption merge --out {out}`)"
    extra = {"failed": f"{r.failed} (retry with --retry-failed)"} if r.failed else {}
    result(what, out=r.out, rows=r.rows, flagged=r.flagged, **extra, **({"note": r.note} if r.note else {}))


@caption_cli.command("merge")
def caption_merge(out: OutDir) -> None:
    """Join the finished shards in OUT/.work/caption/ into the dataset OUT (and OUT/retinalogos.json).

    Example: retinalogos caption merge --out captioned
    """
    from ..caption import merge_shards

    r = merge_shards(out)
    result("Merged", out=r.out, rows=r.rows, flagged=r.flagged, failed=r.failed, **({"note": r.note} if r.note else {}))
