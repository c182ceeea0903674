"""Publishing: a captioned/purified stage directory -> a licence-clean Hub dataset repo (`push_dataset`), images put
back from a user's own copy (`attach_images`), and a training RUN_DIR -> a Hub model repo (`push_model`).

Every push builds the complete repo folder on disk first (`--local-dir`, or a cache folder), then uploads it with
huggingface_hub after a fast reachability check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import stage
from .upload import check_repo_id, hf_home_exports, upload

DEFAULT_CONFIG = "all"  # the config that globs every source's shards (export.DEFAULT_CONFIG)


@dataclass
class PushResult:
    local_dir: Path
    configs: dict[str, dict[str, int]]  # config -> split -> rows ("all" first)
    rows: int
    url: str | None  # None when only written locally
    with_image: int = 0
    without_image: int = 0
    uncaptioned: int = 0  # rows left out because their caption failed


def push_dataset(
    in_dir: Path,
    repo_id: str,
    *,
    local_dir: Path | None = None,
    private: bool = False,
    gated: bool = False,
    max_shard_size: str = "500MB",
    token: str | None = None,
    refuse_uncaptioned: bool = False,
) -> PushResult:
    """Export stage `in_dir` as a Hub dataset repo. With `local_dir` the repo is only written there; without it, it
    is staged in the cache and uploaded to `repo_id`."""
    from .card import render_dataset_card
    from .export import export_dataset  # datasets + pyarrow: imported once the input checks have passed
    from .upload import check_reachable

    check_repo_id(repo_id)
    if local_dir is None:
        check_reachable()  # before minutes of export work
    out = Path(local_dir) if local_dir is not None else hf_home_exports() / "datasets" / repo_id.replace("/", "--")
    settings = {"repo_id": repo_id, "private": private, "gated": gated, "max_shard_size": max_shard_size}
    run = stage.start("push-dataset", out, settings, dataset=in_dir)
    export = export_dataset(Path(in_dir), out, max_shard_size=max_shard_size, refuse_uncaptioned=refuse_uncaptioned)
    render_dataset_card(export, repo_id, gated=gated).save(out / "README.md")
    # published with the data: input names and fingerprints only, never this machine's paths
    run.finish(
        public=True,
        rows=export.rows,
        with_image=export.with_image,
        without_image=export.without_image,
        uncaptioned=export.uncaptioned,
        configs=export.configs,
    )
    url = None
    if local_dir is None:
        url = upload(
            out,
            repo_id,
            repo_type="dataset",
            private=private,
            gated=gated,
            token=token,
            message=f"Upload {export.rows} rows with retinalogos-hub",
        )
    return PushResult(
        out, export.configs, export.rows, url, export.with_image, export.without_image, export.uncaptioned
    )


__all__ = ["DEFAULT_CONFIG", "PushResult", "push_dataset"]
