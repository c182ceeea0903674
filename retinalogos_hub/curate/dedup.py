"""Duplicates across (and within) sources: exact file bytes, exact decoded pixels, then perceptual near-duplicates.

Perceptual candidates come from a BK-tree over 64-bit pHashes (Hamming distance; a radius query visits a small part
of the tree, so this is not O(n^2)), and each candidate pair is confirmed by the Pearson correlation of two grey
thumbnails: images from one camera share enough layout that pHash alone would merge unrelated eyes. Each group
keeps one canonical row: redistributable sources first, then richer labels, then the better quality score, then
the smaller id (deterministic).
"""

from __future__ import annotations

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
) -> dict[str, tuple[str, str]]:
    """{duplicate id: (canonical id, reason)} for every non-canonical member of a duplicate group.

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
    # 2. perceptual: BK-tree candidates within the radius, confirmed by thumbnail correlation
    by_hash: dict[int, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_hash[it.phash].append(i)
    tree = BKTree()
    for h in by_hash:
        tree.add(h)
    pairs = []
    for h, members in by_hash.items():
        near = [i for g in tree.query(h, cfg.phash_distance) if g >= h for i in by_hash[g]]  # each pair once
        pairs += [(i, j) for i in members for j in near if i < j and find(i) != find(j)]
    if pairs:
        loaded = thumbs({items[k].id for p in pairs for k in p})
        for i, j in pairs:
            if find(i) != find(j) and correlation(loaded[items[i].id], loaded[items[j].id]) >= cfg.min_correlation:
                union(i, j)

        def corr(a: Item, b: Item) -> float | None:
            return correlation(loaded[a.id], loaded[b.id]) if a.id in loaded and b.id in loaded else None
    else:

        def corr(a: Item, b: Item) -> float | None:
            return None

    # 3. one canonical per group; the others name it and say why
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[find(i)].append(i)
    out: dict[str, tuple[str, str]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = items[min(members, key=lambda k: items[k].rank)]
        for k in members:
            it = items[k]
            if it is not keep:
                out[it.id] = (keep.id, _reason(it, keep, corr(it, keep)))
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else (1.0 if np.array_equal(a, b) else 0.0)


def _groups(keys: Iterable[str | None]) -> list[list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        if k:
            seen[k].append(i)
    return [g for g in seen.values() if len(g) > 1]


def _reason(it: Item, keep: Item, corr: float | None) -> str:
    if it.sha256 == keep.sha256:
        return "identical file bytes"
    if it.pixels == keep.pixels:
        return "identical decoded pixels"
    d = hamming(it.phash, keep.phash)
    how = f", thumbnail correlation {corr:.3f})" if corr is not None else ", via another member of its group)"
    return f"near-duplicate (pHash distance {d}{how}"
