"""`caption_dataset`: curated dataset dir -> captioned dataset dir (schema.CAPTIONED), sharded and resumable.

Work in progress lives in `OUT/.work/caption/` (append-only part files, see `shards`); its state holds the settings
every job on this output shares, the input and the resolved config. When every row has a caption the parts are
merged into `OUT` (`stage.save_dataset`) and `OUT/retinalogos.json` records the run. The work folder stays after the
merge: it is small (captions only), keeps guarding `OUT` against a rerun with other settings, and makes a rerun of
the same command a no-op.
"""

from __future__ import annotations

import dataclasses
import io
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from datasets import Image

from .. import stage
from ..errors import InputError
from ..schema import CAPTION_COLUMNS, CAPTION_FIELD_NAMES, CAPTIONED, CURATED, require_columns
from ..shards import parse_shard
from . import shards as sh
from .backends import Item, make_backend
from .config import CaptionConfig
from .guard import check
from .prompt import build_prompt, parse_response

LABELS = [c for c in CURATED if c != "image"]
STAGE = "caption"


@dataclass
class CaptionResult:
    out: Path
    rows: int  # rows captioned by this job (its shard) or, after a merge, rows in the dataset
    flagged: int  # of those, rows whose caption_consistent is False (inconsistent, malformed or unreadable)
    merged: bool  # the dataset in `out` is complete (every shard done)
    failed: int = 0  # of those, rows without a caption (their caption_issues say why); retry with retry_failed
    note: str | None = None  # e.g. that template captions come from the labels only


def caption_dataset(
    in_dir: Path,
    out_dir: Path,
    cfg: CaptionConfig,
    *,
    shard: str | tuple[int, int] | None = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> CaptionResult:
    """Caption every row of the dataset in `in_dir` (or shard i/N of it) into `out_dir`, as `cfg` says.

    Results are appended to part files in `out_dir/.work/caption/`, committed every `cfg.commit_every` rows; a rerun
    skips ids already there. When every row has a record the parts are merged into `out_dir` (`load_from_disk`-able).
    A row whose caption failed (unreadable image, refused request, malformed answer) is committed with an empty caption
    and the reason in `caption_issues`; `retry_failed` captions exactly those rows again (a new record replaces the
    failed one). Purify and push-dataset leave rows without a caption out, with a count.
    """
    # 1. Input, the settings every job on this output shares, and this job's rows.
    ds = _load(in_dir)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(in_dir).resolve():
        raise InputError(f"--out {out_dir}: must differ from the input directory")
    i, n = parse_shard(shard) or (0, 1)
    work = stage.WorkDir(out_dir, STAGE)
    settings = {
        "curated": str(Path(in_dir).resolve()),
        "curated_fingerprint": stage.folder_fingerprint(in_dir),
        **cfg.settings(),
    }
    if work.state().get("settings") is not None:
        work.bind(settings)  # refused before a model is loaded
    mine, (p, n_proc) = _my_indices(len(ds), i, n)
    ids = list(ds["id"])
    records, _ = sh.read_records(work.dir)
    done = {x for x, r in records.items() if not (retry_failed and failed(r))}
    todo = [k for k in mine if ids[k] not in done]

    # 2. Caption the remaining rows chunk by chunk; each chunk's records are committed by the writer.
    if todo:
        be = make_backend(cfg)
        work.bind(settings)  # only once the backend is up: a failed start leaves no trace
        if "config" not in work.state():  # for `caption merge`, which has no recipe
            work.write_state(**{**work.state(), "config": dataclasses.asdict(cfg)})
        labels = ds.select_columns(LABELS)
        pixels = ds.select_columns(["image"]).cast_column("image", Image(decode=False))
        writer = sh.ShardWriter(work.path(f"part-{i:05d}-of-{n:05d}-p{p:03d}-of-{n_proc:03d}.jsonl"), cfg.commit_every)
        with _progress(progress, len(mine), len(mine) - len(todo)) as advance:
            try:
                for start in range(0, len(todo), be.chunk_size):
                    chunk = todo[start : start + be.chunk_size]
                    rows = labels.select(chunk).to_list()
                    images = [None] * len(chunk)
                    if be.needs_image:
                        images = [_decode(x) for x in pixels.select(chunk)["image"]]
                    writer.add(_caption_rows(be, rows, images, cfg))
                    advance(len(chunk))
            finally:
                writer.close()

    # 3. Merge when the whole dataset is captioned (the last shard to finish does it), unless already merged.
    _wait_for_everyone(n_proc)
    records, _ = sh.read_records(work.dir)
    if p == 0 and all(x in records for x in ids):
        if not todo and work.state().get("merged") == _parts_key(work) and (out_dir / stage.PROVENANCE).is_file():
            counts = stage.read_provenance(out_dir)["counts"]  # a rerun of a finished job: nothing to do
            return CaptionResult(
                out_dir, counts["rows"], counts["flagged"], True, counts.get("failed", 0), counts.get("note")
            )
        try:
            return merge_shards(out_dir, cfg)
        except _Busy:
            pass  # another job is merging the same captions
    flagged = sum(not records[ids[k]]["caption_consistent"] for k in mine)
    n_failed = sum(failed(records[ids[k]]) for k in mine)
    return CaptionResult(out_dir, len(mine), flagged, False, n_failed, _note(cfg))


TEMPLATE_NOTE = "template captions come from the labels only: the images were not read"


def _note(cfg: CaptionConfig) -> str | None:
    return TEMPLATE_NOTE if cfg.backend == "template" else None


def failed(record: dict) -> bool:
    """A row whose captioning failed: no caption (the reason is the first of its `caption_issues`)."""
    return not (record.get("caption") or "").strip()


class _Busy(InputError):
    """Another job holds the merge lock (it is merging the same captions)."""


def merge_shards(out_dir: Path, cfg: CaptionConfig | None = None) -> CaptionResult:
    """Join the part files in `out_dir/.work/caption/` with the input rows into the dataset `out_dir`
    (schema.CAPTIONED) and write `out_dir/retinalogos.json`. `cfg` is the run's config (default: the one recorded
    by the first job on this output)."""
    from datasets import Dataset, concatenate_datasets

    from ..config import load_config

    # 1. What the jobs recorded: the input and the config.
    out_dir = Path(out_dir)
    work = stage.WorkDir(out_dir, STAGE)
    state = work.state()
    if "settings" not in state:
        raise InputError(
            f"{out_dir}: no caption work here ({work.dir} has no state); run "
            f"`retinalogos caption run DIR --out {out_dir} --recipe recipes/caption/<backend>.yaml` first"
        )
    if cfg is None:
        cfg = load_config(CaptionConfig, data=state["config"])
    in_dir = Path(state["settings"]["curated"])
    run = stage.start(STAGE, out_dir, cfg, curated=in_dir)
    ds = _load(in_dir)
    if stage.folder_fingerprint(in_dir) != state["settings"]["curated_fingerprint"]:
        raise InputError(f"{in_dir}: changed since {out_dir} was captioned from it; caption it again into a new --out")

    # 2. Every row needs its caption.
    records, _ = sh.read_records(work.dir)
    ids = list(ds["id"])
    missing = [x for x in ids if x not in records]
    if missing:
        raise InputError(
            f"{out_dir}: {len(missing)} of {len(ids)} rows have no caption yet (first: {missing[0]}); "
            f"finish every --shard i/N job, then run `retinalogos caption merge --out {out_dir}`"
        )

    # 3. The dataset, then the provenance, under the work folder's lock (one merge at a time).
    with ExitStack() as held:
        try:
            held.enter_context(work.lock("caption merge"))
        except InputError as e:
            raise _Busy(str(e)) from None
        key = _parts_key(work)
        caps = Dataset.from_dict({c: [records[x][c] for x in ids] for c in CAPTION_COLUMNS}, features=CAPTION_COLUMNS)
        curated = ds.select_columns(list(CURATED)).cast(CURATED)
        stage.save_dataset(concatenate_datasets([curated, caps], axis=1).cast(CAPTIONED), out_dir)
        issues = [i for row in caps["caption_issues"] for i in row]
        flagged = sum(not c for c in caps["caption_consistent"])
        n_failed = sum(not (c or "").strip() for c in caps["caption"])
        run.finish(
            rows=len(ids),
            flagged=flagged,
            failed=n_failed,
            note=_note(cfg),
            unreadable=sum(i.startswith("unreadable image") for i in issues),
            malformed=sum(i.startswith("malformed model output") for i in issues),
            request_failed=sum(i.startswith("request failed") for i in issues),
            models=sorted(set(caps["caption_model"])),
        )
        work.write_state(**{**work.state(), "merged": key})
    return CaptionResult(out_dir, len(ids), flagged, True, n_failed, _note(cfg))


def _parts_key(work: stage.WorkDir) -> str:
    """What the part files hold (names and committed sizes): a merge is current while it matches."""
    return stage.fingerprint([(p.name, p.stat().st_size) for p in sh.part_files(work.dir)])


def _caption_rows(be, rows: list[dict], images: list, cfg: CaptionConfig) -> list[dict]:
    """Caption records for `rows`: malformed answers retried once then flagged; inconsistent ones regenerated up to
    `cfg.regenerate_inconsistent` times; unreadable images flagged. Every row gets exactly one record."""
    version = cfg.prompt_version
    out: dict[str, dict] = {}
    pending = []
    for row, image in zip(rows, images):
        if isinstance(image, Exception):
            out[row["id"]] = _record(row, be.model_name, version, "", None, [f"unreadable image: {image}"])
        else:
            prompt = build_prompt(row, version=version, min_words=cfg.min_words, max_words=cfg.max_words)
            pending.append(Item(row, image, prompt))
    bad = {item.row["id"]: 0 for item in pending}
    again = dict(bad)
    attempt = 0
    while pending:
        retry = []
        for item, answer in zip(pending, be.answer(pending, attempt)):
            rid = item.row["id"]
            if isinstance(answer, Exception):
                out[rid] = _record(item.row, be.model_name, version, "", None, [f"request failed: {answer}"])
                continue
            try:
                caption, fields = parse_response(answer)
            except ValueError as e:
                bad[rid] += 1
                if bad[rid] < 2:
                    retry.append(item)
                else:
                    why = f"malformed model output (retried once): {e}"
                    out[rid] = _record(item.row, be.model_name, version, "", None, [why])
                continue
            issues = check(caption, {**item.row, "caption_fields": fields})
            if issues and again[rid] < cfg.regenerate_inconsistent:
                again[rid] += 1
                retry.append(item)
                continue
            out[rid] = _record(item.row, be.model_name, version, caption, fields, issues)
        pending, attempt = retry, attempt + 1
    return [out[r["id"]] for r in rows]


def _record(row: dict, model: str, version: str, caption: str, fields: dict | None, issues: list[str]) -> dict:
    return {
        "id": row["id"],
        "caption": caption,
        "caption_fields": fields or {k: "" for k in CAPTION_FIELD_NAMES},
        "caption_model": model,
        "caption_prompt_version": version,
        "caption_consistent": not issues,
        "caption_issues": issues,
    }


def _load(in_dir: Path):
    from datasets import load_from_disk

    in_dir = Path(in_dir)
    if not (in_dir / "dataset_info.json").is_file() and not (in_dir / "state.json").is_file():
        raise InputError(f"{in_dir}: not a dataset directory (written by `retinalogos curate run --out DIR`)")
    ds = load_from_disk(str(in_dir))
    require_columns(ds.column_names, list(CURATED), str(in_dir))
    return ds


def _decode(cell: dict):
    """A PIL RGB image, or the exception that made it unreadable (the row is flagged, the job goes on)."""
    from PIL import Image

    try:
        src = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell.get("path")
        if src is None:
            raise ValueError("no bytes and no path")
        with Image.open(src) as im:
            return im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any decoder failure means this one row is unreadable
        return e if str(e) else type(e)(type(e).__name__)


def _my_indices(n_rows: int, i: int, n: int) -> tuple[list[int], tuple[int, int]]:
    """Rows of shard i/N (contiguous), then this process's part of them under `accelerate launch`."""
    rows = list(range(n_rows * i // n, n_rows * (i + 1) // n))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        state = _state()
        with state.split_between_processes(rows) as part:
            return list(part), (state.process_index, state.num_processes)
    return rows, (0, 1)


def _state():
    """accelerate's process state; on CPU-only hosts it must be asked for gloo explicitly (`cpu=True`)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _wait_for_everyone(n_proc: int) -> None:
    if n_proc > 1:
        _state().wait_for_everyone()


def _progress(enabled: bool, total: int, completed: int):
    """A rich bar with rows/s and ETA; yields `advance(n)`."""
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed or 0:.1f} rows/s")

    @contextmanager
    def bar():
        cols = (
            TextColumn("caption"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            Rate(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*cols, console=Console(stderr=True), disable=not enabled) as prog:
            task = prog.add_task("caption", total=total, completed=completed)
            yield lambda k: prog.advance(task, k)

    return bar()
