"""Duplicates across (and within) sources: exact file bytes, exact decoded pixels, then perceptual near-duplicates.

Perceptual candidates come from a BK-tree over 64-bit pHashes (Hamming distance), queried with each image's own hash
and with the hashes of its mirror image and of its 180-degree rotation (public sets re-host flipped and inverted
copies; their plain pHash distance is ~26-30). Each candidate pair is confirmed by the Pearson correlation of two grey
thumbnails, the second one mirrored or rotated as its hash was: images from one camera share enough layout that pHash
alone would merge unrelated eyes. The transform that matched is returned with each duplicate. Each group
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
    # 2. perceptual: BK-tree candidates within the radius, for the image as stored and for its mirror and 180-degree
    #    turn, each confirmed by thumbnail correlation (the second thumbnail turned the same way)
    by_hash: dict[int, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_hash[it.phash].append(i)
    tree = BKTree()
    for h in by_hash:
        tree.add(h)
    pairs: dict[tuple[int, int], str] = {}
    for h, members in by_hash.items():
        near = [i for g in tree.query(h, cfg.phash_distance) if g >= h for i in by_hash[g]]  # each pair once
        for i in members:
            for j in near:
                if i < j and find(i) != find(j):
                    pairs.setdefault((i, j), IDENTITY)
    for i, it in enumerate(items):
        for how, h in ((MIRROR, it.mirror), (ROT180, it.rot180)):
            if h is None:
                continue
            for g in tree.query(h, cfg.phash_distance):
                for j in by_hash[g]:
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


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else (1.0 if np.array_equal(a, b) else 0.0)


def _confirm(a: np.ndarray, b: np.ndarray, how: str) -> float:
    """The thumbnail correlation of a candidate pair, `b` turned by `how`. A turned copy's FOV crop lands up to a pixel
    off the original's (the circle centre is rounded the other way), so turned pairs take the best of the 3x3
    one-pixel shifts of the overlap; plain pairs are compared as they are."""
    b = _TURN[how](b)
    if how == IDENTITY:
        return correlation(a, b)
    n, m = a.shape
    best = -1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ya, yb = slice(max(dy, 0), n + min(dy, 0)), slice(max(-dy, 0), n + min(-dy, 0))
            xa, xb = slice(max(dx, 0), m + min(dx, 0)), slice(max(-dx, 0), m + min(-dx, 0))
            best = max(best, correlation(a[ya, xa], b[yb, xb]))
    return best


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
