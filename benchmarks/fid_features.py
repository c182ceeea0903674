"""FID feature extraction throughput: `evaluate.features.extract` (batched, resize in loader workers, inference mode) vs a
naive per-image loop (decode, resize, one forward per image) as the baseline, run side by side on the same images.

    OMP_NUM_THREADS=1 python benchmarks/fid_features.py --n 64 --size 512            # CPU
    python benchmarks/fid_features.py --device cuda --n 512 --size 1024 --workers 8   # GPU

Prints images/s for both and their ratio, and checks that both give the same features. Images are procedural
fundus JPEGs written once to a temp folder (the decode cost of real JPEGs is part of what is measured).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from retinalogos_hub.config import load_config
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.evaluate.features import InceptionExtractor, extract
from retinalogos_hub.evaluate.fid import FidConfig, InceptionFeatures, resize_tf1
from retinalogos_hub.evaluate.images import open_images


def naive(images, model: InceptionFeatures, device: str) -> torch.Tensor:
    feats = []
    for i in range(len(images)):
        x = torch.from_numpy(np.array(images.image(i), dtype=np.uint8)).permute(2, 0, 1)[None].float().to(device)
        with torch.no_grad():  # the plain TorchScript call, default executor settings
            feats.append(model.net((resize_tf1(x) - 128.0) / 128.0).double().cpu())
    return torch.cat(feats)


def timed(fn, device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--size", type=int, default=512, help="square JPEG side, px")
    p.add_argument("--batch-size", type=int, default=None, help="default: recipes/eval/fid.yaml's for the device")
    p.add_argument("--workers", type=int, default=None, help="default: recipes/eval/fid.yaml's")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="best of N, interleaved")
    args = p.parse_args()
    cfg = load_config(FidConfig)  # the shipped recipe: what `retinalogos evaluate fid` runs with
    batch_size = args.batch_size or cfg.batch_size_for(args.device)
    workers = cfg.workers if args.workers is None else args.workers
    kw = {"batch_size": batch_size, "workers": workers, "device": args.device}

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            sub = "warm" if i < 2 else "run"  # two warm-up images: TorchScript profiles its first calls
            (Path(tmp) / sub).mkdir(exist_ok=True)
            fundus_image(args.size, seed=i, dr_grade=i % 5).save(Path(tmp) / sub / f"{i:05d}.jpg", quality=90)
        images, warm = open_images(Path(tmp) / "run"), open_images(Path(tmp) / "warm")
        extractor = InceptionExtractor(cfg.weights).to(args.device)
        model = extractor.net
        extract(warm, extractor, **kw)
        naive(warm, model, args.device)
        fast_t, naive_t = [], []
        for _ in range(args.repeats):  # interleaved, so load from other processes hits both alike
            ref, t = timed(lambda: naive(images, model, args.device), args.device)
            naive_t.append(t)
            got, t = timed(lambda: extract(images, extractor, **kw), args.device)
            fast_t.append(t)
    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(),
        "images": len(images),
        "size": args.size,
        "batch_size": batch_size,
        "workers": workers,
        "naive_img_per_s": len(images) / min(naive_t),
        "extract_img_per_s": len(images) / min(fast_t),
        "speedup": min(naive_t) / min(fast_t),
        "max_abs_feature_diff": float((ref - got).abs().max()),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
