"""Duplicates across (and within) sources: exact file bytes, exact decoded pixels, then perceptual near-duplicates.

Perceptual candidates are every pair of 64-bit pHashes within the Hamming radius, found by multi-index hashing
(`near_pairs`: the hash is cut into m chunks with thresholds t_k, sum(t_k + 1) > radius, so a pair within the
radius is within t_k bits on some chunk k; per chunk both sides are sorted by chunk value into dense tables and
looked up with every flip of up to t_k bits, vectorised in numpy; the layout is chosen for the row count). At
radius 8 that is ~700 table lookups per row (total work growing like n) plus ~8e-4 * n candidate checks per row for
well-spread hashes (growing like n^2, but with a small constant: three chunks of 21 bits can do no better), which
catch up with the lookups near 1M rows; a BK-tree, by contrast, visits most of a well-spread set at this radius.
Each image is queried with its own hash and with the hashes of its mirror image and of its 180-degree rotation (one
search serves all three; public sets re-host flipped and inverted copies, whose plain pHash distance is ~26-30).
Each candidate pair is confirmed by the Pearson correlation of two grey thumbnails, the second one mirrored or
rotated as its hash was: images from one camera share enough layout that pHash alone would merge unrelated eyes.
The transform that matched is returned with each duplicate. Each group keeps one canonical row: redistributable
sources first, then richer labels, then the better quality score, then the smaller id (deterministic).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

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
_HOWS = (IDENTITY, MIRROR, ROT180)  # their codes in the vectorised confirmation
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
    n = len(items)
    # a plain union-find for the few sequential unions (exact copies, confirmed pairs); the root is the group's
    # smallest index. The per-row work around it (candidate pairs, final groups) is vectorised on its arrays.
    parent = list(range(n))

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
        for group in _groups(map(attrgetter(key), items)):
            for j in group[1:]:
                union(group[0], j)
    # 2. perceptual: candidates within the radius, for the image as stored and for its mirror and 180-degree turn,
    #    each confirmed by thumbnail correlation (the second thumbnail turned the same way)
    pairs = _candidates(items, _roots(parent), cfg.phash_distance)
    edges: dict[tuple[int, int], str] = {}
    pos = np.full(n, -1, np.intp)  # a candidate row's thumbnail in `loaded` (-1: none)
    loaded: list[np.ndarray] = []
    if pairs:
        ia = np.fromiter((p[0] for p in pairs), np.intp, len(pairs))
        ib = np.fromiter((p[1] for p in pairs), np.intp, len(pairs))
        hows = np.fromiter(map(_HOWS.index, pairs.values()), np.int8, len(pairs))
        rows = np.unique(np.concatenate([ia, ib])).tolist()
        by_id = thumbs({items[k].id for k in rows})
        for k in rows:
            t = by_id.get(items[k].id)
            if t is not None:
                pos[k] = len(loaded)
                loaded.append(t)
        del by_id
        ok = np.flatnonzero((pos[ia] >= 0) & (pos[ib] >= 0))
        r = _correlations(loaded, pos[ia[ok]], pos[ib[ok]], hows[ok])
        # the confirmed pairs in the order found; one already linked (through earlier ones) adds no edge
        for k in ok[r >= cfg.min_correlation].tolist():
            i, j = int(ia[k]), int(ib[k])
            if find(i) != find(j):
                union(i, j)
                edges[(i, j)] = _HOWS[hows[k]]

    # 3. one canonical per group (groups in order of their smallest index, members ascending); the others name it
    roots = _roots(parent)
    size = np.bincount(roots, minlength=n)
    grouped = np.flatnonzero(size[roots] > 1)
    grouped = grouped[np.argsort(roots[grouped], kind="stable")]
    cuts = np.flatnonzero(np.diff(roots[grouped])) + 1
    named: list[tuple[int, int, str | None]] = []  # (duplicate, canonical, transform)
    for members in np.split(grouped, cuts) if len(grouped) else []:
        members = members.tolist()
        at = min(members, key=lambda k: items[k].rank)
        keep = items[at]
        for k in members:
            it = items[k]
            if it is keep:
                continue
            exact = it.sha256 == keep.sha256 or it.pixels == keep.pixels
            named.append((k, at, IDENTITY if exact else edges.get((min(k, at), max(k, at)))))
    # the correlation of each duplicate with its canonical row (the duplicate's thumbnail first, as confirmed)
    corr: list[float | None] = [None] * len(named)
    if named and loaded:
        dk, ck = (np.fromiter((x[c] for x in named), np.intp, len(named)) for c in (0, 1))
        turn = np.fromiter((-1 if x[2] is None else _HOWS.index(x[2]) for x in named), np.int8, len(named))
        ok = np.flatnonzero((turn >= 0) & (pos[dk] >= 0) & (pos[ck] >= 0))
        for k, v in zip(ok.tolist(), _correlations(loaded, pos[dk[ok]], pos[ck[ok]], turn[ok]).tolist()):
            corr[k] = v
    out: dict[str, tuple[str, str, str | None]] = {}
    for (k, at, turn), c in zip(named, corr):
        it, keep = items[k], items[at]
        out[it.id] = (keep.id, _reason(it, keep, turn, c), turn)
    return out


def _roots(parent: list[int]) -> np.ndarray:
    """Every row's union-find root, by vectorised pointer jumping (a root is its group's smallest index)."""
    r = np.asarray(parent, dtype=np.int64)
    while True:
        up = r[r]
        if np.array_equal(up, r):
            return r
        r = up


def _candidates(items: Sequence[Item], roots: np.ndarray, radius: int) -> dict[tuple[int, int], str]:
    """{(i, j): transform} for i < j in different exact groups whose pHashes are within `radius`: plain (members
    of one hash value paired too), then the mirror and 180-degree hashes against all plain ones; a pair keeps the
    first transform it was found with. One multi-index search serves the three query sets."""
    hashes = np.fromiter(map(attrgetter("phash"), items), np.int64, len(items)).view(np.uint64)
    distinct, first = np.unique(hashes, return_inverse=True)
    order = np.argsort(first, kind="stable")  # the rows of hash value u: order[starts[u]:starts[u + 1]], ascending
    starts = np.searchsorted(first[order], np.arange(len(distinct) + 1))
    queries, owners, kinds = [distinct], [np.empty(0, np.int64)], [IDENTITY]
    for how, attr in ((MIRROR, "mirror"), (ROT180, "rot180")):
        values = list(map(attrgetter(attr), items))
        have = [k for k, v in enumerate(values) if v is not None] if None in values else range(len(values))
        if len(have):
            chosen = values if len(have) == len(values) else map(values.__getitem__, have)
            queries.append(np.fromiter(chosen, np.int64, len(have)).view(np.uint64))
            owners.append(np.asarray(have, np.int64))
            kinds.append(how)
    qi, ii = near_pairs(np.concatenate(queries), distinct, radius)
    sizes = starts[1:] - starts[:-1]
    found_i, found_j, found_how = [], [], []
    offset = 0
    for q, own, how in zip(queries, owners, kinds):
        sel = (qi >= offset) & (qi < offset + len(q))
        u, v = qi[sel] - offset, ii[sel]
        offset += len(q)
        if how == IDENTITY:
            keep = u <= v  # each unordered pair of hash values once (u == v: the members of one value)
            u, v = u[keep], v[keep]
            su, sv = sizes[u], sizes[v]
            # every member of u against every member of v, in (pair, member of u, member of v) order
            p, t = _runs(su * sv)
            i = order[starts[u][p] + t // sv[p]]
            j = order[starts[v][p] + t % sv[p]]
        else:
            sv = sizes[v]
            p, t = _runs(sv)
            i = own[u][p]
            j = order[starts[v][p] + t]
        ok = (i != j) & (roots[i] != roots[j])
        found_i.append(np.minimum(i[ok], j[ok]))
        found_j.append(np.maximum(i[ok], j[ok]))
        found_how.extend([how] * int(ok.sum()))
    a, b = np.concatenate(found_i), np.concatenate(found_j)
    if not len(a):
        return {}
    _, at = np.unique(a * len(items) + b, return_index=True)
    at.sort()  # the first occurrence of each pair, in the order found (the confirmations run in this order)
    return {(x, y): found_how[k] for x, y, k in zip(a[at].tolist(), b[at].tolist(), at.tolist())}


_BLOCK = 1 << 20  # lookups per numpy step: a few MB of temporaries, and few Python iterations
_MAX_BITS = 24  # widest chunk: its dense bucket tables have 2^24 entries
_DENSE = 0.5  # table rows per bucket from which the slot table pays (measured: 0.14 sparse wins, 1.4 dense)
_SLOTS = 4  # at most this many 32-bit rows per bucket in the slot table: numpy's take has fast paths for items of
# up to 16 bytes only (measured per 1M sorted lookups: 2.9 ms for 8 bytes, 5.3 ms for 16, 18 ms for a 32-byte row)
_OVERFLOW = 0.25  # the slot count is the least that leaves at most this share of the rows to the per-hit path
# (measured, 3n queries against n rows: 2 slots leaving 18-21% beat 4 by 7-14% at 700k-1M rows; at 1.4M the 21-bit
# chunks, where 2 would leave 27%, keep 4 and the search is unchanged, 0.98-1.04x; 2 slots leaving 41% are 1.22x slower)
_LAYERS = 8  # bucket rows checked layer by layer (cheap for the usual 1-3); a crowded bucket's rest at once
_CANDIDATE = 2.0  # cost of verifying one candidate, in lookups (measured: ~5 ns against ~2.5 ns)


def near_pairs(
    query: np.ndarray, index: np.ndarray, radius: int, layout: list[tuple[int, int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(qi, ii), sorted: every pair with popcount(query[qi] ^ index[ii]) <= radius (uint64 arrays), by multi-index
    hashing. The 64 bits are cut into m chunks with thresholds t_k whose sum(t_k + 1) exceeds the radius, so a pair
    within the radius differs by at most t_k bits on some chunk k (generalised pigeonhole: with m = 4 and radius 8
    the thresholds are 2, 1, 1, 1 rather than 2 on every chunk). Per chunk the larger side is sorted by chunk value
    into dense tables (first sorted row and row count per value) and the smaller side, sorted too, looks up its chunk
    XOR every mask of up to t_k bits, one mask over a block of consecutive sorted rows at a time, so the tables and
    the sorted rows are read nearly in order (a random order costs ~6x). Every candidate is checked on the full hash.
    When most values are used (from ~1M rows) the candidates outnumber the lookups: each value's first rows then sit
    side by side in a slot table (`_slots`) as 32-bit fingerprints of the bits beside the chunk, one gather filters
    them all against what the mask leaves of the radius, and only the passes are checked on the full hash (the rows
    past the slots take the per-hit path). The layout ([(bits, threshold)] per chunk) is
    `_layout`'s for these sizes unless given (tests).

    Hand-written on numpy: neither numpy nor scipy has a Hamming-radius search over packed 64-bit codes (scipy's
    cKDTree on the 64 unpacked 0/1 coordinates with p=1 is exact, but prunes little in 64 dimensions: 0.7 s for 5k
    random codes, 11 s for 20k, against 0.03 s and 0.08 s here; and the unpacked points take 64 times the memory).
    faiss-cpu 1.15's `IndexBinaryMultiHash` (3 tables of 21 bits, nflip 2, one thread) does the same multi-index
    hashing but took 17.4 s CPU for 300k random queries against 100k rows, against 0.31 s here."""
    query = np.ascontiguousarray(query, np.uint64)
    index = np.ascontiguousarray(index, np.uint64)
    if not len(query) or not len(index):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    swap = len(query) > len(index)  # look up from the smaller side: the candidates are the same either way
    probe, table = (index, query) if swap else (query, index)
    found_p, found_t = [], []
    shift = 0
    layout = layout or _layout(len(query), len(index), radius)
    covered = sum(t + 1 for _, t in layout) > radius or any(t >= b for b, t in layout)  # the pigeonhole bound
    if sum(b for b, _ in layout) != 64 or not covered:
        raise ValueError(f"layout {layout} does not cover 64 bits within radius {radius}")
    for b, t in layout:
        mask = np.uint64((1 << b) - 1)
        tkeys = ((table >> np.uint64(shift)) & mask).astype(np.intp)
        torder = _order(tkeys)
        tsorted = table[torder]
        counts = np.bincount(tkeys, minlength=1 << b)
        begin = np.cumsum(counts) - counts
        bucket = begin << 32 | counts  # first sorted row << 32 | row count, one gather
        # a busy table (most buckets used): every lookup checks its bucket's first `slots` rows straight from the
        # slot table, and only buckets of more rows take the per-hit path; a sparse one: only hits do
        dense = len(table) >= _DENSE * (1 << b)
        slots = _slot_count(counts, len(table)) if dense else 0
        flips = np.asarray(_flips(b, t), np.intp)
        if dense:
            slot = _slots(_fingerprint(tsorted, shift + b), tkeys[torder], begin, counts, slots, b)
            # what each mask leaves of the radius for the bits outside the chunk
            within = np.maximum(radius - np.bitwise_count(flips).astype(np.intp), 0).astype(np.uint8)[:, None]
        occupied = counts > slots  # the buckets with rows left for the per-hit path
        pkeys = ((probe >> np.uint64(shift)) & mask).astype(np.intp)
        porder = _order(pkeys)
        # rows per block: a power of two, and no wider than the probe side needs
        width = 1 << min(max(0, (_BLOCK // len(flips)).bit_length() - 1), (len(probe) - 1).bit_length())
        # pad the sorted probe rows to whole blocks with copies of the last one (their pairs are the last row's,
        # dropped as repeats below): a hit's row is then `hit & (width - 1)`, not a slow modulo
        porder = np.concatenate([porder, np.full(-len(porder) % width, porder[-1])])
        pk, ph = pkeys[porder], probe[porder]
        # each probe row's fingerprint once per slot: a contiguous broadcast (a strided one is ~3x slower)
        pslots = np.repeat(_fingerprint(ph, shift + b), slots) if dense else None
        for s in range(0, len(pk), width):
            keys = (flips[:, None] ^ pk[None, s : s + width]).ravel()  # row = one mask over consecutive sorted rows
            if dense:  # (mask, row, slot) order: the fingerprints' distance within what the mask leaves
                rows = np.take(slot, keys).view(np.uint32).reshape(len(flips), -1)
                np.bitwise_xor(rows, pslots[None, s * slots : (s + width) * slots], out=rows)
                look, rank = np.divmod(np.flatnonzero(np.bitwise_count(rows) <= within), slots)
                key = np.take(keys, look)
                real = rank < np.take(counts, key)  # an unused slot's 0 may pass
                look, pos = look[real], np.take(begin, key[real]) + rank[real]
                close = np.bitwise_count(np.take(ph, (look & (width - 1)) + s) ^ np.take(tsorted, pos)) <= radius
                if close.any():
                    found_p.append(np.take(porder, (look[close] & (width - 1)) + s))
                    found_t.append(np.take(torder, pos[close]))
            hit = np.flatnonzero(np.take(occupied, keys))
            if not len(hit):
                continue
            at = np.take(bucket, np.take(keys, hit))
            h = np.take(ph, (hit & (width - 1)) + s)
            deepest = int((at & 0xFFFFFFFF).max())
            for layer in range(slots, min(deepest, _LAYERS)):  # the layer-th row of each bucket with one
                if layer > slots:
                    deeper = np.flatnonzero((at & 0xFFFFFFFF) > layer)
                    hit, h, at = np.take(hit, deeper), np.take(h, deeper), np.take(at, deeper)
                pos = (at >> 32) + layer
                close = np.flatnonzero(np.bitwise_count(h ^ np.take(tsorted, pos)) <= radius)
                if len(close):
                    found_p.append(np.take(porder, (np.take(hit, close) & (width - 1)) + s))
                    found_t.append(np.take(torder, np.take(pos, close)))
            if deepest > _LAYERS:  # the rest of the few crowded buckets (clustered hashes), all rows at once
                deeper = np.flatnonzero((at & 0xFFFFFFFF) > _LAYERS)
                hit, h, at = np.take(hit, deeper), np.take(h, deeper), np.take(at, deeper)
                each, t = _runs((at & 0xFFFFFFFF) - _LAYERS)
                pos = np.take((at >> 32) + _LAYERS, each) + t
                close = np.flatnonzero(np.bitwise_count(np.take(h, each) ^ np.take(tsorted, pos)) <= radius)
                if len(close):
                    found_p.append(np.take(porder, (np.take(hit, np.take(each, close)) & (width - 1)) + s))
                    found_t.append(np.take(torder, np.take(pos, close)))
        shift += b
    if not found_p:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    fp, ft = np.concatenate(found_p), np.concatenate(found_t)
    q, i = (ft, fp) if swap else (fp, ft)
    key = np.sort(q.astype(np.int64) * len(index) + i)
    key = key[np.r_[True, key[1:] != key[:-1]]]  # a pair found through several chunks is returned once
    return key // len(index), key % len(index)


def _runs(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run, place in its run) for every element of consecutive runs of lengths n."""
    each = np.repeat(np.arange(len(n)), n)
    return each, np.arange(len(each)) - np.repeat(np.cumsum(n) - n, n)


def _slot_count(counts: np.ndarray, rows: int) -> int:
    """The least slots per bucket (up to `_SLOTS`) that leave at most `_OVERFLOW` of the rows to the per-hit path."""
    spread = np.bincount(counts)  # buckets per row count
    for k in (1, 2, 4):  # the item sizes numpy gathers fast
        beyond = int((spread[k + 1 :] * (np.arange(k + 1, len(spread)) - k)).sum())
        if k == _SLOTS or beyond <= _OVERFLOW * rows:
            return k
    raise ValueError(f"_SLOTS is {_SLOTS}, not 1, 2 or 4")


def _fingerprint(hashes: np.ndarray, at: int) -> np.ndarray:
    """The 32 bits of each hash from bit `at` on, wrapping: beside a chunk that ends at `at` and is at most 32 bits."""
    at %= 64
    turned = hashes >> np.uint64(at) | hashes << np.uint64(64 - at) if at else hashes
    return (turned & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _slots(prints: np.ndarray, skeys: np.ndarray, begin: np.ndarray, counts: np.ndarray, k: int, bits: int):
    """Each chunk value's first k sorted rows' fingerprints side by side (0 where unused), as 2^bits items of 4 k
    bytes: uint32, uint64 or complex128 for numpy's fast gather."""
    table = np.zeros((1 << bits, k), np.uint32)
    rank = np.arange(len(prints)) - np.repeat(begin, counts)  # each sorted row's place in its bucket
    keep = rank < k
    table[skeys[keep], rank[keep]] = prints[keep]
    return table.view({1: np.uint32, 2: np.uint64, 4: np.complex128}[k]).ravel()


def _order(keys: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative keys below 2^31 (at most 2^32 of them): one value sort of key << 32 | row,
    several times faster than numpy's argsort (vectorised sorts cover values, not indirect ones)."""
    return np.sort(keys.astype(np.int64) << 32 | np.arange(len(keys), dtype=np.int64)) & 0xFFFFFFFF


def _layout(nq: int, ni: int, radius: int) -> list[tuple[int, int]]:
    """[(bits, threshold)] per chunk with the least expected work for these sizes: lookups (the smaller side, once
    per mask) plus candidates (nq * ni / 2^bits per mask, for well-spread hashes) plus sorting and the tables. For m
    chunks the thresholds sum to radius + 1 - m (the pigeonhole bound), the larger ones on the wider chunks, whose
    width is searched too."""
    best, best_cost = [(64, radius)], float("inf")
    small, both = min(nq, ni), nq + ni
    for m in range(1, 17):
        need = max(radius + 1 - m, 0)
        hi, lo = need % m, m - need % m  # hi chunks of threshold need // m + 1, lo chunks of need // m
        for wide in range(1, _MAX_BITS + 1) if hi else [0]:
            rest = 64 - hi * wide
            if rest < lo:
                continue
            bits = [wide] * hi + [rest // lo + (k < rest % lo) for k in range(lo)]
            if max(bits) > _MAX_BITS:
                continue
            chunks = [(b, min(need // m + (k < hi), b)) for k, b in enumerate(bits)]
            cost = 0.0
            for b, t in chunks:
                masks = sum(math.comb(b, j) for j in range(t + 1))
                cost += masks * (small + _CANDIDATE * nq * ni / 2**b) + 10 * both + 2**b
            if cost < best_cost:
                best, best_cost = chunks, cost
    return best


def _flips(bits: int, upto: int) -> list[int]:
    """Every mask of `bits` bits with at most `upto` bits set."""
    return [sum(1 << p for p in c) for k in range(upto + 1) for c in itertools.combinations(range(bits), k)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _centred(a), _centred(b)
    den = float(np.sqrt(a.dot(a)) * np.sqrt(b.dot(b)))  # np.linalg.norm's own arithmetic, without its checks
    return float(a @ b / den) if den > 0 else (1.0 if np.array_equal(a, b) else 0.0)


def _centred(t: np.ndarray) -> np.ndarray:
    """`t.astype(float32).ravel() - t.mean()`, with the mean's own reduction (float64 for integer thumbnails) minus
    `np.mean`'s Python layer: confirmation runs once per candidate pair, and that layer was half its cost."""
    total = np.add.reduce(t, axis=None, dtype=np.float64 if t.dtype.kind in "biu" else None, keepdims=False, where=True)
    return t.astype(np.float32).ravel() - total.dtype.type(total / t.size)


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


_CHUNK = 2048  # pairs per numpy step in `_correlations`: ~50 MB of temporaries for 32x32 thumbnails


def _stackable(thumbs: list[np.ndarray]) -> bool:
    """Whether the thumbnails share one 2-D shape and an integer dtype of at most 4 bytes (float64 sums of a
    thumbnail are then exact in any order, so `_pearson` on their rows equals `correlation`)."""
    first = thumbs[0] if thumbs else None
    return first is not None and (
        first.ndim == 2
        and first.dtype.kind in "biu"
        and first.dtype.itemsize <= 4
        and all(t.shape == first.shape and t.dtype == first.dtype for t in thumbs)
    )


def _correlations(thumbs: list[np.ndarray], ia: np.ndarray, ib: np.ndarray, hows: np.ndarray) -> np.ndarray:
    """`_confirm(thumbs[ia[k]], thumbs[ib[k]], _HOWS[hows[k]])` for every k, as float64, with its exact arithmetic
    but over all pairs at once, in chunks: plain pairs as rows stacked from the two sides' thumbnails (per chunk, so
    no copy of all thumbnails is held), turned pairs as rows of their blurred thumbnails (each blurred once per side
    and transform), then `_pearson`. Thumbnails that are not `_stackable` are confirmed one pair at a time."""
    out = np.empty(len(ia), np.float64)
    if not len(ia):
        return out
    if not _stackable(thumbs):
        for k, (i, j, h) in enumerate(zip(ia.tolist(), ib.tolist(), hows.tolist())):
            out[k] = _confirm(thumbs[i], thumbs[j], _HOWS[h])
        return out
    plain = np.flatnonzero(hows == 0)
    if len(plain):
        for s in range(0, len(plain), _CHUNK):
            at = plain[s : s + _CHUNK]
            a = _rows([thumbs[i] for i in ia[at].tolist()], thumbs[0].dtype)
            out[at] = _pearson(a, _rows([thumbs[j] for j in ib[at].tolist()], thumbs[0].dtype))
    turned = np.flatnonzero(hows != 0)
    if len(turned):
        import cv2

        def soft(t: np.ndarray) -> np.ndarray:  # `_confirm`'s blur
            return cv2.GaussianBlur(np.ascontiguousarray(t, dtype=np.float32), (0, 0), 0.8).ravel()

        ua, wa = np.unique(ia[turned], return_inverse=True)
        ub, wb = np.unique(ib[turned].astype(np.int64) * len(_HOWS) + hows[turned], return_inverse=True)
        sa = _rows([soft(thumbs[i]) for i in ua.tolist()], np.float32)
        sb = _rows([soft(_TURN[_HOWS[u % len(_HOWS)]](thumbs[u // len(_HOWS)])) for u in ub.tolist()], np.float32)
        for s in range(0, len(turned), _CHUNK):
            out[turned[s : s + _CHUNK]] = _pearson(sa[wa[s : s + _CHUNK]], sb[wb[s : s + _CHUNK]])
    return out


def _rows(arrays: list[np.ndarray], dtype) -> np.ndarray:
    """The arrays (of one shape) as the rows of one 2-D array; filled row by row, several times faster than
    `np.stack` for many small arrays."""
    out = np.empty((len(arrays), *arrays[0].shape), dtype)
    for k, t in enumerate(arrays):
        out[k] = t
    return out.reshape(len(arrays), -1)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`correlation(a[k], b[k])` for every row k of two arrays of one dtype, as float64, with its exact arithmetic:
    the rows centred as `_centred` does (each row's reduction is the one a contiguous thumbnail gets), and each dot
    product one BLAS dot per row (a stacked vector-by-vector matmul), as `a.dot(b)` and `a @ b` are."""
    ca, cb = _centred_rows(a), _centred_rows(b)

    def dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.matmul(x[:, None, :], y[:, :, None]).ravel()

    den = np.sqrt(dot(ca, ca)) * np.sqrt(dot(cb, cb))
    pos = den > 0
    r = np.empty(len(a), np.float64)
    r[pos] = dot(ca[pos], cb[pos]) / den[pos]
    if not pos.all():
        r[~pos] = np.all(ca[~pos] == cb[~pos], axis=1)
    return r


def _centred_rows(t: np.ndarray) -> np.ndarray:
    total = np.add.reduce(t, axis=1, dtype=np.float64 if t.dtype.kind in "biu" else None)
    return t.astype(np.float32) - (total / t.shape[1]).astype(total.dtype, copy=False)[:, None]


def _groups(keys: Iterable[str | None]) -> list[list[int]]:
    """The rows of every key held by more than one row (empty keys never group), members ascending, groups in the
    order their second member appears. Rows are grouped by `hash(key)` in numpy and each group's keys compared, so a
    hash collision between different keys is split again by key (`_groups_by_key`)."""
    keys = list(keys)
    h = np.fromiter(map(hash, keys), np.int64, len(keys))
    maybe = np.flatnonzero((h == hash("")) | (h == hash(None)))  # the empty keys are among these
    empty = maybe[np.fromiter((not keys[j] for j in maybe.tolist()), bool, len(maybe))]
    rows = np.delete(np.arange(len(keys)), empty)
    _, inv, counts = np.unique(np.delete(h, empty), return_inverse=True, return_counts=True)
    shared = counts[inv] > 1
    rows, inv = rows[shared], inv[shared]
    if not len(rows):
        return []
    rows = rows[np.argsort(inv, kind="stable")]  # by hash value, each one's rows ascending
    out: list[list[int]] = []
    for group in np.split(rows, np.flatnonzero(np.diff(np.sort(inv))) + 1):
        group = group.tolist()
        k = keys[group[0]]
        if all(keys[j] == k for j in group):
            out.append(group)
        else:
            out.extend(_groups_by_key([keys[j] for j in group], group))
    out.sort(key=lambda g: g[1])
    return out


def _groups_by_key(keys: list[str], rows: list[int]) -> list[list[int]]:
    """The rows (ascending) of every key held by more than one of them."""
    by: dict[str, list[int]] = {}
    for k, i in zip(keys, rows):
        by.setdefault(k, []).append(i)
    return [g for g in by.values() if len(g) > 1]


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
