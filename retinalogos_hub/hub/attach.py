"""Put images back into an exported dataset from the user's own copy of a source whose licence forbids re-hosting.

Rows are matched by `source_id` through the source's adapter (the same records curation read), and each image goes
through curation's own `process` (FOV crop to the row's `width`, the recipe's orientation rule for the row's source
and eye, re-encode from pixels, so no metadata), so the re-attached pixels are what curation would have stored. The output is the same Hub layout, card and all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset, Image

from ..errors import InputError
from ..sources import get_source, make_config


@dataclass
class AttachResult:
    out: Path
    attached: dict[str, int] = field(default_factory=dict)  # source -> rows that got their image
    missing: dict[str, list[str]] = field(default_factory=dict)  # source -> source_ids not found in the user's copy
    failed: dict[str, list[str]] = field(default_factory=dict)  # source -> "source_id: reason" curation excluded


def _index(source: str, root: Path) -> dict[str, str]:
    module = get_source(source)
    return {rec["source_id"]: rec["path"] for rec in module.records(make_config(source, Path(root)))}


def attach_images(export_dir: Path, sources: Sequence[tuple[str, Path]], out: Path) -> AttachResult:
    """Copy the export at `export_dir` to `out`, filling `image` for rows of `sources` (name, root) that lack it."""
    from ..config import load_config
    from ..curate.process import process
    from ..curate.settings import CurateConfig
    from .export import strip_metadata

    recipe = load_config(CurateConfig)  # the shipped curation recipe, at each row's own size, stored losslessly

    export_dir, out = Path(export_dir), Path(out)
    shards = sorted((export_dir / "data").glob("*/*.parquet"))
    if not (export_dir / "README.md").is_file() or not shards:
        raise InputError(
            f"{export_dir}: not a dataset export (needs README.md and data/<config>/*.parquet); pass a `push-dataset --local-dir` folder"
        )
    if out.resolve() == export_dir.resolve():
        raise InputError(f"--out {out} is the export itself; choose a new folder")
    present = {p.parent.name for p in shards}
    for name, _ in sources:
        if name not in present:
            raise InputError(f"--source {name}: the export has no config {name!r}; it has {', '.join(sorted(present))}")
    indexes = {name: _index(name, root) for name, root in sources}
    result = AttachResult(out)
    shutil.copytree(export_dir, out, ignore=shutil.ignore_patterns("*.parquet", ".*"), dirs_exist_ok=True)

    def fill(row: dict) -> dict:
        index = indexes.get(row["source"])
        if index is None or row["image"] is not None:
            return row
        path = index.get(row["source_id"])
        if path is None:
            result.missing.setdefault(row["source"], []).append(row["source_id"])
            return row
        cfg = replace(recipe, size=row["width"] or recipe.size, format="png")
        # with the row's source and eye, `process` makes curation's orientation decision again (a deterministic
        # function of the file and the recipe): an EyePACS photo curation turned 180 degrees comes back turned
        done = process({"id": row["id"], "path": path, "source": row["source"], "eye": row.get("eye")}, cfg)
        if done["status"] != "ok":
            result.failed.setdefault(row["source"], []).append(f"{row['source_id']}: {done['reason']}")
            return row
        result.attached[row["source"]] = result.attached.get(row["source"], 0) + 1
        return {**row, "image": {"bytes": strip_metadata(done["image"]), "path": None}, "image_origin": None}

    for shard in shards:
        target = out / shard.relative_to(export_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if shard.parent.name not in indexes:
            shutil.copyfile(shard, target)
            continue
        ds = Dataset.from_parquet(str(shard), keep_in_memory=True).cast_column("image", Image(decode=False))
        ds = ds.map(fill, features=ds.features, keep_in_memory=True, load_from_cache_file=False)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        ds.cast_column("image", Image()).to_parquet(str(tmp))
        os.replace(tmp, target)
    return result
