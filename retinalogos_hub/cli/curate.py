"""CLI commands for curation: `curate`, `curate-merge`, `sources` (registered on the shared app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import load_config
from ._app import app, result, table
from ._options import OutDir, Overrides, Shard, Workers

SourceSpec = Annotated[list[str], typer.Option("--source", "-s", help="NAME=PATH of a source layout; repeat for more (see `retinalogos sources`).")]
Size = Annotated[Optional[int], typer.Option("--size", help="Side in pixels of the stored FOV square (overrides the config's `size`).", show_default=False)]
CurateCfg = Annotated[Optional[Path], typer.Option("--config", help="CurateConfig YAML, e.g. recipes/curate/default.yaml.", show_default=False)]


@app.command("curate")
def curate_run(source: SourceSpec, out: OutDir, size: Size = None, workers: Workers = 1, shard: Shard = None,
               config: CurateCfg = None, overrides: Overrides = None) -> None:
    """Curate source layouts into one deduplicated, patient-split dataset directory plus OUT/manifest.parquet.

    Rerunning resumes. With --shard i/N only that share is processed; join the shards with `retinalogos curate-merge`.
    Example: retinalogos curate --source eyepacs=/data/eyepacs --source aptos=/data/aptos --out curated -j 2 dedup.phash_distance=6
    """
    from ..curate import CurateConfig, curate, parse_shard, parse_sources

    cfg = load_config(CurateConfig, config, [*(overrides or []), *([f"size={size}"] if size else [])])
    r = curate(parse_sources(source), out, cfg=cfg, workers=workers, shard=parse_shard(shard))
    what = "Curated" if r.merged else f"Curated shard {shard} (merge with `retinalogos curate-merge`)"
    result(what, out=r.out, inputs=r.inputs, kept=r.kept, excluded=r.excluded, duplicates=r.duplicates,
           processed_now=r.processed, splits=r.splits or "-", manifest=r.manifest if r.merged else "-")


@app.command("curate-merge")
def curate_merge(shard_outs: Annotated[list[Path], typer.Argument(help="OUT directories of `curate --shard i/N` runs (together all N shards).")],
                 out: OutDir, config: CurateCfg = None) -> None:
    """Join `curate --shard i/N` outputs into one dataset: dedup and patient splits run over all shards together.

    Example: retinalogos curate-merge part0 part1 --out curated
    """
    from ..curate import CurateConfig, merge

    r = merge(shard_outs, out, cfg=load_config(CurateConfig, config))
    result("Merged", out=r.out, inputs=r.inputs, kept=r.kept, excluded=r.excluded, duplicates=r.duplicates,
           splits=r.splits, manifest=r.manifest)


@app.command("sources")
def sources_list() -> None:
    """List the source adapters: what each expects on disk, its labels, licence and whether images may be re-hosted."""
    from ..sources import describe

    rows = describe()
    columns = list(rows[0]) if rows else []
    table("Source adapters", columns, [[r[c] for c in columns] for r in rows])
