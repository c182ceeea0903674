"""Official splits kept (`official_split`), orientation-robust dedup (mirror / 180-degree copies, the transform in the
manifest) and `attach-images` re-applying curation's orientation (issue 15)."""

from __future__ import annotations

import csv
import itertools
from dataclasses import replace

import datasets
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from retinalogos_hub.config import load_config
from retinalogos_hub.curate import CurateConfig, curate
from retinalogos_hub.curate.dedup import MIRROR, ROT180, DedupConfig, Item, find_duplicates
from retinalogos_hub.curate.process import ROTATED, process
from retinalogos_hub.curate.splits import SplitConfig, assign
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.demo.layouts import write_layout
from retinalogos_hub.schema import CURATED

CFG = replace(load_config(CurateConfig), size=64, format="png", commit_every=4)


def test_official_splits_are_kept_and_validation_is_carved_only_from_official_train_when_asked():
    rows = [(f"t{i}", "train") for i in range(200)] + [("v", "validation"), ("x", "test"), ("free", None)]
    keep = assign(rows, [], SplitConfig(0.2, 0.2, "s", False))
    assert {keep[f"t{i}"] for i in range(200)} == {"train"} and keep["v"] == "validation" and keep["x"] == "test"
    carve = assign(rows, [], SplitConfig(0.2, 0.2, "s", True))
    drawn = [carve[f"t{i}"] for i in range(200)]
    assert set(drawn) == {"train", "validation"} and 20 <= drawn.count("validation") <= 60  # never test
    assert carve["v"] == "validation" and carve["x"] == "test"
    # a patient in official train and official test goes to test whole (the strictest wins)
    linked = assign([("a", "train"), ("b", "test")], [("a", "b")], SplitConfig(0.2, 0.2, "s", False))
    assert linked == {"a": "test", "b": "test"}
    assert "official_split" in CURATED


def test_idrid_official_split_survives_curation(tmp_path):
    root = write_layout("idrid", tmp_path / "idrid", n=8)
    result = curate([("idrid", root)], tmp_path / "out", cfg=CFG, progress=False)
    ds = datasets.load_from_disk(str(result.out))
    pairs = {(r["official_split"], r["split"]) for r in ds}
    assert pairs == {("train", "train"), ("test", "test")}, pairs


def _mirrored_copies(tmp_path):
    """aptos with image 0 re-hosted mirrored and image 1 re-hosted turned 180 degrees, under new ids."""
    root = write_layout("aptos", tmp_path / "aptos", n=4, size=160)
    images = sorted((root / "train_images").glob("*.png"))
    Image.open(images[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "train_images" / "mirrored.png")
    Image.open(images[1]).rotate(180).save(root / "train_images" / "turned.png")
    with (root / "train.csv").open("a", newline="") as fh:
        csv.writer(fh).writerows([["mirrored", 0], ["turned", 1]])
    return root, images


def test_mirrored_and_rotated_copies_are_duplicates_with_their_transform(tmp_path):
    root, images = _mirrored_copies(tmp_path)
    result = curate([("aptos", root)], tmp_path / "out", cfg=CFG, progress=False)
    manifest = {r["id"]: r for r in pq.read_table(result.manifest).to_pylist()}
    assert result.duplicates == 2 and result.kept == 4
    for copy, original, how, word in (
        ("aptos/mirrored", f"aptos/{images[0].stem}", MIRROR, "mirrored"),
        ("aptos/turned", f"aptos/{images[1].stem}", ROT180, "180-degree rotated"),
    ):
        dup = manifest[copy] if manifest[copy]["status"] == "duplicate" else manifest[original]  # either may be kept
        assert dup["duplicate_of"] in (copy, original) and dup["duplicate_of"] != dup["id"]
        assert dup["match_transform"] == how and dup["reason"].startswith(f"{word} near-duplicate"), dup
    assert all(r["match_transform"] is None for r in manifest.values() if r["status"] == "kept")


def test_find_duplicates_queries_with_the_transformed_hashes():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32), dtype=np.uint8)
    thumbs = {"x/a": a, "x/b": a[:, ::-1].copy(), "x/c": rng.integers(0, 255, (32, 32), dtype=np.uint8)}
    items = [
        Item("x/a", "s1", "p1", 0b1111, (False, 0, 0.0, "x/a"), mirror=~0b1111, rot180=12345),
        Item("x/b", "s2", "p2", ~0b1111, (False, 0, 0.0, "x/b"), mirror=0b1111, rot180=999),
        Item("x/c", "s3", "p3", ~0b1110, (False, 0, 0.0, "x/c"), mirror=0b1110, rot180=7),  # hash close, pixels not
    ]
    dups = find_duplicates(items, lambda ids: {i: thumbs[i] for i in ids}, DedupConfig(8, 0.95))
    assert set(dups) == {"x/b"} and dups["x/b"][0] == "x/a" and dups["x/b"][2] == MIRROR
    assert find_duplicates(items[:1] + items[2:], lambda ids: {i: thumbs[i] for i in ids}, DedupConfig(8, 0.95)) == {}


def test_attach_passes_source_and_eye_so_orientation_is_reapplied(tmp_path):
    """attach-images calls `process` with the row's source and eye: an inverted EyePACS photo comes back turned."""
    path = tmp_path / "10_right.jpeg"
    fundus_image(640, 480, seed=3, eye="right", notch=False).rotate(180).save(path, "JPEG", quality=92)
    cfg = replace(CFG, size=128)
    plain = process({"id": "eyepacs/10_right", "path": str(path)}, cfg)
    turned = process({"id": "eyepacs/10_right", "path": str(path), "source": "eyepacs", "eye": "right"}, cfg)
    assert plain["orientation"] is None and turned["orientation"] == ROTATED
    import inspect

    from retinalogos_hub.hub import attach

    # the eye comes from the user's own copy: a tier that withholds labels publishes no eye
    assert '"source": row["source"], "eye": rec.get("eye")' in inspect.getsource(attach._image)


def test_near_pairs_equals_brute_force_and_finds_every_planted_copy():
    from retinalogos_hub.curate.dedup import near_pairs

    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**64 - 1, 400, dtype=np.uint64)
    b = a.copy()
    for k in range(0, 400, 2):  # a near copy of every other hash, 0-10 bits off
        for f in rng.choice(64, rng.integers(0, 11), replace=False):
            b[k] ^= np.uint64(1) << np.uint64(int(f))
    both = np.concatenate([a, b])
    dist = np.bitwise_count(both[:, None] ^ both[None, :])
    for radius in (0, 3, 8):
        qi, ii = near_pairs(both, both, radius)
        assert set(zip(qi.tolist(), ii.tolist())) == {(int(x), int(y)) for x, y in zip(*np.nonzero(dist <= radius))}
    # through find_duplicates: copies at a higher index than their original (pairs are not in hash order)
    signed = both.view(np.int64)
    items = [Item(f"x/{k}", f"s{k}", f"p{k}", int(signed[k]), (False, 0, 0.0, f"x/{k:04d}")) for k in range(800)]
    thumbs = {f"x/{k}": rng.integers(0, 255, (8, 8), dtype=np.uint8) for k in range(400)}
    thumbs |= {f"x/{400 + k}": thumbs[f"x/{k}"] for k in range(400)}
    dups = find_duplicates(items, lambda ids: {i: thumbs[i] for i in ids}, DedupConfig(8, 0.95))
    within = {k for k in range(400) if dist[k, 400 + k] <= 8}
    assert {int(d.split("/")[1]) - 400 for d in dups} >= within


def _planted_hashes(rng, n: int, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plain, mirror, rot180) uint64 hashes of n rows: half uniform, half in tight clusters (skewed chunk buckets,
    repeated values), with neighbours planted at every distance up to radius + 2, plainly and through the mirror and
    180-degree hashes of other rows."""
    centres = rng.integers(0, 2**64 - 1, 8, dtype=np.uint64)
    noise = np.packbits(rng.random((n, 64)) < 0.12, axis=1).view(np.uint64).ravel()
    plain = np.where(np.arange(n) % 2 == 0, rng.integers(0, 2**64 - 1, n, dtype=np.uint64), centres[np.arange(n) % 8])
    plain ^= np.where(np.arange(n) % 2 == 0, np.uint64(0), noise)
    mirror, rot = (rng.integers(0, 2**64 - 1, n, dtype=np.uint64) for _ in range(2))

    def near(h, d):
        return h ^ np.uint64(sum(1 << int(f) for f in rng.choice(64, d, replace=False)))

    for k in range(1, n, 3):  # every third row is a copy of the row before at distance 0..radius + 2
        d = int(rng.integers(0, radius + 3))
        target = (plain, mirror, rot)[k // 3 % 3]  # plain copy, or a mirrored / turned one matched through that hash
        target[k] = near(plain[k - 1], d)
    return plain, mirror, rot


def test_multi_index_search_has_full_recall_against_brute_force(monkeypatch):
    """A faster near-pair search must not lose pairs: every layout `_layout` picks from 1k to 1.4M rows, with and
    without the dense first-row table, on uniform and clustered hashes with planted plain, mirrored and rotated
    neighbours, equals a brute-force Hamming search."""
    from retinalogos_hub.curate import dedup

    rng = np.random.default_rng(7)
    n = 1500
    plain, mirror, rot = _planted_hashes(rng, n, 8)
    queries = np.concatenate([plain, mirror, rot])
    dist = np.bitwise_count(queries[:, None] ^ plain[None, :])
    for radius in (0, 3, 8):
        want = set(zip(*(x.tolist() for x in np.nonzero(dist <= radius))))
        layouts = {tuple(dedup._layout(3 * m, m, radius)) for m in (1_000, 10_000, 100_000, 1_000_000, 1_400_000)}
        assert len(layouts) > 1 or radius == 0
        # the shipped radius: sparse, and the slot table with 1, 2 and 4 slots (a crowded bucket's rest per hit)
        modes = ((float("inf"), 1), (0.0, 1), (0.0, 2), (0.0, 4)) if radius == 8 else ((dedup._DENSE, dedup._SLOTS),)
        for layout, (dense, slots) in itertools.product(layouts, modes):
            monkeypatch.setattr(dedup, "_DENSE", dense)
            monkeypatch.setattr(dedup, "_SLOTS", slots)
            monkeypatch.setattr(dedup, "_OVERFLOW", 0.0)  # always the most slots: the per-hit rest is tested too
            qi, ii = dedup.near_pairs(queries, plain, radius, list(layout))
            assert set(zip(qi.tolist(), ii.tolist())) == want, (radius, layout, dense, slots)
            assert np.all(np.diff(qi * n + ii) > 0)  # sorted, each pair once
        qi, ii = dedup.near_pairs(queries[:300], plain, radius)  # the query side smaller than the index side too
        assert set(zip(qi.tolist(), ii.tolist())) == {(q, i) for q, i in want if q < 300}


def test_candidate_pairs_equal_brute_force_with_their_transform():
    """find_duplicates' candidates: every pair of rows within the radius plainly, else through a mirror hash (either
    side), else through a 180-degree hash, named by the first transform that matched; exact copies excluded."""
    from retinalogos_hub.curate.dedup import IDENTITY, _candidates

    rng = np.random.default_rng(11)
    n = 1500
    plain, mirror, rot = (a.view(np.int64) for a in _planted_hashes(rng, n, 8))
    items = [
        Item(
            f"x/{k}",
            f"s{k - 1 if k % 50 == 1 else k}",
            f"p{k}",
            int(plain[k]),
            (False, 0, 0.0, f"x/{k}"),
            int(mirror[k]),
            int(rot[k]),
        )
        for k in range(n)
    ]  # every 50th row (from 1) is a byte-identical copy of the row before it: same exact group, never a candidate
    roots = np.arange(n)
    roots[1::50] = roots[0::50][: len(roots[1::50])]
    u = plain.view(np.uint64)
    close = {
        h: np.bitwise_count(t.view(np.uint64)[:, None] ^ u[None, :]) <= 8
        for h, t in ((IDENTITY, plain), (MIRROR, mirror), (ROT180, rot))
    }
    want = {}
    for how in (IDENTITY, MIRROR, ROT180):
        m = close[how] | close[how].T
        for i, j in zip(*np.nonzero(np.triu(m, 1))):
            if roots[i] != roots[j]:
                want.setdefault((int(i), int(j)), how)
    got = _candidates(items, roots, 8)
    assert got == want and {MIRROR, ROT180} <= set(got.values())


def test_vectorised_confirmation_equals_the_per_pair_correlation_exactly():
    """`_correlations` (all pairs at once, stacked) gives `_confirm`'s values bit for bit, in every orientation, for
    32x32 and 8x8 uint8 thumbnails, constant ones (no variance) and self pairs; other thumbnails (float, mixed
    shapes) take the per-pair path."""
    from retinalogos_hub.curate.dedup import _HOWS, _confirm, _correlations

    rng = np.random.default_rng(5)
    for side in (32, 8):
        thumbs = list(rng.integers(0, 256, (300, side, side), dtype=np.uint8))
        thumbs += [np.full((side, side), 7, np.uint8), np.full((side, side), 9, np.uint8), thumbs[0][:, ::-1]]
        ia, ib = rng.integers(0, len(thumbs), 2000), rng.integers(0, len(thumbs), 2000)
        ia[:6], ib[:6] = [300, 300, 301, 0, 302, 5], [300, 301, 5, 0, 0, 5]
        hows = rng.integers(0, 3, 2000).astype(np.int8)
        hows[:6] = [0, 0, 1, 2, 1, 0]
        want = [_confirm(thumbs[i], thumbs[j], _HOWS[h]) for i, j, h in zip(ia, ib, hows)]
        assert np.array_equal(_correlations(thumbs, ia, ib, hows), want)
    mixed = [rng.random((8, 8), dtype=np.float32) for _ in range(20)] + [rng.integers(0, 256, (6, 6), dtype=np.uint8)]
    ia, ib, hows = np.array([0, 3, 5]), np.array([1, 3, 9]), np.array([0, 1, 2], np.int8)
    want = [_confirm(mixed[i], mixed[j], _HOWS[h]) for i, j, h in zip(ia, ib, hows)]
    assert np.array_equal(_correlations(mixed, ia, ib, hows), want)


def test_exact_groups_by_hash_split_colliding_keys():
    """`_groups` (rows grouped by hash in numpy): every non-empty key held by several rows, members ascending,
    groups in the order their second member appears; keys whose hashes collide are still told apart."""
    from retinalogos_hub.curate.dedup import _groups

    class Colliding(str):
        def __hash__(self):
            return 0  # every key collides (and with the empty key's hash)

    def reference(keys):
        first, groups = {}, {}
        for i, k in enumerate(keys):
            if k:
                j = first.setdefault(k, i)
                if j != i:
                    groups.setdefault(j, [j]).append(i)
        return list(groups.values())

    rng = np.random.default_rng(2)
    for make in (str, Colliding):
        keys = [None if v == 0 else "" if v == 1 else make(f"k{v}") for v in rng.integers(0, 60, 400).tolist()]
        assert _groups(iter(keys)) == reference(keys)
    assert _groups([]) == [] and _groups(["a", "b", None, ""]) == []
