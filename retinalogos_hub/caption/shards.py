"""Append-only shard files: one JSON line per captioned row, committed (flush + fsync) every K rows.

A job killed at any point loses at most the uncommitted rows; a torn last line is cut off when the file is reopened,
so a restarted job appends cleanly and skips every id already on disk. `OUT/shards/run.json` records the settings
a resumed or sibling shard job must share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError

MANIFEST = "run.json"


def check_manifest(shards_dir: Path, settings: dict, *, write: bool = True) -> None:
    """Fail if an earlier job in this directory used other settings; else record them (when `write`)."""
    path = Path(shards_dir) / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [f"{k}={old.get(k)!r} (now {v!r})" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise InputError(
                f"{path.parent.parent}: already holds captions made with {', '.join(diff)}; "
                "rerun with the same options to resume, or choose a new --out"
            )
        return
    if not write:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(settings, indent=1))
    os.replace(tmp, path)


def read_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / "shards" / MANIFEST
    if not path.is_file():
        raise InputError(f"{out_dir}: no caption shards here ({path} missing); run `retinalogos caption DIR --out {out_dir}` first")
    return json.loads(path.read_text())


def part_files(shards_dir: Path) -> list[Path]:
    return sorted(Path(shards_dir).glob("part-*.jsonl"))


def read_records(shards_dir: Path) -> tuple[dict[str, dict], int]:
    """All committed records by id (first wins) and how many duplicate ids were seen (0 unless files were copied)."""
    records: dict[str, dict] = {}
    dups = 0
    for path in part_files(shards_dir):
        with path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn tail of a killed job: not committed
                rec = json.loads(line)
                if rec["id"] in records:
                    dups += 1
                else:
                    records[rec["id"]] = rec
    return records, dups


def done_ids(shards_dir: Path) -> set[str]:
    return set(read_records(shards_dir)[0])


class ShardWriter:
    """Appends records to one part file; `add` commits every `commit_every` rows, `close` commits the rest."""

    def __init__(self, path: Path, commit_every: int = 64):
        if commit_every < 1:
            raise InputError(f"--commit-every must be >= 1, got {commit_every}")
        self.path, self.commit_every = Path(path), commit_every
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._fh = self.path.open("ab")
        self._buffer: list[bytes] = []

    def add(self, records: list[dict]) -> None:
        self._buffer += [json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records]
        if len(self._buffer) >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        if self._buffer:
            self._fh.write(b"".join(self._buffer))
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._buffer.clear()

    def close(self) -> None:
        self.commit()
        self._fh.close()


def _cut_torn_tail(path: Path) -> None:
    """Drop a partial last line (a job killed mid-write) so new lines start on a line boundary."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    size = path.stat().st_size
    with path.open("rb+") as fh:
        back = min(size, 1 << 20)  # a record is far smaller than 1 MiB
        fh.seek(size - back)
        tail = fh.read()
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            if cut < 0 and back < size:
                raise InputError(f"{path}: last line is over 1 MiB and not terminated; the shard file is corrupt")
            fh.truncate(size - back + cut + 1)
