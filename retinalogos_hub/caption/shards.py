"""Append-only part files: one JSON line per captioned row, committed (flush + fsync) every K rows.

They live in the caption work folder `OUT/.work/caption/` (`stage.WorkDir`), one file per writer:
`part-<shard>-of-<N>-p<process>-of-<processes>.jsonl`. Append-only files rather than one committed file per chunk
because many writers share the folder at once (every `--shard i/N` job, on as many machines as share the disk, and
every process under `accelerate launch`): each appends to its own file with no coordination, a commit is one
`write + fsync` whatever the file's size, and a job killed at any point loses at most its uncommitted rows. A torn
last line is cut off when the file is reopened, so a restarted job appends cleanly and skips every id already on
disk. The work folder's state binds the settings every writer must share (`CaptionConfig.settings`).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ..errors import InputError

PARTS = "part-*.jsonl"


def part_files(shards_dir: Path) -> list[Path]:
    return sorted(Path(shards_dir).glob(PARTS))


def read_records(shards_dir: Path) -> tuple[dict[str, dict], int]:
    """All committed records by id and how many duplicate ids were seen (0 unless files were copied). The first
    record of an id wins, except that a record with a caption replaces a failed one (no caption: a row retried with
    `--retry-failed`), and a later failure replaces an earlier one (its reason is the latest)."""
    records: dict[str, dict] = {}
    dups = 0
    for path in part_files(shards_dir):
        with path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn tail of a killed job: not committed
                rec = json.loads(line)
                old = records.get(rec["id"])
                if old is None or not (old.get("caption") or "").strip():
                    records[rec["id"]] = rec
                else:
                    dups += 1
    return records, dups


def done_ids(shards_dir: Path) -> set[str]:
    return set(read_records(shards_dir)[0])


class ShardWriter:
    """Appends records to one part file; `add` commits every `commit_every` rows, `close` commits the rest."""

    def __init__(self, path: Path, commit_every: int):
        if commit_every < 1:
            raise InputError(f"commit_every must be >= 1, got {commit_every}")
        self.path, self.commit_every = Path(path), commit_every
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        try:  # one writer per part file: the same shard started twice would interleave its lines
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise InputError(
                f"{self.path}: another job is captioning this shard; wait for it, or give this one another --shard"
            ) from None
        _cut_torn_tail(self.path)
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
        self._fh.close()  # also releases the lock


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
