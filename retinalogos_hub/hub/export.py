"""Write a captioned (or purified) stage directory as a Hub dataset repo on disk.

Layout: `data/<source>/<split>-NNNNN-of-NNNNN.parquet` (one config per source, shards sized by `max_shard_size`) and a
default config `all` whose data files are every source's shards (a glob, so the rows are not stored twice), plus
`README.md` (card with `configs` and `dataset_info`, see `card.py`) and `assets/` (charts). `load_dataset(dir, "all")`
and `load_dataset(dir, "<source>")` read it offline.

Licences: each source's tier (`licenses.py`) says which fields of its rows are published (images, labels, captions,
patient metadata); the others are null. A row without its image has `image_origin`, where to obtain it (the licence
table's url); `retinalogos attach-images` / `attach-labels` put back what a tier withheld from the user's own copy.
Every published image loses its EXIF, ICC, XMP and text chunks. Private (EHR) sources were protected at curation
(hashed ids, age bands, no free text unless opted in: `privacy.py`).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Dataset, Features, Image, Value, load_from_disk
from datasets.utils.py_utils import convert_file_size_to_int

from ..errors import InputError
from ..licenses import license_for
from ..schema import CAPTIONED, require_columns
from . import DEFAULT_CONFIG
from .metadata import _drops, strip_metadata

SPLITS = ("train", "validation", "test")
# Column the export adds: where a user obtains an image that is not re-hosted (None when the image is included).
EXPORT_COLUMNS = Features({"image_origin": Value("string")})
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Export:
    dir: Path
    configs: dict[str, dict[str, int]]  # config -> split -> rows ("all" first)
    nbytes: dict[str, dict[str, int]]  # config -> split -> arrow bytes
    features: Features
    rows: int
    with_image: int
    without_image: int
    uncaptioned: int = 0  # input rows left out because their caption failed (counted, never published empty)


def read_stage(in_dir: Path, *, refuse_uncaptioned: bool = False) -> tuple[Dataset, int]:
    """The captioned/purified stage dataset and how many rows without a caption (failed captioning rows) were left
    out of it (refused instead with `refuse_uncaptioned`); refused with one line when it cannot be published."""
    in_dir = Path(in_dir)
    if not (in_dir / "dataset_info.json").is_file():
        raise InputError(
            f"{in_dir}: not a stage directory (no dataset_info.json); pass the output of `retinalogos caption` or `purify`"
        )
    ds = load_from_disk(str(in_dir))
    require_columns(ds.column_names, list(CAPTIONED), str(in_dir))
    # whole columns through arrow compute (datasets' Column formats row by row; a Python list per column is a pass
    # over every row, which the export makes once, not here)
    captions = ds.with_format("arrow")["caption"]
    blank = pc.or_(pc.is_null(captions), pc.equal(pc.utf8_trim_whitespace(captions), ""))
    empty = np.flatnonzero(pc.fill_null(blank, True).to_numpy(zero_copy_only=False)).tolist()
    if empty and refuse_uncaptioned:
        ids = ds.select(empty[:3])["id"]
        raise InputError(
            f"{in_dir}: {len(empty)} row(s) without a caption (e.g. {', '.join(ids)}); retry them with "
            "`retinalogos caption run ... --retry-failed`, or publish without them (drop --refuse-uncaptioned)"
        )
    if empty and len(empty) == len(ds):
        raise InputError(f"{in_dir}: no row has a caption; run `retinalogos caption run` on it first")
    if empty:
        gone = set(empty)
        ds = ds.select([i for i in range(len(ds)) if i not in gone])
    column = ds.with_format("arrow")
    sources = set(pc.unique(column["source"]).to_pylist())
    bad = sorted({s for s in sources if not _CONFIG_NAME.match(str(s))})
    if bad:
        raise InputError(f"{in_dir}: source name(s) {bad} cannot be config names (letters, digits, _ . - only)")
    for source in sorted(sources):
        license_for(source)  # LicenseError names the source and the file to edit
    splits = sorted(set(pc.unique(column["split"]).to_pylist()) - set(SPLITS), key=str)
    if splits:
        raise InputError(f"{in_dir}: column 'split' has value(s) {splits}; expected one of {', '.join(SPLITS)}")
    return ds, len(empty)


def _stripped_column(images: pa.StructArray, keep: list[bool]) -> tuple[pa.StructArray, np.ndarray]:
    """`image` as published: rows not kept are null, the others lose their metadata segments. One vectorised
    copy of the kept byte ranges (a Python copy per image cost 2x the parquet write); an image of another
    format falls back to `strip_metadata`. Returns the column and each row's image size."""
    binary = images.field("bytes")
    n = len(binary)
    present = pc.and_(pc.is_valid(images), pc.is_valid(binary)).to_pylist()
    valid = [bool(k and p) for k, p in zip(keep, present)]
    wide = pa.types.is_large_binary(binary.type)
    offsets = np.frombuffer(binary.buffers()[1], np.int64 if wide else np.int32)[binary.offset : binary.offset + n + 1]
    data = np.frombuffer(binary.buffers()[2], np.uint8) if binary.buffers()[2] is not None else np.zeros(0, np.uint8)
    view, pieces, lengths = memoryview(data), [], np.zeros(n, np.int64)
    for i in range(n):
        if not valid[i]:
            continue
        a, b = int(offsets[i]), int(offsets[i + 1])
        ranges = _drops(view[a:b])
        if ranges is None:  # not JPEG/PNG: re-encode this batch's images one by one
            clean = [strip_metadata(binary[j].as_py()) if valid[j] else None for j in range(n)]
            sizes = np.fromiter((len(c) if c else 0 for c in clean), np.float64, n)
            return _image_struct(pa.array(clean, pa.binary()), valid), sizes
        at = a
        for x, y in ranges:
            pieces.append(data[at : a + x])
            at = a + y
        pieces.append(data[at:b])
        lengths[i] = (b - a) - sum(y - x for x, y in ranges)
    if all(valid) and int(lengths.sum()) == int(offsets[-1] - offsets[0]):  # nothing to strip (curated images)
        return _image_struct(binary, valid), lengths.astype(np.float64)
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(offsets.dtype)
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)  # the one copy of the image bytes
    column = pa.Array.from_buffers(binary.type, n, [None, pa.py_buffer(new_offsets), pa.py_buffer(joined)])
    return _image_struct(column, valid), lengths.astype(np.float64)


def _image_struct(column: pa.Array, valid: list[bool]) -> pa.StructArray:
    n = len(column)
    return pa.StructArray.from_arrays(
        [column, pa.nulls(n, pa.string())], names=["bytes", "path"], mask=pa.array([not v for v in valid])
    )


def _published(batch: pa.Table, schema: pa.Schema) -> tuple[pa.Table, np.ndarray]:
    """One source's rows as published: the columns its tier withholds are null, images are kept (stripped of
    metadata) only where the tier and the row allow, and `image_origin` says where to obtain the rest."""
    lic = license_for(batch.column("source")[0].as_py())
    n = len(batch)
    cols = {name: batch.column(name) for name in batch.column_names}
    for name in lic.withheld():
        if name in cols:
            cols[name] = pa.nulls(n, cols[name].type)
    keep = [lic.redistributable and bool(r) for r in batch.column("redistributable").to_pylist()]
    parts, at = [], 0  # chunk by chunk: combining the chunks would copy every image once more
    for chunk in batch.column("image").chunks:
        parts.append(_stripped_column(chunk, keep[at : at + len(chunk)]))
        at += len(chunk)
    cols["image"] = pa.chunked_array([p[0] for p in parts], type=schema.field("image").type)
    sizes = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    keep = [k and s > 0 for k, s in zip(keep, sizes)]
    cols["image_origin"] = pa.array([None if k else lic.url for k in keep], pa.string())
    table = pa.table([cols[f.name] for f in schema], schema=schema)
    # each row's size: its image plus its strings (Table.nbytes walks every buffer and costs as much as the write)
    for c in ("caption", "findings", "purify_reason", "id"):
        if c in table.column_names:
            sizes = sizes + pc.fill_null(pc.binary_length(table.column(c)), 0).to_numpy()
    return table, sizes


def export_dataset(
    in_dir: Path,
    out_dir: Path,
    *,
    max_shard_size: str | int = "500MB",
    refuse_uncaptioned: bool = False,
) -> Export:
    """Write the Hub layout of stage `in_dir` into `out_dir` (data shards only; the card is rendered by `card.py`).
    Rows without a caption are left out and counted (`Export.uncaptioned`), or refused with `refuse_uncaptioned`.

    Rows stream from the memory-mapped stage through pyarrow, one (source, split) group at a time, in batches of
    datasets' own parquet row-group size; a shard is closed once it holds `max_shard_size` of published rows, so
    shards are sized by the rows they hold. (A `datasets` map + select + to_parquet did the same at 5x the cost of a
    plain parquet write: it rewrote every row into a cache file first.)"""
    from datasets.arrow_writer import get_writer_batch_size_from_data_size, get_writer_batch_size_from_features

    ds, uncaptioned = read_stage(in_dir, refuse_uncaptioned=refuse_uncaptioned)
    max_bytes = convert_file_size_to_int(max_shard_size)
    features = Features({**ds.features, "image": Image(), **EXPORT_COLUMNS})
    schema = features.arrow_schema  # carries the features, so load_dataset decodes `image` as an Image
    # row groups as datasets' own parquet writer sizes them (about 100 MB), so readers and the viewer see the same
    batch_rows = get_writer_batch_size_from_features(features) or get_writer_batch_size_from_data_size(
        len(ds),
        sum(os.path.getsize(f["filename"]) for f in ds.cache_files),  # not Table.nbytes: it walks every buffer
    )
    out_dir = Path(out_dir)
    data = out_dir / "data"
    if out_dir.resolve() == Path(in_dir).resolve():
        raise InputError(f"--local-dir {out_dir} is the input stage directory; choose a new folder")
    if data.is_dir() and any(p.suffix != ".parquet" for p in data.rglob("*") if p.is_file()):
        # data/ is replaced on every export: only ever one that holds nothing but an earlier export's shards
        raise InputError(
            f"--local-dir {out_dir}: {data} holds files that are not parquet shards of an earlier export; choose a new folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if data.exists():  # a fresh layout every time: stale shards from a bigger earlier export must not linger
        shutil.rmtree(data)
    groups: dict[tuple[str, str], list[int]] = {}
    table = ds.with_format("arrow")
    for i, key in enumerate(zip(table["source"].to_pylist(), table["split"].to_pylist())):
        groups.setdefault(key, []).append(i)
    configs: dict[str, dict[str, int]] = {}
    nbytes: dict[str, dict[str, int]] = {}
    with_image = 0
    for source, split in sorted(groups, key=lambda k: (k[0], SPLITS.index(k[1]))):
        rows = groups[source, split]
        batches = (_published(_take(table, rows[i : i + batch_rows]), schema) for i in range(0, len(rows), batch_rows))
        size, kept = _write_shards(batches, data / source, split, max_bytes, schema)
        nbytes.setdefault(source, {})[split] = size
        configs.setdefault(source, {})[split] = len(rows)
        with_image += kept
    configs = {DEFAULT_CONFIG: _sum_splits(configs), **configs}
    nbytes = {DEFAULT_CONFIG: _sum_splits(nbytes), **nbytes}
    return Export(out_dir, configs, nbytes, features, len(ds), with_image, len(ds) - with_image, uncaptioned)


def _take(table, rows: list[int]) -> pa.Table:
    """Rows `rows` of the arrow-formatted stage: a zero-copy slice when they are contiguous (a stage sorted by id holds
    each source's rows together), else a gather."""
    if rows[-1] - rows[0] + 1 == len(rows):
        return table[rows[0] : rows[-1] + 1]
    return table[rows]


def _write_shards(batches, folder: Path, split: str, max_bytes: int, schema: pa.Schema) -> tuple[int, int]:
    """Write `batches` ((table, per-row bytes)) as `folder/<split>-NNNNN-of-NNNNN.parquet`, a new shard once one holds
    `max_bytes` of rows; return (bytes written, rows with an image). Shards get their final names at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    writer, held, total, images = None, 0.0, 0.0, 0
    try:
        for batch, sizes in batches:
            at = 0
            while at < len(batch):
                if writer is None:
                    done.append(folder / f".{split}-{len(done):05d}.tmp{os.getpid()}")
                    writer = pq.ParquetWriter(done[-1], schema)
                # the rows that fill this shard up to max_bytes (at least one)
                fill = np.cumsum(sizes[at:]) + held
                n = min(len(fill), int(np.searchsorted(fill, max_bytes, side="left")) + 1)
                piece = batch.slice(at, n)
                writer.write_table(piece, row_group_size=len(piece))
                held, total, at = fill[n - 1], total + (fill[n - 1] - held), at + n
                images += len(piece) - piece.column("image").null_count
                if held >= max_bytes:
                    writer.close()
                    writer, held = None, 0.0
    finally:
        if writer is not None:
            writer.close()
    for i, tmp in enumerate(done):
        os.replace(tmp, folder / f"{split}-{i:05d}-of-{len(done):05d}.parquet")
    return int(total), images


def _sum_splits(configs: dict[str, dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for per_split in configs.values():
        for split, n in per_split.items():
            total[split] = total.get(split, 0) + n
    return {s: total[s] for s in SPLITS if s in total}


def data_files(config: str, splits: dict[str, int]) -> list[dict]:
    """The `configs[].data_files` entry for `config` (the default config globs every source's folder)."""
    folder = "*" if config == DEFAULT_CONFIG else config
    return [{"split": split, "path": f"data/{folder}/{split}-*.parquet"} for split in splits]
