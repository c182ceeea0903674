"""How curate's merge (dedup + patient splits over all shards) grows with the row count: time and peak memory at
10k, 100k and 1M synthetic rows.

    .venv/bin/python benchmarks/curate_merge_scale.py [--sizes 10000 100000 1000000] [--json out.json]

Each size runs in its own process (so its peak RSS is its own). Rows are synthetic but shaped like curation's: a
random 64-bit pHash per image (plus its mirror and 180-degree hashes), SHA-256 / pixel digests, a rank, and a
patient key with an official split for 30% of them; 5% of the rows are planted near-duplicates of another row (pHash within 4
bits, the same thumbnail), 1% mirrored copies. Timed: `find_duplicates` (exact groups, multi-index candidate search
for the plain, mirrored and rotated hashes, thumbnail confirmation, canonical choice) and `splits.assign` (patient
groups linked by the duplicates). Not timed: reading the work parts and writing the dataset, which stream. The
figures to compare across machines are the growth ratios: time(10n) / time(n) against 10 * log(10n) / log(n).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time


def one(n: int) -> dict:
    import numpy as np

    from retinalogos_hub.config import load_config
    from retinalogos_hub.curate import CurateConfig
    from retinalogos_hub.curate.dedup import Item, find_duplicates
    from retinalogos_hub.curate.splits import assign

    cfg = load_config(CurateConfig)
    rng = np.random.default_rng(n)
    hashes, mirror, rot = (rng.integers(0, 2**64 - 1, n, dtype=np.uint64) for _ in range(3))
    base = np.arange(n)
    odd = rng.permutation(np.arange(1, n, 2))  # copies sit at odd rows, their originals (never altered) at even ones
    planted, mirrored = odd[: n // 20], odd[n // 20 : n // 20 + n // 100]
    for k in planted:  # a near copy of row k - 1: within 4 bits
        src = k - 1
        flips = rng.choice(64, rng.integers(0, 5), replace=False)
        hashes[k] = hashes[src] ^ np.uint64(sum(1 << int(f) for f in flips))
        base[k] = src
    for k in mirrored:  # a mirrored copy of row k - 1
        src = k - 1
        hashes[k], mirror[k] = mirror[src], hashes[src]
        base[k] = src
    hashes, mirror, rot = (a.view(np.int64) for a in (hashes, mirror, rot))  # stored signed, as in the work rows
    items = [
        Item(
            f"s/{k}", f"sha{k}", f"px{k}", int(hashes[k]), (False, -(k % 7), 0.0, f"s/{k}"), int(mirror[k]), int(rot[k])
        )
        for k in range(n)
    ]
    rows = [
        (f"s/p{k // 2}", ("train", "test", None, None, None, "validation", None, None, None, None)[k % 10])
        for k in range(n)
    ]

    def thumbs(ids: set[str]) -> dict:
        out = {}
        for i in ids:
            k = int(i.split("/")[1])
            t = np.random.default_rng(int(base[k])).integers(0, 255, (32, 32), dtype=np.uint8)
            out[i] = t[:, ::-1].copy() if k in mirrored_set else t
        return out

    mirrored_set = set(mirrored.tolist())
    t0 = time.perf_counter()
    dups = find_duplicates(items, thumbs, cfg.dedup)
    t1 = time.perf_counter()
    links = [(rows[int(d.split("/")[1])][0], rows[int(k.split("/")[1])][0]) for d, (k, _, _) in dups.items()]
    assign([r for i, r in enumerate(rows) if f"s/{i}" not in dups], links, cfg.splits)
    t2 = time.perf_counter()
    by_how = {}
    for _, _, how in dups.values():
        by_how[how] = by_how.get(how, 0) + 1
    return {
        "rows": n,
        "dedup_s": round(t1 - t0, 2),
        "splits_s": round(t2 - t1, 2),
        "merge_s": round(t2 - t0, 2),
        "duplicates": len(dups),
        "planted": len(planted) + len(mirrored),
        "by_transform": by_how,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    results = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        line = (
            f"{n:>9,} rows: merge {r['merge_s']:>7.2f} s (dedup {r['dedup_s']} s, splits {r['splits_s']} s), peak RSS "
        )
        line += f"{r['peak_rss_mb']} MB, {r['duplicates']} duplicates of {r['planted']} planted {r['by_transform']}"
        if len(results) > 1:
            a, b = results[-2], r
            growth = b["merge_s"] / max(a["merge_s"], 1e-9)
            nlogn = (b["rows"] * math.log(b["rows"])) / (a["rows"] * math.log(a["rows"]))
            line += f"; x{growth:.1f} time for x{b['rows'] / a['rows']:.0f} rows (n log n: x{nlogn:.1f})"
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
