"""CLI commands for publishing: push-dataset, attach-images, push-model (registered on the shared app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import app, result, table
from ._options import InDir, OutDir, Private, RefuseUncaptioned, RepoId, Token

LocalDir = Annotated[
    Optional[Path],
    typer.Option("--local-dir", help="Write the repo folder here instead of uploading.", show_default=False),
]


@app.command("push-dataset")
def push_dataset_cmd(
    in_dir: InDir,
    repo_id: RepoId,
    local_dir: LocalDir = None,
    private: Private = False,
    gated: Annotated[
        bool, typer.Option("--gated", help="Gate access (users accept the medical-data terms first).")
    ] = False,
    max_shard_size: Annotated[
        str, typer.Option("--max-shard-size", help="Largest parquet shard, e.g. 500MB.")
    ] = "500MB",
    token: Token = None,
    refuse_uncaptioned: RefuseUncaptioned = False,
) -> None:
    """Publish a captioned/purified dataset: one config per source + `all`, licence-clean, with a dataset card.

    Rows without a caption (failed captioning) are left out with a count, or refused with --refuse-uncaptioned."""
    from ..hub import push_dataset

    res = push_dataset(
        in_dir,
        repo_id,
        local_dir=local_dir,
        private=private,
        gated=gated,
        max_shard_size=max_shard_size,
        token=token,
        refuse_uncaptioned=refuse_uncaptioned,
    )
    table(
        "push-dataset: rows per config and split",
        ["config", "split", "rows"],
        [[c, s, n] for c, splits in res.configs.items() for s, n in splits.items()],
    )
    result(
        "Dataset repo written" if res.url is None else "Dataset pushed",
        local_dir=res.local_dir,
        rows=res.rows,
        with_image=res.with_image,
        without_image=res.without_image,
        uncaptioned=res.uncaptioned,
        url=res.url or "-",
    )


@app.command("attach-images")
def attach_images_cmd(
    export_dir: Annotated[Path, typer.Argument(help="A push-dataset export (or a downloaded copy of the Hub repo).")],
    source: Annotated[list[str], typer.Option("--source", help="NAME=PATH of your own copy of a source (repeatable).")],
    out: OutDir,
) -> None:
    """Put back the images a source's licence kept out of the published dataset, from your own copy of that source."""
    from ..curate import parse_sources
    from ..hub.attach import attach_images

    pairs = parse_sources(source)
    res = attach_images(export_dir, pairs, out)
    table(
        "attach-images",
        ["source", "attached", "not found", "failed"],
        [[s, res.attached.get(s, 0), len(res.missing.get(s, [])), len(res.failed.get(s, []))] for s, _ in pairs],
    )
    result("Images attached", out=res.out, attached=sum(res.attached.values()))


@app.command("push-model")
def push_model_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A training RUN_DIR (config.yaml, run.json, pipeline/, ...).")],
    repo_id: RepoId,
    local_dir: LocalDir = None,
    private: Private = False,
    token: Token = None,
) -> None:
    """Publish a trained pipeline (and LoRA) with a model card, validation gallery and evaluation results."""
    from ..hub.model import push_model

    res = push_model(run_dir, repo_id, local_dir=local_dir, private=private, token=token)
    result(
        "Model repo written" if res.url is None else "Model pushed",
        local_dir=res.local_dir,
        files=len(res.files),
        url=res.url or "-",
    )
