"""CLI commands for publishing: push-dataset, attach-images, attach-labels, push-model, push-state (registered on the shared app)."""

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


ExportDir = Annotated[Path, typer.Argument(help="A push-dataset export (or a downloaded copy of the Hub repo).")]
OwnCopies = Annotated[list[str], typer.Option("--source", help="NAME=PATH of your own copy of a source (repeatable).")]


@app.command("attach-images")
def attach_images_cmd(export_dir: ExportDir, source: OwnCopies, out: OutDir) -> None:
    """Put back the images a source's licence kept out of the published dataset, from your own copy of that source."""
    from ..hub.attach import attach_images

    _attached("attach-images", "Images attached", attach_images, export_dir, source, out)


@app.command("attach-labels")
def attach_labels_cmd(export_dir: ExportDir, source: OwnCopies, out: OutDir) -> None:
    """Put back the labels and patient metadata a source's licence tier kept out of the published dataset, from your
    own copy of that source (a private source needs the id secret curation used). Captions are not put back: caption
    the result again."""
    from ..hub.attach import attach_labels

    _attached("attach-labels", "Labels attached", attach_labels, export_dir, source, out)


def _attached(title: str, done: str, attach, export_dir: Path, source: list[str], out: Path) -> None:
    from ..sources import parse_sources

    pairs = parse_sources(source)
    res = attach(export_dir, pairs, out)
    table(
        title,
        ["source", "attached", "not found", "failed"],
        [[s, res.attached.get(s, 0), len(res.missing.get(s, [])), len(res.failed.get(s, []))] for s, _ in pairs],
    )
    result(done, out=res.out, attached=sum(res.attached.values()))


@app.command("push-model")
def push_model_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A training RUN_DIR (config.yaml, run.json, pipeline/, ...).")],
    repo_id: RepoId,
    local_dir: LocalDir = None,
    private: Private = False,
    token: Token = None,
    checkpoints: Annotated[
        bool,
        typer.Option(
            "--checkpoints",
            help="Also publish every kept checkpoint as branch step-NNNNNN (weights only, no optimizer).",
        ),
    ] = False,
) -> None:
    """Publish a trained pipeline (and LoRA) with a model card, validation gallery and evaluation results.

    Examples: retinalogos push-model runs/step3 --repo-id my-lab/retinalogos --checkpoints"""
    from ..hub.model import push_model

    res = push_model(run_dir, repo_id, local_dir=local_dir, private=private, token=token, checkpoints=checkpoints)
    result(
        "Model repo written" if res.url is None else "Model pushed",
        local_dir=res.local_dir,
        files=len(res.files),
        url=res.url or "-",
        **({"revisions": len(res.revisions), "revisions_sent": len(res.sent)} if checkpoints else {}),
    )


@app.command("push-state")
def push_state_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A training RUN_DIR with checkpoints/checkpoint-NNNNNN folders.")],
    repo_id: RepoId,
    checkpoint: Annotated[
        Optional[str],
        typer.Option("--checkpoint", help="checkpoint-NNNNNN (or its path); default: the latest complete one."),
    ] = None,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="Push to an existing public repo (optimizer and RNG state).")
    ] = False,
    token: Token = None,
) -> None:
    """Upload a checkpoint's full resumable state to a private repo, for `train --resume hf://ORG/NAME-state[@step-N]`.

    Examples: retinalogos push-state runs/step1 --repo-id my-lab/retinalogos-step1-state"""
    from ..hub.checkpoints import push_state

    res = push_state(run_dir, repo_id, checkpoint=checkpoint, allow_public=allow_public, token=token)
    result(
        "Training state pushed",
        checkpoint=res.checkpoint,
        global_step=res.global_step,
        files=len(res.files),
        resume=f"--resume hf://{repo_id}@{res.revision}",
        url=res.url,
    )
