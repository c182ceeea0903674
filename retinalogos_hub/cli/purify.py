"""CLI command for step 2: `purify` (registered on the shared app)."""

from __future__ import annotations

from ._app import app, result, table
from ._options import InDir, OutDir, Overrides, Recipe, RefuseUncaptioned


@app.command("purify")
def purify_cmd(
    in_dir: InDir,
    recipe: Recipe,
    out: OutDir,
    overrides: Overrides = None,
    refuse_uncaptioned: RefuseUncaptioned = False,
) -> None:
    """Score every caption-image pair (CLIP alignment per sentence, caption guard, LLM judge) and mark it kept or
    dropped; rows without a caption are dropped with their reason (or refused with --refuse-uncaptioned).

    Example: retinalogos purify captioned --recipe recipes/purify/default.yaml --out purified keep.min_clip_percentile=20
    """
    from ..purify import purify

    res = purify(in_dir, recipe, out, overrides or (), refuse_uncaptioned=refuse_uncaptioned)
    table("purify: rows by source and reason", ["source", "kept", "reason", "rows"], res.summary)
    cols = ["rows", "mean", "std", "p5", "p50", "p95"]
    extra = [k for k in ("percentile_threshold", "zscore_threshold") if any(k in d for d in res.distribution.values())]
    table(
        "purify: CLIP alignment by source",
        ["source", *cols, *extra],
        [[s, *[d[c] for c in cols], *[d.get(k, "") for k in extra]] for s, d in res.distribution.items()],
    )
    result("Purified", out=res.out, kept=res.kept, dropped=res.dropped, uncaptioned=res.uncaptioned)
