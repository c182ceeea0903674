"""The resumable work store under `OUT/.work/shard-<i>-of-<N>/`.

- `inputs.parquet`: every input record of the shard (id, source, path, the record as JSON, a pre-exclusion reason).
- `part-NNNNNN.parquet`: processed work rows, appended `commit_every` rows at a time; each file is written to a
  temporary name and renamed, so a killed run leaves only whole parts and a rerun redoes at most one batch.
- `state.json`: the config fingerprint (work from another config is never mixed in) and, once every input has a
  work row, `complete: true` with the input count, which the merge checks.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError

INPUTS = pa.schema([("id", pa.string()), ("source", pa.string()), ("path", pa.string()), ("record", pa.string()),
                    ("reason", pa.string())])
ROWS = pa.schema([
    ("id", pa.string()), ("record", pa.string()), ("status", pa.string()), ("reason", pa.string()),
    ("image", pa.binary()), ("width", pa.int32()), ("height", pa.int32()), ("quality_score", pa.float32()),
    ("sha256", pa.string()), ("pixels", pa.string()), ("phash", pa.int64()), ("thumb", pa.binary()),
    ("orientation", pa.string()),
])
META = [n for n in ROWS.names if n not in ("image", "thumb")]  # what the merge needs without pixels


def tag(shard: tuple[int, int]) -> str:
    return f"shard-{shard[0]}-of-{shard[1]}"


class ShardWork:
    def __init__(self, out: Path, shard: tuple[int, int]):
        self.shard = shard
        self.dir = Path(out) / ".work" / tag(shard)
        self.inputs = self.dir / "inputs.parquet"
        self.state_file = self.dir / "state.json"

    # -- state and locking ------------------------------------------------------------------------------------
    def lock(self):
        """Hold an exclusive lock for this shard's directory: two runs appending to one shard would collide."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.dir / "lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise InputError(f"{self.dir}: another curate run is writing this shard; wait for it or use another --out") from None
        for tmp in [*self.dir.glob("*.tmp*"), *self.dir.glob(".*.tmp*")]:  # left by a killed run; never committed
            tmp.unlink(missing_ok=True)
        return fh

    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}

    def write_state(self, **state) -> None:
        _atomic_write(self.state_file, json.dumps(state, indent=1).encode())

    def check_fingerprint(self, fingerprint: str) -> None:
        old = self.state().get("fingerprint")
        if old is not None and old != fingerprint and self.parts():
            raise InputError(
                f"{self.dir}: finished work was made with different image settings (size/format/FOV/orientation) or "
                f"an older version; "
                f"use a new --out, or delete {self.dir.parent} to start over"
            )

    # -- inputs -------------------------------------------------------------------------------------------------
    def write_inputs(self, rows: Iterable[dict], batch: int = 4096) -> int:
        """Stream input rows to inputs.parquet (atomically); returns how many were written."""
        tmp = self.inputs.with_suffix(f".tmp{os.getpid()}")
        n, buf = 0, []
        try:
            with pq.ParquetWriter(tmp, INPUTS) as w:
                for row in rows:
                    buf.append(row)
                    if len(buf) >= batch:
                        w.write_table(pa.Table.from_pylist(buf, INPUTS))
                        n, buf = n + len(buf), []
                if buf or n == 0:
                    w.write_table(pa.Table.from_pylist(buf, INPUTS))
                    n += len(buf)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a bad label file fails here; leave no half-written inputs
            raise
        os.replace(tmp, self.inputs)
        return n

    def iter_inputs(self, columns: list[str] | None = None) -> Iterator[dict]:
        for batch in pq.ParquetFile(self.inputs).iter_batches(batch_size=1024, columns=columns):
            yield from batch.to_pylist()

    # -- work rows ----------------------------------------------------------------------------------------------
    def parts(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet")) if self.dir.is_dir() else []

    def done_ids(self) -> set[str]:
        return {i for p in self.parts() for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()}

    def commit(self, rows: list[dict]) -> None:
        parts = self.parts()
        seq = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, ROWS), sink)
        _atomic_write(self.dir / f"part-{seq:06d}.parquet", sink.getvalue().to_pybytes())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def shard_dirs(work_roots: Iterable[Path]) -> list[ShardWork]:
    """Every shard work directory under the given OUT directories' `.work/`."""
    out = []
    for root in work_roots:
        for d in sorted((Path(root) / ".work").glob("shard-*-of-*")):
            _, i, _, n = d.name.split("-")
            out.append(ShardWork(Path(root), (int(i), int(n))))
    return out
