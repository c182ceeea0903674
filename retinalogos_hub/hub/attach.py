"""Put back, from the user's own copy of a source, what its licence tier kept out of a published dataset: the images
(`attach_images`) and the labels and patient metadata (`attach_labels`). Captions cannot be put back: they were
written by `caption`; caption the attached copy again.

Rows are matched by `source_id` through the records curation read (`curate.pipeline.source_records`: the adapter,
the age band, and for a private source the same keyed id hashing, so the same secret must be set). Each image goes
through curation's own `process` (FOV crop to the row's `width`, the recipe's orientation rule for the row's source
and eye, re-encode from pixels, so no metadata), so the re-attached pixels are what curation would have stored. The
output is the same Hub layout, card and all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset, Image

from ..errors import InputError
from ..licenses import COLUMNS, license_for
from ..sources import get_source, make_config


@dataclass
class AttachResult:
    out: Path
    attached: dict[str, int] = field(default_factory=dict)  # source -> rows that got their image / labels back
    missing: dict[str, list[str]] = field(default_factory=dict)  # source -> source_ids not found in the user's copy
    failed: dict[str, list[str]] = field(default_factory=dict)  # source -> "source_id: reason" curation excluded


def _records(source: str, root: Path, recipe) -> dict[str, dict]:
    """source_id -> the record curation made of it, from the user's copy at `root`."""
    from ..curate.pipeline import source_records
    from ..privacy import Protector

    module = get_source(source)
    protector = Protector(source, recipe.privacy) if license_for(source).private else None
    recs = module.records(make_config(source, Path(root)))
    return {rec["source_id"]: rec for rec in source_records(source, recs, recipe, protector)}


def _rewrite(export_dir: Path, sources: Sequence[tuple[str, Path]], out: Path, fill: Callable) -> AttachResult:
    """Copy the export at `export_dir` to `out`, passing every row of `sources`' configs through
    `fill(row, record or None, result)`."""
    from ..config import load_config
    from ..curate.settings import CurateConfig

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
    recipe = load_config(CurateConfig)  # the shipped curation recipe: its privacy rules and image settings
    if any(license_for(name).private for name, _ in sources):
        recipe.privacy.key()  # the secret curation hashed the ids with, or one line saying what to set
    records = {name: _records(name, root, recipe) for name, root in sources}
    result = AttachResult(out)
    shutil.copytree(export_dir, out, ignore=shutil.ignore_patterns("*.parquet", ".*"), dirs_exist_ok=True)

    def one(row: dict) -> dict:
        index = records.get(row["source"])
        if index is None:
            return row
        rec = index.get(row["source_id"])
        if rec is None:
            result.missing.setdefault(row["source"], []).append(row["source_id"])
            return row
        return fill(row, rec, recipe, result)

    for shard in shards:
        target = out / shard.relative_to(export_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if shard.parent.name not in records:
            shutil.copyfile(shard, target)
            continue
        ds = Dataset.from_parquet(str(shard), keep_in_memory=True).cast_column("image", Image(decode=False))
        ds = ds.map(one, features=ds.features, keep_in_memory=True, load_from_cache_file=False)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        ds.cast_column("image", Image()).to_parquet(str(tmp))
        os.replace(tmp, target)
    return result


def _image(row: dict, rec: dict, recipe, result: AttachResult) -> dict:
    from ..curate.process import process
    from .metadata import strip_metadata

    if row["image"] is not None:
        return row
    cfg = replace(recipe, size=row["width"] or recipe.size, format="png")  # at the row's own size, losslessly
    # with the row's source and eye, `process` makes curation's orientation decision again (a deterministic
    # function of the file and the recipe): an EyePACS photo curation turned 180 degrees comes back turned
    done = process({"id": row["id"], "path": rec["path"], "source": row["source"], "eye": rec.get("eye")}, cfg)
    if done["status"] != "ok":
        result.failed.setdefault(row["source"], []).append(f"{row['source_id']}: {done['reason']}")
        return row
    result.attached[row["source"]] = result.attached.get(row["source"], 0) + 1
    return {**row, "image": {"bytes": strip_metadata(done["image"]), "path": None}, "image_origin": None}


def _labels(row: dict, rec: dict, recipe, result: AttachResult) -> dict:
    lic = license_for(row["source"])
    withheld = [c for f in ("labels", "metadata") if f not in lic.publish for c in COLUMNS[f] if c in row]
    if not withheld:
        return row
    result.attached[row["source"]] = result.attached.get(row["source"], 0) + 1
    return {**row, **{c: rec.get(c) for c in withheld}}


def attach_images(export_dir: Path, sources: Sequence[tuple[str, Path]], out: Path) -> AttachResult:
    """Copy the export at `export_dir` to `out`, filling `image` for rows of `sources` (name, root) that lack it."""
    return _rewrite(export_dir, sources, out, _image)


def attach_labels(export_dir: Path, sources: Sequence[tuple[str, Path]], out: Path) -> AttachResult:
    """Copy the export at `export_dir` to `out`, filling the labels and patient metadata the tier of each of `sources`
    withheld, from the user's copy (a private source's metadata stays as curation left it: hashed, banded)."""
    return _rewrite(export_dir, sources, out, _labels)
