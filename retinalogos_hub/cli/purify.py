"""CLI command for step 2: `purify` (registered on the shared app)."""

from __future__ import annotations

from ._app import app, result, table
from ._options import InDir, OutDir, Overrides, Recipe


@app.command("purify")
def purify_cmd(in_dir: InDir, recipe: Recipe, out: OutDir, overrides: Overrides = None) -> None:
    """Score every caption-image pair (CLIP alignment, caption guard, LLM judge) and mark it kept or dropped.

    Example: retinalogos purify captioned --recipe recipes/purify/default.yaml --out purified keep.min_clip_score=0.25
    """
    from ..purify import purify

    res = purify(in_dir, recipe, out, overrides or ())
    table("purify: rows by source and reason", ["source", "kept", "reason", "rows"], res.summary)
    result("Purified", out=res.out, kept=res.kept, dropped=res.dropped)
