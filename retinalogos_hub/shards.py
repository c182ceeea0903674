"""`--shard i/N` for the embarrassingly parallel stages (curate, caption): parsing and stable id -> shard."""

from __future__ import annotations

import hashlib

from .errors import InputError


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """'i/N' (0-based) -> (i, N); None -> None (no sharding)."""
    if spec is None or isinstance(spec, tuple):
        i, n = spec or (0, 1)
    else:
        i, sep, n = str(spec).partition("/")
        if not (sep and i.strip().isdigit() and n.strip().isdigit()):
            raise InputError(f"--shard {spec!r}: expected i/N with 0 <= i < N, e.g. 0/4")
        i, n = int(i), int(n)
    if not 0 <= i < n:
        raise InputError(f"--shard {i}/{n}: expected i/N with 0 <= i < N (shards are 0-based)")
    return None if spec is None else (i, n)


def shard_of(row_id: str, n: int) -> int:
    """Stable shard of an id (independent of Python's hash seed and of the input order)."""
    return int.from_bytes(hashlib.sha256(row_id.encode()).digest()[:8], "big") % n
