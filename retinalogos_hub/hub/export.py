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

import io
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, Image, Value, load_from_disk
from datasets.utils.py_utils import convert_file_size_to_int
from PIL import Image as PILImage

from ..errors import InputError
from ..licenses import license_for
from ..schema import CAPTIONED, require_columns

DEFAULT_CONFIG = "all"
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
    empty = [i for i, c in enumerate(ds["caption"]) if c is None or not str(c).strip()]
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
    bad = sorted({s for s in set(ds["source"]) if not _CONFIG_NAME.match(str(s))})
    if bad:
        raise InputError(f"{in_dir}: source name(s) {bad} cannot be config names (letters, digits, _ . - only)")
    for source in sorted(set(ds["source"])):
        license_for(source)  # LicenseError names the source and the file to edit
    splits = sorted(set(ds["split"]) - set(SPLITS), key=str)
    if splits:
        raise InputError(f"{in_dir}: column 'split' has value(s) {splits}; expected one of {', '.join(SPLITS)}")
    return ds, len(empty)


# JPEG segments kept: the ones needed to decode (APP0 JFIF, APP14 Adobe colour transform, tables, frame, scan).
# Dropped: APP1 (EXIF, XMP), APP2 (ICC), APP3-13 and APP15 (IPTC, maker data), COM (comments).
_JPEG_KEEP_APP = {0xE0, 0xEE}
# PNG ancillary chunks dropped: text, EXIF, ICC, time. Critical chunks and rendering hints are kept.
_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME"}


def _strip_jpeg(data: bytes) -> bytes | None:
    out, i = bytearray(data[:2]), 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data to the end, copied as is
            return bytes(out + data[i:])
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE) or marker in _JPEG_KEEP_APP:
            out += data[i : i + 2 + length]
        i += 2 + length
    return None


def _strip_png(data: bytes) -> bytes | None:
    out, i = bytearray(data[:8]), 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        if kind not in _PNG_DROP:
            out += data[i : i + 12 + length]
        i += 12 + length
        if kind == b"IEND":
            return bytes(out)
    return None


def strip_metadata(data: bytes) -> bytes:
    """The image without EXIF/XMP/ICC/IPTC/comments/text. JPEG and PNG lose only those segments/chunks (pixels
    untouched, no re-encode); any other format is re-encoded from pixels as PNG."""
    stripped = None
    if data[:2] == b"\xff\xd8":
        stripped = _strip_jpeg(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        stripped = _strip_png(data)
    if stripped is not None:
        return stripped
    src = PILImage.open(io.BytesIO(data))
    clean = PILImage.frombytes(*_mode_size(src), src.convert(_mode_size(src)[0]).tobytes())  # pixels only
    out = io.BytesIO()
    clean.save(out, "PNG")
    return out.getvalue()


def _mode_size(im: PILImage.Image) -> tuple[str, tuple[int, int]]:
    return (
        "RGBA"
        if "A" in im.getbands() or "transparency" in im.info
        else "RGB"
        if im.mode not in ("L", "I;16")
        else im.mode
    ), im.size


def _published(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """One source's rows as published: the columns its tier withholds are null, images are kept (stripped of
    metadata) only where the tier and the row allow, and `image_origin` says where to obtain the rest."""
    lic = license_for(batch.column("source")[0].as_py())
    n = len(batch)
    cols = {name: batch.column(name) for name in batch.column_names}
    for name in lic.withheld():
        if name in cols:
            cols[name] = pa.nulls(n, cols[name].type)
    images = batch.column("image").combine_chunks()
    keep = [lic.redistributable and bool(r) for r in batch.column("redistributable").to_pylist()]
    data = [strip_metadata(b) if k and b is not None else None for k, b in zip(keep, images.field("bytes").to_pylist())]
    keep = [k and b is not None for k, b in zip(keep, data)]
    cols["image"] = pa.StructArray.from_arrays(
        [pa.array(data, pa.binary()), pa.nulls(n, pa.string())],
        names=["bytes", "path"],
        mask=pa.array([not k for k in keep]),
    )
    cols["image_origin"] = pa.array([None if k else lic.url for k in keep], pa.string())
    return pa.table([cols[f.name] for f in schema], schema=schema)


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
        len(ds), ds.data.nbytes
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
    for i, key in enumerate(zip(ds["source"], ds["split"])):
        groups.setdefault(key, []).append(i)
    table = ds.with_format("arrow")
    configs: dict[str, dict[str, int]] = {}
    nbytes: dict[str, dict[str, int]] = {}
    with_image = 0
    for source, split in sorted(groups, key=lambda k: (k[0], SPLITS.index(k[1]))):
        rows = groups[source, split]
        batches = (_published(table[rows[i : i + batch_rows]], schema) for i in range(0, len(rows), batch_rows))
        size, kept = _write_shards(batches, data / source, split, max_bytes, schema)
        nbytes.setdefault(source, {})[split] = size
        configs.setdefault(source, {})[split] = len(rows)
        with_image += kept
    configs = {DEFAULT_CONFIG: _sum_splits(configs), **configs}
    nbytes = {DEFAULT_CONFIG: _sum_splits(nbytes), **nbytes}
    return Export(out_dir, configs, nbytes, features, len(ds), with_image, len(ds) - with_image, uncaptioned)


def _write_shards(batches, folder: Path, split: str, max_bytes: int, schema: pa.Schema) -> tuple[int, int]:
    """Write `batches` as `folder/<split>-NNNNN-of-NNNNN.parquet`, a new shard once one holds `max_bytes` of arrow
    data; return (arrow bytes written, rows with an image). Shards are renamed to their final names at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    writer, held, total, images = None, 0, 0, 0
    try:
        for batch in batches:
            while len(batch):
                if writer is None:
                    done.append(folder / f".{split}-{len(done):05d}.tmp{os.getpid()}")
                    writer = pq.ParquetWriter(done[-1], schema)
                per_row = batch.nbytes / len(batch)
                fit = max(1, math.ceil((max_bytes - held) / per_row)) if per_row else len(batch)
                piece, batch = batch.slice(0, fit), batch.slice(fit)
                writer.write_table(piece, row_group_size=len(piece))
                held += piece.nbytes
                total += piece.nbytes
                images += len(piece) - piece.column("image").null_count
                if held >= max_bytes:
                    writer.close()
                    writer, held = None, 0
    finally:
        if writer is not None:
            writer.close()
    for i, tmp in enumerate(done):
        os.replace(tmp, folder / f"{split}-{i:05d}-of-{len(done):05d}.parquet")
    return total, images


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
