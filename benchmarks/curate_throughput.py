"""Curated images/s on EyePACS-sized JPEGs vs a naive baseline, side by side, at 1 and 2 worker processes.

    .venv/bin/python benchmarks/curate_throughput.py [--images 48] [--size 512] [--workdir DIR]

Images are generated procedurally at camera sizes (2592x1944 up to 4752x3168, with sensor noise so JPEG sizes are
realistic) and cached in the workdir. Ours = `retinalogos_hub.curate.process.process` (DCT-domain draft decode, FOV,
crop, resize, quality, hashes, re-encode). Naive = PIL full decode + the same FOV detection and crop + resize +
re-encode. Both run in the same pool setup; the ratios are what to compare across machines.

On a shared machine other processes take CPU from the runs (the 2-worker ones most): each line also gives the
rates per CPU-second the workers actually got (Linux schedstat) and how their time split between running, waiting
for a CPU and idling (idle = the pool's own cost), so the per-core ratio and the scaling read true under load.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIZES = [(2592, 1944), (3888, 2592), (4752, 3168), (3216, 2136)]


def make_images(workdir: Path, n: int) -> list[Path]:
    from retinalogos_hub.demo.fundus import fundus_image

    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        p = workdir / f"v2-{i:03d}_{w}x{h}.jpeg"
        if not p.exists():
            small = np.asarray(fundus_image(w // 4, h // 4, seed=i, dr_grade=i % 5, truncate=0.1 * (i % 2)))
            big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
            # sensor noise, calibrated so file sizes match real EyePACS JPEGs (~0.6-1.5 MB at these sizes)
            big += np.random.default_rng(i).normal(0, 1.5, (h, w, 1)).astype(np.int16)
            Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


@functools.cache
def recipe(size: int):
    """The shipped curation recipe at `size` (read once per worker, outside the timed work)."""
    from retinalogos_hub.config import load_config
    from retinalogos_hub.curate.settings import CurateConfig

    return dataclasses.replace(load_config(CurateConfig), size=size)


def ours(path: str, size: int) -> int:
    from retinalogos_hub.curate.process import process

    row = process({"id": path, "path": path}, recipe(size))
    assert row["status"] == "ok", row["reason"]
    return len(row["image"])


def naive(path: str, size: int) -> int:
    from retinalogos_hub.curate.fov import crop_square, detect_fov

    rgb = np.asarray(Image.open(path).convert("RGB"))  # full decode
    fov = detect_fov(rgb, recipe(size).fov)
    im = Image.fromarray(crop_square(rgb, fov, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return len(buf.getvalue())


def _init(ready, fn, args) -> None:
    cv2.setNumThreads(1)
    fn(*args)  # imports and first-call costs, in every worker (a warm-up map may hand all its tasks to one worker)
    ready.wait()


def _schedstat(pids: list[int]) -> np.ndarray:
    """[ns on a CPU, ns runnable but waiting for a CPU] summed over `pids` (Linux /proc/PID/schedstat)."""
    return np.array([[int(v) for v in Path(f"/proc/{pid}/schedstat").read_text().split()[:2]] for pid in pids]).sum(0)


def rate(fn, paths: list[Path], size: int, workers: int) -> tuple[float, np.ndarray]:
    """(images/s, worker time split [on a CPU, waiting for a CPU, idle] as fractions of the wall time)."""
    args = [(str(p), size) for p in paths]
    # forkserver, as the curate pipeline: make_images ran OpenCV threads here, and forking that state can deadlock
    ctx = mp.get_context("forkserver")
    ready = ctx.Barrier(workers + 1)
    with ctx.Pool(workers, initializer=_init, initargs=(ready, fn, args[0])) as pool:
        ready.wait()  # the clock starts once every worker is warm
        pids = [p.pid for p in mp.active_children()]
        s0, t = _schedstat(pids), time.perf_counter()
        pool.starmap(fn, args, chunksize=1)
        wall = time.perf_counter() - t
        busy = (_schedstat(pids) - s0) / (1e9 * wall * workers)
        return len(paths) / wall, np.append(busy, 1 - busy.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=48, help="how many EyePACS-sized JPEGs to generate")
    ap.add_argument("--dir", type=Path, help="benchmark these JPEGs instead (e.g. real EyePACS files)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each is reported")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "curate-bench")
    args = ap.parse_args()
    paths = sorted(args.dir.glob("*.jp*g")) if args.dir else make_images(args.workdir, args.images)
    cv2.setNumThreads(1)
    mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    print(f"{len(paths)} JPEGs, {mb:.1f} MB each on average, output {args.size}px")
    # naive and ours alternate within each round, so load from other processes hits both alike; best round wins
    load = os.getloadavg()
    best: dict[tuple[str, int], tuple[float, np.ndarray]] = {}
    for _ in range(args.rounds):
        for workers in (1, 2):
            for name, fn in (("naive", naive), ("ours", ours)):
                best[name, workers] = max(
                    best.get((name, workers), (0.0,)), rate(fn, paths, args.size, workers), key=lambda r: r[0]
                )
    # other processes take cores from the 2-worker runs first ("waiting for a CPU"); "idle" is what the pool itself
    # costs (workers waiting on the parent or a lock). Per CPU-second rates divide out the first.
    per_cpu = {k: r / (k[1] * split[0]) for k, (r, split) in best.items()}
    for w in (1, 2):
        (n, _), (o, split), cn, co = best["naive", w], best["ours", w], per_cpu["naive", w], per_cpu["ours", w]
        print(f"workers={w}: naive {n:6.2f} img/s   ours {o:6.2f} img/s   ratio {o / n:5.2f}x")
        print(
            f"  per CPU-second: naive {cn:6.2f}   ours {co:6.2f}   ratio {co / cn:5.2f}x   (ours' workers: "
            f"{split[0]:.0%} on a CPU, {split[1]:.0%} waiting for one, {max(0.0, split[2]):.0%} idle)"
        )
    for name in ("naive", "ours"):
        print(
            f"scaling 1->2 workers, {name}: {best[name, 2][0] / best[name, 1][0]:.2f}x wall, "
            f"{2 * per_cpu[name, 2] / per_cpu[name, 1]:.2f}x per CPU obtained"
        )
    print(f"load average (1 min) before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":  # forkserver workers import __main__: keep it side-effect free
    main()
