"""`curate`: source layouts -> one deduplicated, patient-split, licence-tagged HF dataset directory + manifest.

Flow (each step streams; nothing holds all images in memory):
  1. enumerate the adapters' records (this shard's share) into `OUT/.work/curate/shard-<i>-of-<N>/inputs.parquet`;
  2. process every input not yet done, in worker processes, committing work rows in small parquet parts (resumable);
  3. finalize (unsharded runs, or `merge` over shard outputs): dedup, splits, `manifest.parquet`, the dataset
     (`Dataset.from_generator`, then `stage.save_dataset`) and `OUT/retinalogos.json` (the provenance, with the
     counts and the stamp that lets an unchanged rerun skip the rebuild).
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import stage
from ..config import load_config
from ..errors import InputError, RetinalogosError, SourceError
from ..licenses import license_for
from ..privacy import Protector, band_of, read_mapping, write_mapping
from ..schema import CURATED, make_id
from ..shards import parse_shard, shard_of  # noqa: F401  (parse_shard re-exported for the CLI)
from ..sources import get_source, make_config, parse_sources  # noqa: F401  (parse_sources re-exported)
from ..sources.base import complete, position
from .dedup import Item, find_duplicates
from .process import THUMB, process
from .settings import WORK_VERSION, CurateConfig
from .splits import assign, patient_key
from .work import META, STAGE, ShardWork, shard_dirs

LABELS = (
    "patient_id",
    "eye",
    "dr_grade",
    "dme",
    "glaucoma",
    "diseases",
    "findings",
    "age",
    "age_band",
    "sex",
    "quality",
)
MANIFEST = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("duplicate_of", pa.string()),
        ("split", pa.string()),
        ("orientation", pa.string()),  # what `rotate_unnotched` did to a source's image; null: unchecked
        ("match_transform", pa.string()),  # a duplicate: identity | mirror | rotate180 turns it into duplicate_of
    ]
)


@dataclass
class CurateResult:
    out: Path
    inputs: int
    kept: int
    excluded: int
    duplicates: int
    processed: int = 0  # work rows computed by this call (0 when everything was already done)
    splits: dict[str, int] = field(default_factory=dict)
    merged: bool = True  # False for a `--shard` run: `merge` builds the dataset

    @property
    def manifest(self) -> Path:
        return self.out / "manifest.parquet"


def curate(
    sources: Sequence[tuple[str, Path]],
    out: Path,
    *,
    cfg: CurateConfig | None = None,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
) -> CurateResult:
    """Curate `sources` ((name, root) pairs) into `out` with `cfg` (default: the shipped recipe). With `shard=(i, N)`
    only that share is processed and the dataset is left to `merge`. Rerunning skips finished work; a killed run
    resumes from its last committed part."""
    cfg = cfg if cfg is not None else load_config(CurateConfig)
    if not sources:
        raise SourceError("no sources given; pass --source NAME=PATH (see `retinalogos sources`)")
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        twice = ", ".join(sorted({n for n in names if names.count(n) > 1}))
        raise SourceError(f"source given twice: {twice}; one --source per name")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise InputError(f"shard {shard}: expected (i, N) with 0 <= i < N")
    for name in cfg.rotate_unnotched:
        try:
            get_source(name)
        except SourceError as e:
            raise SourceError(f"config rotate_unnotched: {e}") from None
    for name, root in sources:  # cheap checks before anything is written under `out`
        get_source(name)
        license_for(name)
        if not Path(root).is_dir():
            raise SourceError(f"{name}: directory not found: {root}")
    cfg.privacy.check([name for name in names if license_for(name).private])
    run = stage.start(STAGE, out, cfg, **dict(sources))
    work = ShardWork(Path(out), shard or (0, 1))
    with work.lock("curate run"):
        if not work.parts():
            work.write_state()  # no work rows yet: the settings of an earlier attempt bind nothing
        work.bind(
            cfg.work_settings(),
            hint="curate reuses work rows only with the same image settings (size, "
            "format, jpeg_quality, fov, rotate_unnotched) and version; rerun with those, choose a new --out, "
            f"or delete {work.dir} to start over",
        )
        n_inputs, inputs_fp = work.write_inputs(_enumerate(sources, cfg, shard, Path(out)))
        state = {
            **work.state(),
            "shard": list(work.shard),
            "config": asdict(cfg),
            "sources": {name: str(root) for name, root in sources},
            "inputs": n_inputs,
            "inputs_fingerprint": inputs_fp,
        }
        work.write_state(**{**state, "complete": False})
        processed = _process_all(work, cfg, workers, progress)
        work.write_state(**{**state, "complete": True})
        if shard is None:
            return _finalize([work], Path(out), cfg, processed, run)
    statuses = [pq.read_table(p, columns=["status"]) for p in work.parts()]
    status = pc.value_counts(pa.concat_tables(statuses or [pa.table({"status": pa.array([], pa.string())})])["status"])
    kept = {s["values"].as_py(): s["counts"].as_py() for s in status}.get("ok", 0)
    run.finish(inputs=n_inputs, kept=kept, excluded=n_inputs - kept, shard=f"{shard[0]}/{shard[1]}")
    return CurateResult(Path(out), n_inputs, kept, n_inputs - kept, 0, processed, merged=False)


def merge(shard_outs: Sequence[Path], out: Path, *, cfg: CurateConfig | None = None) -> CurateResult:
    """Join `--shard i/N` outputs (one or several OUT directories holding all N shards) into one dataset at `out`:
    dedup and splits run here, over all shards together, with `cfg` (default: the config the shards recorded; a
    given one must share their image settings)."""
    shards = shard_dirs(shard_outs)
    if not shards:
        old = [str(o) for o in shard_outs if any((Path(o) / stage.WORK).glob("shard-*-of-*"))]
        why = f" ({', '.join(old)} holds shards of an older version: rerun them)" if old else ""
        raise InputError(
            f"no shard work found under {', '.join(map(str, shard_outs))}/{stage.WORK}/{STAGE}{why}; "
            "run `retinalogos curate run --shard i/N` first"
        )
    counts = sorted({s.shard[1] for s in shards})
    if len(counts) != 1:
        raise InputError(
            f"shard outputs of different shard counts ({', '.join(f'/{n}' for n in counts)}); "
            "merge one sharding at a time"
        )
    n = counts[0]
    by_index: dict[int, ShardWork] = {}
    for s in shards:
        by_index.setdefault(s.shard[0], s)
    missing = [str(i) for i in range(n) if i not in by_index]
    if missing:
        raise InputError(
            f"shards {', '.join(missing)} of {n} are missing; run `retinalogos curate run --shard i/{n}` for them"
        )
    chosen = [by_index[i] for i in range(n)]
    states = [s.state() for s in chosen]
    unfinished = [f"{i}/{n}" for i, st in enumerate(states) if not st.get("complete")]
    if unfinished:
        raise InputError(
            f"shards {', '.join(unfinished)} did not finish; "
            "rerun `retinalogos curate run --shard` for them (it resumes)"
        )
    old = [f"{i}/{n}" for i, st in enumerate(states) if st.get("settings", {}).get("version") != WORK_VERSION]
    if old:
        raise InputError(
            f"shards {', '.join(old)} were curated by an older version of retinalogos; rerun "
            "`retinalogos curate run --shard` for every shard into new --out directories"
        )
    if len({stage.fingerprint(st["settings"]) for st in states}) != 1:
        raise InputError(
            "shards were curated with different image settings (size/format/FOV/orientation); "
            "rerun them with one recipe"
        )
    if cfg is None:
        if len({stage.fingerprint(st["config"]["dedup"], st["config"]["splits"]) for st in states}) != 1:
            raise InputError(
                "shards were curated with different dedup or split settings; choose the merge's with --recipe"
            )
        cfg = load_config(CurateConfig, data=states[0]["config"])
    elif cfg.fingerprint() != stage.fingerprint(states[0]["settings"]):
        raise InputError(
            "the recipe's image settings (size/format/FOV/orientation) differ from the ones the shards "
            "were curated with; merge with their recipe (or none: the shards' own is used)"
        )
    roots: dict[str, str] = {}  # the sources, as the shards saw them (the shards' work is in the stamp)
    for st in states:
        for name, root in st["sources"].items():
            roots.setdefault(name, root)
    run = stage.start(STAGE, out, cfg, **roots)
    for shard_out in dict.fromkeys(s.out for s in chosen):  # private sources' id mappings, all in the merged OUT
        if Path(shard_out).resolve() != Path(out).resolve():
            write_mapping(out, read_mapping(shard_out))
    return _finalize(chosen, Path(out), cfg, 0, run)


# ---------------------------------------------------------------------------------------------------------------------
# 1. enumerate


def _enumerate(
    sources: Sequence[tuple[str, Path]], cfg: CurateConfig, shard: tuple[int, int] | None, out: Path
) -> Iterator[dict]:
    for name, root in sources:
        module = get_source(name)  # unknown names fail here, listing the known ones
        lic = license_for(name)  # fail before hours of work, not at the end
        options = cfg.sources.get(name) or {}
        try:
            src_cfg = make_config(name, Path(root), **options)
        except TypeError as e:
            raise SourceError(f"{name}: bad adapter option in config `sources.{name}`: {e}") from None
        seen: set[str] = set()
        protector = Protector(name, cfg.privacy) if lic.private else None
        for rec in source_records(name, _noted(name, root, module.records(src_cfg)), cfg, protector):
            row_id = make_id(name, rec["source_id"])
            reason = None
            if row_id in seen:  # two files with one stem (x.jpg and x.png): ids must stay unique
                reason = f"another file of {name} has the same id {row_id}"
            seen.add(row_id)
            if shard is not None and shard_of(row_id, shard[1]) != shard[0]:
                continue
            rec.update(id=row_id, source=name, license=lic.license, redistributable=lic.redistributable)
            yield {"id": row_id, "source": name, "path": rec["path"], "record": json.dumps(rec), "reason": reason}
        if not seen:
            raise SourceError(f"{name}: no images found under {root}; expected {module.INFO.expects}")
        if protector is not None:
            write_mapping(out, protector.mapping)


def source_records(name: str, recs: Iterator[dict], cfg: CurateConfig, protector: Protector | None) -> Iterator[dict]:
    """An adapter's records as curation stores them: the full contract, an age band, and for a private source the
    protection of `privacy.py` (hashed ids, no exact age, free text dropped or scrubbed). `attach-images` and
    `attach-labels` match exported rows through the same records."""
    for rec in recs:
        known = rec.get("identifiers") or []  # a private source's identifier values: scrubbed from text, never stored
        rec = complete(rec)
        rec["age_band"] = band_of(rec["age"], cfg.privacy)
        yield protector.protect(rec, known) if protector is not None else rec


def _noted(name: str, root: Path, recs: Iterator[dict]) -> Iterator[dict]:
    """The adapter's records; an exception it did not type gets a note naming the source and the label file and row
    it was on (the CLI prints them in its one line)."""
    position(reset=True)
    try:
        yield from recs
    except RetinalogosError:
        raise
    except Exception as e:
        at = position()
        e.add_note(f"source {name} at {root}" + (f", file {at[0]} row {at[1]}" if at else ""))
        raise


# ---------------------------------------------------------------------------------------------------------------------
# 2. process


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker; OpenCV's own pool would oversubscribe


def _process_all(work: ShardWork, cfg: CurateConfig, workers: int, show: bool) -> int:
    done = work.done_ids()
    todo = sum(1 for r in work.iter_inputs(["id", "reason"]) if not r["reason"] and r["id"] not in done)
    if todo == 0:
        return 0
    records = (
        json.loads(r["record"])
        for r in work.iter_inputs(["id", "record", "reason"])
        if not r["reason"] and r["id"] not in done
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    pool = _pool(workers) if workers > 1 else None
    if pool is None:
        _init_worker()
    buf: list[dict] = []
    try:
        with Progress(
            TextColumn("curate {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not show,
        ) as bar:
            task = bar.add_task(f"shard {work.shard[0]}/{work.shard[1]}", total=todo)
            rows = _parallel(pool, records, cfg, workers) if pool else (process(r, cfg) for r in records)
            for row in rows:
                buf.append(row)
                bar.advance(task)
                if len(buf) >= cfg.commit_every:
                    work.commit_rows(buf)
                    buf = []
    except BrokenProcessPool:
        raise InputError(
            "a curate worker process died (out of memory, killed, or the calling script re-ran itself in the worker)",
            hint='when calling curate(workers>1) from a script, put the call under `if __name__ == "__main__":`; '
            "rerunning resumes from the committed work",
        ) from None
    finally:
        if buf:  # an interrupted run keeps what it finished
            work.commit_rows(buf)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return todo


def _pool(workers: int) -> ProcessPoolExecutor:
    # not plain fork: a parent that already ran OpenCV (or any threaded library) can deadlock its forked children;
    # forkserver forks from a clean server process (fast after the first start), spawn elsewhere.
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)


def _parallel(pool: ProcessPoolExecutor, records: Iterator[dict], cfg: CurateConfig, workers: int) -> Iterator[dict]:
    """Results in completion order with a bounded number in flight (memory stays flat however many inputs)."""
    pending: set = set()
    for rec in records:
        pending.add(pool.submit(process, rec, cfg))
        if len(pending) >= 4 * workers:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in finished)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from (f.result() for f in finished)


# ---------------------------------------------------------------------------------------------------------------------
# 3. finalize: dedup, splits, manifest, dataset


def _finalize(
    shards: list[ShardWork], out: Path, cfg: CurateConfig, processed: int, run: stage.StageRun
) -> CurateResult:
    scratch = stage.WorkDir(out, STAGE, "finalize")  # the dataset generator's cache
    with scratch.lock("curate finalize"):  # one finalize per OUT at a time
        try:
            return _build(shards, out, cfg, processed, run, scratch)
        finally:
            scratch.remove()


def _build(
    shards: list[ShardWork], out: Path, cfg: CurateConfig, processed: int, run: stage.StageRun, scratch: stage.WorkDir
) -> CurateResult:
    parts = [p for s in shards for p in s.parts()]
    # the stamp changes whenever the config, the inputs or the work rows change; it is kept in the provenance's counts
    stamp = stage.fingerprint(cfg, [s.key() for s in shards])
    if processed == 0 and (out / stage.PROVENANCE).is_file() and (out / "dataset_info.json").is_file():
        old = stage.read_provenance(out)
        if old.get("stage") == STAGE and old["counts"].get("stamp") == stamp:  # nothing changed: skip the rebuild
            c = old["counts"]
            return CurateResult(out, c["inputs"], c["kept"], c["excluded"], c["duplicates"], 0, c["splits"])
    # 1. one metadata row per input (first work row wins if a shard was given twice)
    meta = pa.concat_tables([pq.read_table(p, columns=META) for p in parts]) if parts else None
    index: dict[str, int] = {}
    for i, row_id in enumerate(meta.column("id").to_pylist() if meta is not None else []):
        index.setdefault(row_id, i)
    cols = dict(zip(META, _columns(meta, META)))
    records, statuses, reasons = cols["record"], cols["status"], cols["reason"]
    n_inputs, items, kept_meta = 0, [], {}
    for s in shards:
        for r in s.iter_inputs(["id", "reason"]):
            n_inputs += 1
            if r["reason"]:
                continue
            i = index.get(r["id"])
            if i is None:
                raise InputError(
                    f"{s.dir}: input {r['id']} has no work row; rerun the same curate command to finish it"
                )
            if statuses[i] == "ok":
                rec = json.loads(records[i])
                items.append(_item(rec, cols, i))
                kept_meta[rec["id"]] = (patient_key(rec["source"], rec.get("patient_id"), rec["id"]), rec.get("split"))
    # 2. dedup over readable fundus images
    dups = find_duplicates(items, lambda ids: _thumbs(parts, ids), cfg.dedup)
    # 3. patient-level splits over the canonical rows; a duplicate links its patient to the kept row's patient
    links = []
    for dup_id, (keep_id, _, _) in dups.items():
        links.append((kept_meta[dup_id][0], kept_meta[keep_id][0]))
    canon = {k: v for k, v in kept_meta.items() if k not in dups}
    by_patient = assign(canon.values(), links, cfg.splits)
    split_of = {k: by_patient[key] for k, (key, _) in canon.items()}
    # 4. manifest: one row per input file
    counts = _write_manifest(out, shards, index, statuses, reasons, cols["orientation"], dups, split_of)
    # 5. the dataset; inputs = kept + excluded + duplicate, and every kept row is in it exactly once
    rows = _write_dataset(out, parts, split_of, scratch)
    if sum(counts.values()) != n_inputs or rows != counts["kept"] or rows != len(split_of):
        raise AssertionError(f"{n_inputs} inputs but manifest {counts} and {rows} dataset rows")
    splits = {s: n for s in ("train", "validation", "test") if (n := sum(1 for v in split_of.values() if v == s))}
    # 6. the provenance, last: a finalize killed before this line is redone by the next run
    run.finish(
        inputs=n_inputs,
        kept=counts["kept"],
        excluded=counts["excluded"],
        duplicates=counts["duplicate"],
        splits=splits,
        stamp=stamp,
    )
    return CurateResult(out, n_inputs, counts["kept"], counts["excluded"], counts["duplicate"], processed, splits)


def _columns(meta: pa.Table | None, names: list[str]) -> list[list]:
    return [meta.column(n).to_pylist() if meta is not None else [] for n in names]


def _item(rec: dict, cols: dict[str, list], i: int) -> Item:
    richness = sum(1 for k in LABELS if rec.get(k) not in (None, [], ""))
    rank = (not rec["redistributable"], -richness, -(cols["quality_score"][i] or 0.0), rec["id"])
    return Item(
        rec["id"],
        cols["sha256"][i],
        cols["pixels"][i],
        cols["phash"][i],
        rank,
        cols["phash_mirror"][i],
        cols["phash_rot180"][i],
    )


def _thumbs(parts: list[Path], ids: set[str]) -> dict[str, np.ndarray]:
    """Thumbnails of just `ids`, streamed part by part."""
    out = {}
    for p in parts:
        t = pq.read_table(p, columns=["id", "thumb"])
        for row_id, thumb in zip(t.column("id").to_pylist(), t.column("thumb").to_pylist()):
            if row_id in ids and row_id not in out and thumb is not None:
                out[row_id] = np.frombuffer(thumb, np.uint8).reshape(THUMB, THUMB)
    return out


def _write_manifest(out, shards, index, statuses, reasons, orientations, dups, split_of) -> dict[str, int]:
    counts = {"kept": 0, "excluded": 0, "duplicate": 0}
    sink = pa.BufferOutputStream()  # no pixels: small enough to build in memory, then commit atomically
    with pq.ParquetWriter(sink, MANIFEST) as w:
        for s in shards:
            batches = pq.ParquetFile(s.inputs).iter_batches(batch_size=4096, columns=["id", "source", "path", "reason"])
            for batch in batches:
                rows = []
                for r in batch.to_pylist():
                    i = index.get(r["id"])
                    how = None
                    if r["reason"]:
                        status, reason, dup = "excluded", r["reason"], None
                    elif statuses[i] != "ok":
                        status, reason, dup = "excluded", reasons[i], None
                    elif r["id"] in dups:
                        status, (dup, reason, how) = "duplicate", dups[r["id"]]
                    else:
                        status, reason, dup = "kept", None, None
                    counts[status] += 1
                    rows.append(
                        {
                            **r,
                            "status": status,
                            "reason": reason,
                            "duplicate_of": dup,
                            "split": split_of.get(r["id"]) if status == "kept" else None,
                            "orientation": orientations[i] if i is not None else None,
                            "match_transform": how,
                        }
                    )
                w.write_table(pa.Table.from_pylist(rows, MANIFEST))
    stage.atomic_write(out / "manifest.parquet", sink.getvalue().to_pybytes())
    return counts


def _rows(parts: list[str], keep: str) -> Iterator[dict]:
    t = pq.read_table(keep)
    split_of = dict(zip(t.column("id").to_pylist(), t.column("split").to_pylist()))
    emitted = set()
    for p in parts:
        for batch in pq.ParquetFile(p).iter_batches(batch_size=64):
            for r in batch.to_pylist():
                row_id = r["id"]
                if row_id not in split_of or row_id in emitted:
                    continue
                emitted.add(row_id)
                rec = json.loads(r["record"])
                yield {
                    "image": {"bytes": r["image"], "path": None},
                    **{k: rec.get(k) for k in ("id", "source", "source_id", *LABELS, "license", "redistributable")},
                    "quality_score": r["quality_score"],
                    "width": r["width"],
                    "height": r["height"],
                    "split": split_of[row_id],
                    "official_split": rec.get("split"),
                }


def _write_dataset(out: Path, parts: list[Path], split_of: dict[str, str], scratch: stage.WorkDir) -> int:
    from datasets import Dataset

    keep = scratch.commit("keep.parquet", _parquet(pa.table({"id": list(split_of), "split": list(split_of.values())})))
    ds = Dataset.from_generator(
        _rows,
        features=CURATED,
        cache_dir=str(scratch.path("cache")),
        gen_kwargs={"parts": [str(p) for p in parts], "keep": str(keep)},
    )
    ds = ds.sort("id")  # deterministic row order whatever the worker count or resume history
    stage.save_dataset(ds, out)
    return len(ds)


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
