"""Training data: the input stage dir -> aspect buckets -> an on-disk cache of VAE latents + caption embeddings.

The cache is a HF dataset (`save_to_disk`) keyed by everything that changes its content, written in parts so a killed
cache build resumes where it stopped, and reused by every epoch and by later runs with the same key. Batches come from
one bucket at a time in an order fixed by (seed, epoch), so a data position is just (epoch, batch index).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, OfflineError
from .config import DataSection

CACHE_PART_ROWS = 256  # rows per cache part: the unit of resumable (and multi-process) work when building the cache
ENCODE_BATCH = 16  # rows per text-encoder / VAE call while caching


def buckets(area_side: int, multiple: int, max_aspect: float) -> list[tuple[int, int]]:
    """(width, height) pairs, multiples of `multiple`, each the largest width for its height under area_side**2."""
    area = area_side * area_side
    out = []
    for h in range(multiple, int(area_side * math.sqrt(max_aspect)) + multiple, multiple):
        w = (area // h) // multiple * multiple
        if w >= multiple and 1 / max_aspect <= w / h <= max_aspect:
            out.append((w, h))
    return out


def nearest_bucket(width: int, height: int, table: list[tuple[int, int]]) -> int:
    ratio = math.log(width / height)
    return min(range(len(table)), key=lambda i: abs(math.log(table[i][0] / table[i][1]) - ratio))


def load_rows(cfg: DataSection):
    """The training rows of `data.dataset` (image + caption), filtered to purify-kept rows when asked, and how many
    rows without a caption were left out (`data.on_missing_caption`)."""
    import datasets

    ref = Path(cfg.dataset).expanduser()
    if ref.is_dir() and ((ref / "state.json").exists() or (ref / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(ref))
        if isinstance(ds, datasets.DatasetDict):
            if cfg.split not in ds:
                raise InputError(f"data.dataset: {ref} has splits {', '.join(ds)}, not data.split={cfg.split!r}")
            ds = ds[cfg.split]
    elif ref.is_dir() and (ref / "README.md").is_file():  # a Hub-layout folder (push-dataset --local-dir)
        ds = datasets.load_dataset(str(ref), split=cfg.split)
    elif cfg.dataset.startswith((".", "/", "~")) or cfg.dataset.count("/") > 1 or ref.is_dir():
        raise InputError(
            f"data.dataset: {cfg.dataset} is not a dataset directory (no state.json from save_to_disk); "
            "pass the output dir of `retinalogos caption` or `retinalogos purify`"
        )
    else:
        try:
            ds = datasets.load_dataset(cfg.dataset, split=cfg.split)
        except (FileNotFoundError, ConnectionError, ValueError) as e:
            raise OfflineError(
                f"data.dataset: {cfg.dataset!r} is not a dataset dir and could not be loaded from the Hub ({type(e).__name__})",
                hint="pass a local dataset dir (caption/purify output) with data.dataset=/path/to/dir",
            ) from None
    where = f"data.dataset {cfg.dataset}"
    for col in ("image", "caption"):
        if col not in ds.column_names:
            fix = "run `retinalogos caption` on it first" if col == "caption" else "it must hold the stage images"
            raise InputError(f"{where}: no {col!r} column (found {', '.join(ds.column_names)}); {fix}")
    missing = [i for i, c in enumerate(ds["caption"]) if not c or not str(c).strip()]
    if missing and cfg.on_missing_caption == "error":
        first = ds[missing[0]].get("id", missing[0]) if "id" in ds.column_names else missing[0]
        raise InputError(
            f"{where}: {len(missing)} of {len(ds)} rows have no caption (first: {first}); retry them with "
            "`retinalogos caption run ... --retry-failed`, or set data.on_missing_caption=exclude"
        )
    if missing:
        left_out = set(missing)
        ds = ds.select([i for i in range(len(ds)) if i not in left_out])
    if cfg.require_purify_keep:
        if "purify_keep" not in ds.column_names:
            raise InputError(
                f"{where}: data.require_purify_keep is true but there is no 'purify_keep' column; run `retinalogos purify` first or set data.require_purify_keep=false"
            )
        ds = ds.filter(lambda keep: bool(keep), input_columns="purify_keep")
    if cfg.limit is not None:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    if len(ds) == 0:
        raise InputError(
            f"{where}: no training rows left (require_purify_keep={cfg.require_purify_keep}, "
            f"{len(missing)} without a caption)"
        )
    return ds, len(missing)


def check_upscaling(rows, table: list[tuple[int, int]], cfg: DataSection) -> int:
    """How many rows are smaller than their bucket (training would upsample them); refuses past
    `data.max_upscaled`. Reads the stage's width/height columns, so no image is decoded; 0 when they are absent."""
    if "width" not in rows.column_names or "height" not in rows.column_names:
        return 0
    small = 0
    for w, h in zip(rows["width"], rows["height"]):
        if w and h:
            bw, bh = table[nearest_bucket(w, h, table)]
            small += w < bw or h < bh
    if small > cfg.max_upscaled * len(rows):
        sides = max(max(b) for b in table)
        raise InputError(
            f"data.dataset {cfg.dataset}: {small} of {len(rows)} rows are smaller than their bucket at "
            f"data.resolution={cfg.resolution} and would be upsampled (data.max_upscaled={cfg.max_upscaled:g}); "
            f"curate at size >= {sides} (recipes/curate/default.yaml `size`) or lower data.resolution"
        )
    return small


def cache_key(fingerprint: str, parts: dict) -> str:
    return hashlib.sha256(json.dumps({"rows": fingerprint, **parts}, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def _to_pixels(img, size: tuple[int, int]) -> torch.Tensor:
    """Resize to cover the bucket, centre-crop, scale to [-1, 1]. No flips: a flip turns a left eye into a right eye."""
    from PIL import Image

    w, h = size
    img = img.convert("RGB")
    scale = max(w / img.width, h / img.height)
    rw, rh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((rw, rh), Image.Resampling.BICUBIC)
    left, top = (rw - w) // 2, (rh - h) // 2
    arr = np.asarray(img.crop((left, top, left + w, top + h)), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1)


def build_cache(
    rows,
    pipe,
    backbone,
    cfg: DataSection,
    max_length: int,
    cache_dir: Path,
    *,
    rank: int = 0,
    world: int = 1,
    barrier=lambda: None,
    log=print,
):
    """Encode every row once (latent + caption embedding) into `cache_dir`; returns the cached dataset.

    With several processes, process `rank` encodes parts rank, rank + world, ...; `barrier` waits for all of them
    before process 0 joins the parts."""
    import datasets

    done = cache_dir / "dataset"
    if (done / "state.json").exists():
        return datasets.load_from_disk(str(done))
    table = buckets(cfg.resolution, backbone.multiple(pipe), cfg.max_aspect)
    parts_dir = cache_dir / "parts"
    n_parts = math.ceil(len(rows) / CACHE_PART_ROWS)
    for p in range(rank, n_parts, world):
        part = parts_dir / f"part-{p:05d}"
        if (part / "state.json").exists():
            continue  # resumed: this part was finished before the kill
        first = p * CACHE_PART_ROWS
        chunk = rows.select(range(first, min(len(rows), first + CACHE_PART_ROWS)))
        records = _encode(chunk, first, pipe, backbone, table, max_length, np.dtype(cfg.cache_dtype), cfg.cache_text)
        datasets.Dataset.from_list(records).save_to_disk(str(part))
        log(f"cached part {p + 1}/{n_parts} ({len(records)} rows)")
    barrier()
    if rank == 0:
        # the empty caption (caption dropout), written before `dataset/`, whose state.json marks the cache complete
        emb, mask = backbone.encode_prompts(pipe, [""], max_length)
        torch.save({"text": emb[0, mask[0].bool()].float().cpu(), "buckets": table}, cache_dir / "uncond.pt")
        parts = [datasets.load_from_disk(str(parts_dir / f"part-{p:05d}")) for p in range(n_parts)]
        datasets.concatenate_datasets(parts).save_to_disk(str(done))
        shutil.rmtree(parts_dir)  # the concatenated copy is the cache now
    barrier()
    return datasets.load_from_disk(str(done))


def _encode(chunk, first: int, pipe, backbone, table, max_length: int, dtype, cache_text: bool) -> list[dict]:
    """Cache records for `chunk`, ENCODE_BATCH rows per text-encoder call and per bucket per VAE call; without
    `cache_text` the caption itself is kept (encoded at every step instead)."""
    records = []
    for start in range(0, len(chunk), ENCODE_BATCH):
        sub = chunk[start : start + ENCODE_BATCH]
        images = sub["image"]
        if any(img is None for img in images):  # a licence-stripped Hub export: labels and captions but no pixels
            bad = sub["id"][[img is None for img in images].index(True)] if "id" in sub else first + start
            raise InputError(
                f"data.dataset: row {bad} has no image; put the images back with `retinalogos attach-images` "
                "or train on the caption/purify stage directory"
            )
        captions = [c or "" for c in sub["caption"]]
        if cache_text:
            emb, mask = backbone.encode_prompts(pipe, captions, max_length)
        bucket = [nearest_bucket(img.width, img.height, table) for img in images]
        latents: list = [None] * len(images)
        for b in sorted(set(bucket)):
            idx = [i for i, x in enumerate(bucket) if x == b]
            encoded = backbone.encode_images(pipe, torch.stack([_to_pixels(images[i], table[b]) for i in idx]))
            for i, latent in zip(idx, encoded):
                latents[i] = latent.cpu().numpy().astype(dtype)
        for i, latent in enumerate(latents):
            record = {
                "id": sub["id"][i] if "id" in sub else str(first + start + i),
                "bucket": bucket[i],
                "latent": latent.tobytes(),
                "latent_shape": list(latent.shape),
            }
            if cache_text:
                text = emb[i, mask[i].bool()].cpu().numpy().astype(dtype)  # the caption's tokens, padding dropped
                record.update(text=text.tobytes(), text_shape=list(text.shape))
            else:
                record["caption"] = captions[i]
            records.append(record)
    return records


@dataclass
class Position:
    """Where the data stream is: registered with accelerate so checkpoints restore it."""

    epoch: int = 0
    index: int = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


class Batches:
    """Deterministic bucketed batches; process `rank` of `world` takes every world-th batch."""

    def __init__(self, cache, uncond: torch.Tensor, batch_size: int, seed: int, rank: int, world: int, dtype: str):
        self.cache, self.uncond, self.batch_size, self.seed = cache, uncond, batch_size, seed
        self.rank, self.world, self.dtype = rank, world, np.dtype(dtype)
        self.bucket_of = list(cache["bucket"])
        # straight from the memory-mapped Arrow table: datasets' row formatting costs more than a tiny training step
        table = cache.data.table
        self.cached_text = "text" in cache.column_names
        names = ("latent", "latent_shape", *(("text", "text_shape") if self.cached_text else ("caption",)))
        self._cols = {c: table.column(c) for c in names}
        self.pos = Position()
        self._plan: tuple[int, list[list[int]]] = (-1, [])

    def _mine(self, epoch: int) -> list[list[int]]:
        if self._plan[0] != epoch:  # one shuffle per epoch, not per batch
            self._plan = (epoch, self._epoch_batches(epoch))
        return self._plan[1]

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        by_bucket: dict[int, list[int]] = {}
        for i, b in enumerate(self.bucket_of):
            by_bucket.setdefault(b, []).append(i)
        batches = []
        for b in sorted(by_bucket):
            idx = by_bucket[b]
            rng.shuffle(idx)
            batches += [idx[i : i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        rng.shuffle(batches)
        while len(batches) % self.world:  # every process gets the same number of batches (no DDP hang)
            batches.append(batches[len(batches) % max(1, len(batches))])
        return batches[self.rank :: self.world]

    def next(self) -> tuple[torch.Tensor, list]:
        """(latents [B,C,H,W], caption embeddings [L_i, D] unpadded, or the captions themselves when the cache holds
        no text: caption dropout swaps some for the empty caption before padding)."""
        mine = self._mine(self.pos.epoch)
        if self.pos.index >= len(mine):
            self.pos.epoch, self.pos.index = self.pos.epoch + 1, 0
            mine = self._mine(self.pos.epoch)
        rows = mine[self.pos.index]
        self.pos.index += 1
        latents = torch.stack([self._tensor(self._cols["latent"], self._cols["latent_shape"], i) for i in rows])
        if not self.cached_text:
            return latents, [self._cols["caption"][i].as_py() for i in rows]
        return latents, [self._tensor(self._cols["text"], self._cols["text_shape"], i) for i in rows]

    def _tensor(self, values, shapes, i: int) -> torch.Tensor:
        arr = np.frombuffer(values[i].as_buffer(), dtype=self.dtype).reshape(shapes[i].as_py())
        return torch.from_numpy(arr.astype(np.float32))  # a copy: the Arrow buffer is read-only memory-mapped


def pad_texts(texts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(t.shape[0] for t in texts)
    emb = torch.zeros(len(texts), length, texts[0].shape[1])
    mask = torch.zeros(len(texts), length, dtype=torch.long)
    for i, t in enumerate(texts):
        emb[i, : t.shape[0]], mask[i, : t.shape[0]] = t, 1
    return emb, mask
