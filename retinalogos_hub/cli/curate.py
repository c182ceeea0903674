"""CLI commands for curation: the `curate` group (`run`, `merge`) and `sources` (registered on the shared app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import load_config
from ._app import app, result, table
from ._options import OptionalRecipe, OutDir, Overrides, Shard, Workers

curate_cli = typer.Typer(
    help="Curate public fundus layouts into one deduplicated, patient-split dataset.", no_args_is_help=True
)
app.add_typer(curate_cli, name="curate")

SourceSpec = Annotated[
    list[str],
    typer.Option("--source", "-s", help="NAME=PATH of a source layout; repeat for more (see `retinalogos sources`)."),
]
Size = Annotated[
    Optional[int],
    typer.Option(
        "--size", help="Side in pixels of the stored FOV square (overrides the recipe's `size`).", show_default=False
    ),
]
ShardOuts = Annotated[
    list[Path], typer.Argument(help="OUT directories of `curate run --shard i/N` runs (together all N shards).")
]


@curate_cli.command("run")
def curate_run(
    source: SourceSpec,
    out: OutDir,
    size: Size = None,
    workers: Workers = 1,
    shard: Shard = None,
    recipe: OptionalRecipe = None,
    overrides: Overrides = None,
) -> None:
    """Curate source layouts into one dataset directory plus OUT/manifest.parquet and OUT/retinalogos.json.

    The recipe defaults to recipes/curate/default.yaml; key=value overrides go on top. Rerunning resumes.
    With --shard i/N only that share is processed; join the shards with `retinalogos curate merge`.
    Example: retinalogos curate run -s eyepacs=/data/eyepacs -s aptos=/data/aptos --out curated -j 2 splits.test=0.2
    """
    from ..curate import CurateConfig
    from ..privacy import require_private_key
    from ..sources import parse_sources

    cfg = load_config(CurateConfig, recipe, [*(overrides or []), *([f"size={size}"] if size else [])])
    sources = parse_sources(source)
    require_private_key([name for name, _ in sources], cfg.privacy)  # before the pipeline's imports: under a second
    from ..curate import curate, parse_shard

    r = curate(sources, out, cfg=cfg, workers=workers, shard=parse_shard(shard))
    what = "Curated" if r.merged else f"Curated shard {shard} (merge with `retinalogos curate merge`)"
    _print(what, r)


@curate_cli.command("merge")
def curate_merge(shard_outs: ShardOuts, out: OutDir, recipe: OptionalRecipe = None) -> None:
    """Join `curate run --shard i/N` outputs into one dataset: dedup and patient splits run over all shards together.

    --recipe picks the dedup and split settings (default: the config the shards recorded; its image settings must be
    theirs). Example: retinalogos curate merge part0 part1 --out curated
    """
    from ..curate import CurateConfig, merge

    r = merge(shard_outs, out, cfg=load_config(CurateConfig, recipe) if recipe else None)
    _print("Merged", r)


def _print(title: str, r) -> None:
    result(
        title,
        out=r.out,
        inputs=r.inputs,
        kept=r.kept,
        excluded=r.excluded,
        duplicates=r.duplicates,
        processed_now=r.processed,
        splits=r.splits or "-",
        manifest=r.manifest if r.merged else "-",
    )


@app.command("sources")
def sources_list(
    long: Annotated[
        bool,
        typer.Option(
            "--long",
            "-l",
            help="Everything about each adapter: what it expects on disk, its labels, how patients are keyed.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The adapter rows as JSON, for scripts.")] = False,
    check: Annotated[
        Optional[list[str]],
        typer.Option(
            "--check",
            help="NAME=PATH: print what that adapter would read there (label files, counts per split and label, "
            "problems) without curating; repeatable. Exit code 1 when a layout has problems that stop it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the source adapters: licence, its tier (open: everything may be published; derived: labels and captions;
    reference: ids only), labels (--long: what each expects on disk).

    Example: retinalogos sources --long ; retinalogos sources --check rfmid=/data/RFMiD
    """
    from ..sources import describe

    if check:
        _check(check, as_json)
        return

    rows = describe()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))  # plain stdout: rich would wrap long strings
    elif long:
        for r in rows:
            result(f"{r['name']}: {r['title']}", **{k: _text(v) for k, v in r.items() if k not in ("name", "title")})
    else:
        table(
            "Source adapters (labels: graded for, +N others; --long: all)",
            ["source", "tier", "licence", "labels"],
            [[r["name"], r["tier"], _short(r["license"]), _labels(r["labels"])] for r in rows],
        )


def _check(specs: list[str], as_json: bool) -> None:
    from ..sources import check, parse_sources

    reports = [check(name, root) for name, root in parse_sources(specs)]
    if as_json:
        typer.echo(json.dumps(reports, indent=1))
    else:
        for r in reports:
            splits = {
                split: "; ".join(
                    f"{label} " + ", ".join(f"{v}: {n}" for v, n in c.items()) for label, c in labels.items()
                )
                for split, labels in r["splits"].items()
            }
            result(
                f"{r['name']} at {r['root']}: {r['images']} images" + ("" if r["ok"] else " (problems)"),
                files=", ".join(r["files"]) or "-",
                **{f"split {k}": v or "-" for k, v in splits.items()},
                problems=len(r["problems"]),
            )
            for p in r["problems"][:20]:
                typer.echo(f"  problem: {p}")
            if len(r["problems"]) > 20:
                typer.echo(f"  ... and {len(r['problems']) - 20} more (--json lists all)")
    if not all(r["ok"] for r in reports):
        raise typer.Exit(1)


GRADES = {"dr_grade": "DR", "dme": "DME", "glaucoma": "glaucoma", "diseases": "diseases"}


def _labels(labels: list[str]) -> str:
    """'DR glaucoma diseases +5': the graded conditions, then how many other labels (fits the 80-column table)."""
    if any(" " in label for label in labels):  # a free-form description (`table`: any mapped column)
        return "any (mapped)"
    graded = [GRADES[k] for k in GRADES if k in labels]
    if not graded:  # a segmentation set: its few labels, by name
        return ", ".join(labels) if len(", ".join(labels)) <= 23 else f"{len(labels)} labels"
    others = len(labels) - len(graded)
    return " ".join([*graded, *([f"+{others}"] if others else [])])


def _short(text: str, width: int = 22) -> str:
    text = text.split(" (")[0].split(";")[0]  # the parenthesis and the clause after ";" repeat what the tier says
    return text if len(text) <= width else text[: width - 1] + "…"


def _text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ", ".join(value) if isinstance(value, list) else str(value)
