"""The resumable work store of one shard: `OUT/.work/curate/shard-<i>-of-<N>/`, a `stage.WorkDir` (its lock, state
and atomic commits).

- `inputs.parquet`: every input record of the shard (id, source, path, the record as JSON, a pre-exclusion reason),
  rewritten by every run.
- `part-NNNNNN.parquet`: processed work rows, committed `commit_every` rows at a time (atomically: a killed run
  leaves only whole parts, and a rerun redoes at most one batch).
- `state.json`: the image settings the work rows were made with (`WorkDir.bind`: work from other settings is never
  mixed in), the resolved config and the source roots (the merge's defaults and provenance), the input count and
  fingerprint, and `complete: true` once every input has a work row, which the merge checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import stage

STAGE = "curate"
INPUTS = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("record", pa.string()),
        ("reason", pa.string()),
    ]
)
ROWS = pa.schema(
    [
        ("id", pa.string()),
        ("record", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("image", pa.binary()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("quality_score", pa.float32()),
        ("sha256", pa.string()),
        ("pixels", pa.string()),
        ("phash", pa.int64()),
        ("phash_mirror", pa.int64()),  # pHash of the mirrored inner grey (orientation-robust dedup)
        ("phash_rot180", pa.int64()),  # ... of it turned 180 degrees
        ("thumb", pa.binary()),
        ("orientation", pa.string()),
    ]
)
META = [n for n in ROWS.names if n not in ("image", "thumb")]  # what the merge needs without pixels
PARTS = "part-*.parquet"


def tag(shard: tuple[int, int]) -> str:
    return f"shard-{shard[0]}-of-{shard[1]}"


class ShardWork(stage.WorkDir):
    def __init__(self, out: Path, shard: tuple[int, int]):
        super().__init__(out, STAGE, tag(shard))
        self.shard = shard
        self.inputs = self.path("inputs.parquet")

    # -- inputs -------------------------------------------------------------------------------------------------
    def write_inputs(self, rows: Iterable[dict], batch: int = 4096) -> tuple[int, str]:
        """Commit the shard's input rows as inputs.parquet; returns (how many, their fingerprint). A bad label file
        fails while the rows are read, before anything is committed."""
        sink, n = pa.BufferOutputStream(), 0
        digests: list[str] = []
        buf: list[dict] = []

        def flush() -> None:
            w.write_table(pa.Table.from_pylist(buf, INPUTS))
            digests.append(stage.fingerprint(buf))

        with pq.ParquetWriter(sink, INPUTS) as w:  # compressed in memory: JSON records shrink ~5x
            for row in rows:
                buf.append(row)
                if len(buf) >= batch:
                    flush()
                    n, buf = n + len(buf), []
            if buf or n == 0:
                flush()
                n += len(buf)
        self.commit(self.inputs.name, sink.getvalue().to_pybytes())
        return n, stage.fingerprint(digests)

    def iter_inputs(self, columns: list[str] | None = None) -> Iterator[dict]:
        for batch in pq.ParquetFile(self.inputs).iter_batches(batch_size=1024, columns=columns):
            yield from batch.to_pylist()

    # -- work rows ----------------------------------------------------------------------------------------------
    def parts(self) -> list[Path]:
        return self.committed(PARTS)

    def done_ids(self) -> set[str]:
        return {i for p in self.parts() for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()}

    def commit_rows(self, rows: list[dict]) -> None:
        parts = self.parts()
        seq = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, ROWS), sink)
        self.commit(f"part-{seq:06d}.parquet", sink.getvalue().to_pybytes())

    def key(self) -> list:
        """Changes whenever the inputs or the committed work rows change (parts are immutable once committed)."""
        parts = [(p.name, p.stat().st_size) for p in self.parts()]
        return [self.dir.name, self.state().get("inputs_fingerprint"), parts]


def shard_dirs(outs: Iterable[Path]) -> list[ShardWork]:
    """Every shard work folder under the given OUT directories' `.work/curate/`."""
    found = []
    for out in outs:
        for d in sorted((Path(out) / stage.WORK / STAGE).glob("shard-*-of-*")):
            _, i, _, n = d.name.split("-")
            found.append(ShardWork(Path(out), (int(i), int(n))))
    return found
