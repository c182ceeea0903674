"""Duplicates across (and within) sources: exact file bytes, exact decoded pixels, then perceptual near-duplicates.

Perceptual candidates are every pair of 64-bit pHashes within the Hamming radius, found by multi-index hashing
(`near_pairs`: the hash is cut into m chunks, and two hashes within radius r agree to within r // m bits on at least
one chunk, so each chunk is a table lookup of the few flips of that chunk, vectorised in numpy; m is chosen for the
row count so merge grows like n log n, not n^2 as a BK-tree does on well-spread hashes). Each image is queried with
its own hash and with the hashes of its mirror image and of its 180-degree rotation (public sets re-host flipped and inverted
copies; their plain pHash distance is ~26-30). Each candidate pair is confirmed by the Pearson correlation of two grey
thumbnails, the second one mirrored or rotated as its hash was: images from one camera share enough layout that pHash
alone would merge unrelated eyes. The transform that matched is returned with each duplicate. Each group
keeps one canonical row: redistributable sources first, then richer labels, then the better quality score, then
the smaller id (deterministic).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DedupConfig:
    """When two images are one (values: `dedup:` in recipes/curate/default.yaml)."""

    phash_distance: int  # max Hamming distance (of 64 bits) between pHashes for a perceptual candidate pair
    min_correlation: float  # grey-thumbnail Pearson correlation that confirms a candidate pair

    def __post_init__(self):
        if not 0 <= self.phash_distance <= 64:
            raise ValueError(f"phash_distance must be in 0..64, got {self.phash_distance}")
        if not -1.0 <= self.min_correlation <= 1.0:
            raise ValueError(f"min_correlation must be in -1..1, got {self.min_correlation}")


@dataclass(frozen=True)
class Item:
    id: str
    sha256: str
    pixels: str
    phash: int  # signed int64 as stored; only XOR/popcount is used
    rank: tuple  # sort key: smaller is the better canonical row
    mirror: int | None = None  # pHash of the mirrored image (None: not computed)
    rot180: int | None = None  # pHash of the image turned 180 degrees


# how a duplicate matched its canonical row (the manifest's `match_transform`)
IDENTITY, MIRROR, ROT180 = "identity", "mirror", "rotate180"
_TURN = {IDENTITY: lambda t: t, MIRROR: lambda t: t[:, ::-1], ROT180: lambda t: t[::-1, ::-1]}


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


class BKTree:
    """Burkhard-Keller tree over integer hashes with Hamming distance: node = (value, {distance: child})."""

    def __init__(self):
        self.root: list | None = None

    def add(self, value: int) -> None:
        if self.root is None:
            self.root = [value, {}]
            return
        node = self.root
        while True:
            d = hamming(value, node[0])
            if d == 0:
                return
            child = node[1].get(d)
            if child is None:
                node[1][d] = [value, {}]
                return
            node = child

    def query(self, value: int, radius: int) -> list[int]:
        out, stack = [], [self.root] if self.root is not None else []
        while stack:
            node = stack.pop()
            d = hamming(value, node[0])
            if d <= radius:
                out.append(node[0])
            for k, child in node[1].items():
                if d - radius <= k <= d + radius:  # triangle inequality prunes the rest
                    stack.append(child)
        return out


def find_duplicates(
    items: Sequence[Item], thumbs: Callable[[set[str]], dict[str, np.ndarray]], cfg: DedupConfig
) -> dict[str, tuple[str, str, str | None]]:
    """{duplicate id: (canonical id, reason, transform)} for every non-canonical member of a duplicate group; the
    transform (`identity`, `mirror`, `rotate180`) turns the duplicate into its canonical row, None when the two are
    linked only through other members of their group.

    `thumbs(ids)` loads the grey thumbnails of just those ids (the candidates), so memory does not grow with all rows.
    """
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    # 1. exact: identical file bytes, then identical decoded pixels (a re-saved or metadata-stripped copy)
    for key in ("sha256", "pixels"):
        for group in _groups(getattr(it, key) for it in items):
            for j in group[1:]:
                union(group[0], j)
    # 2. perceptual: candidates within the radius, for the image as stored and for its mirror and 180-degree turn,
    #    each confirmed by thumbnail correlation (the second thumbnail turned the same way)
    hashes = np.fromiter((it.phash for it in items), np.int64, len(items)).view(np.uint64)
    distinct, first = np.unique(hashes, return_inverse=True)  # members of one hash value are paired below too
    pairs: dict[tuple[int, int], str] = {}
    order = np.argsort(first, kind="stable")
    starts = np.searchsorted(first[order], np.arange(len(distinct) + 1))

    def members(u: int) -> np.ndarray:
        return order[starts[u] : starts[u + 1]]

    qi, ii = near_pairs(distinct, distinct, cfg.phash_distance)
    for u, v in zip(qi.tolist(), ii.tolist()):
        if u > v:
            continue  # each unordered pair of hash values once (u == v: the members of one value)
        for i in members(u).tolist():
            for j in members(v).tolist():
                if i != j and find(i) != find(j):
                    pairs.setdefault((min(i, j), max(i, j)), IDENTITY)
    for how, attr in ((MIRROR, "mirror"), (ROT180, "rot180")):
        have = [k for k, it in enumerate(items) if getattr(it, attr) is not None]
        if not have:
            continue
        turned = np.fromiter((getattr(items[k], attr) for k in have), np.int64, len(have)).view(np.uint64)
        qi, ii = near_pairs(turned, distinct, cfg.phash_distance)
        for q, v in zip(qi.tolist(), ii.tolist()):
            i = have[q]
            for j in members(v).tolist():
                if i != j and find(i) != find(j):
                    pairs.setdefault((min(i, j), max(i, j)), how)  # both transforms are their own inverse
    edges: dict[tuple[int, int], str] = {}
    if pairs:
        loaded = thumbs({items[k].id for p in pairs for k in p})
        for (i, j), how in pairs.items():
            a, b = loaded.get(items[i].id), loaded.get(items[j].id)
            if a is None or b is None:
                continue
            if find(i) != find(j) and _confirm(a, b, how) >= cfg.min_correlation:
                union(i, j)
                edges[(i, j)] = how

        def corr(a: Item, b: Item, how: str) -> float | None:
            if a.id in loaded and b.id in loaded:
                return _confirm(loaded[a.id], loaded[b.id], how)
            return None
    else:

        def corr(a: Item, b: Item, how: str) -> float | None:
            return None

    # 3. one canonical per group; the others name it and say why
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[find(i)].append(i)
    out: dict[str, tuple[str, str, str | None]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        at = min(members, key=lambda k: items[k].rank)
        keep = items[at]
        for k in members:
            it = items[k]
            if it is keep:
                continue
            exact = it.sha256 == keep.sha256 or it.pixels == keep.pixels
            how = IDENTITY if exact else edges.get((min(k, at), max(k, at)))
            out[it.id] = (keep.id, _reason(it, keep, how, corr(it, keep, how) if how else None), how)
    return out


def near_pairs(query: np.ndarray, index: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(qi, ii): every pair with popcount(query[qi] ^ index[ii]) <= radius (uint64 arrays), by multi-index hashing.
    The 64 bits are cut into m chunks; a pair within `radius` differs by at most radius // m bits on some chunk, so
    for each chunk the index is bucketed by chunk value (a dense table) and each query looks up its chunk with every
    flip of up to radius // m bits. m is chosen to minimise (lookups + expected candidates) for these sizes; every
    candidate is checked on the full hash. Pairs found through several chunks are returned once."""
    query = np.ascontiguousarray(query, np.uint64)
    index = np.ascontiguousarray(index, np.uint64)
    if not len(query) or not len(index):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    m = _chunks(len(query), len(index), radius)
    bits = [64 // m + (k < 64 % m) for k in range(m)]
    found_q, found_i = [], []
    shift = 0
    for b in bits:
        mask = np.uint64((1 << b) - 1)
        # int32 keys and tables (chunks are <= 24 bits): the random gathers below stay in cache far more often
        ikeys = ((index >> np.uint64(shift)) & mask).astype(np.int32)
        qkeys = ((query >> np.uint64(shift)) & mask).astype(np.int32)
        order = np.argsort(ikeys, kind="stable")
        counts = np.bincount(ikeys, minlength=1 << b).astype(np.int32)
        begin = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.int64)
        for flip in _flips(b, radius // m):
            keys = qkeys ^ np.int32(flip)
            n = counts[keys]
            hit = np.nonzero(n)[0]
            if not len(hit):
                continue
            n_hit = n[hit]
            q = np.repeat(hit, n_hit)
            offsets = np.arange(int(n_hit.sum())) - np.repeat(np.cumsum(n_hit) - n_hit, n_hit)
            i = order[np.repeat(begin[keys[hit]], n_hit) + offsets]
            close = np.bitwise_count(query[q] ^ index[i]) <= radius
            found_q.append(q[close])
            found_i.append(i[close])
        shift += b
    if not found_q:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    q, i = np.concatenate(found_q), np.concatenate(found_i)
    key = np.unique(q.astype(np.int64) * len(index) + i)
    return key // len(index), key % len(index)


def _chunks(nq: int, ni: int, radius: int) -> int:
    """The chunk count with the least expected work: lookups (nq per flip) plus candidates (nq * ni / 2^bits per
    flip, for well-spread hashes); chunks of at most 24 bits (the dense tables stay <= 128 MB)."""
    best, best_cost = 3, float("inf")
    for m in range(3, 17):
        b = 64 // m
        flips = m * sum(math.comb(b + 1, k) for k in range(radius // m + 1))
        cost = flips * (nq + nq * ni / 2**b)
        if b <= 24 and cost < best_cost:
            best, best_cost = m, cost
    return best


def _flips(bits: int, upto: int) -> list[int]:
    """Every mask of `bits` bits with at most `upto` bits set."""
    return [sum(1 << p for p in c) for k in range(upto + 1) for c in itertools.combinations(range(bits), k)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else (1.0 if np.array_equal(a, b) else 0.0)


def _confirm(a: np.ndarray, b: np.ndarray, how: str) -> float:
    """The thumbnail correlation of a candidate pair, `b` turned by `how`. A turned copy's FOV crop is resampled on a
    grid offset by a fraction of a pixel from the original's (the circle fit and resize round the other way), which
    alone costs an exact 180-degree copy ~0.05 of correlation; turned pairs are therefore compared after a light
    blur (sigma 0.8 px) that removes the sub-pixel phase. Plain pairs are compared as they are."""
    b = _TURN[how](b)
    if how == IDENTITY:
        return correlation(a, b)
    import cv2

    def soft(t: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(np.ascontiguousarray(t, dtype=np.float32), (0, 0), 0.8)

    return correlation(soft(a), soft(b))


def _groups(keys: Iterable[str | None]) -> list[list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        if k:
            seen[k].append(i)
    return [g for g in seen.values() if len(g) > 1]


def _reason(it: Item, keep: Item, how: str | None, corr: float | None) -> str:
    if it.sha256 == keep.sha256:
        return "identical file bytes"
    if it.pixels == keep.pixels:
        return "identical decoded pixels"
    turned = {MIRROR: keep.mirror, ROT180: keep.rot180}.get(how or IDENTITY, keep.phash)
    d = hamming(it.phash, keep.phash if turned is None else turned)
    what = {MIRROR: "mirrored ", ROT180: "180-degree rotated "}.get(how or IDENTITY, "")
    tail = f", thumbnail correlation {corr:.3f})" if corr is not None else ", via another member of its group)"
    return f"{what}near-duplicate (pHash distance {d}{tail}"
