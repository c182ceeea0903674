"""Memorisation audit: does the generator hand back its training images?

Every synthetic image is embedded (`features.py`: inception, pixels, a DINOv2, any backbone) and its nearest training
images found (cosine distance, features centred on the training mean). The yardstick is real images the generator never saw: a `--holdout` set, or, without
one, a random `holdout_fraction` of the training set, each matched against the rest of the training set. Real
unseen images sit at some distance from their nearest training image; a synthetic image far closer than that (below
`margin` x the `quantile`-quantile of the real-to-train distances) is flagged as a near-copy. The report shows each
flagged pair side by side, the two distance distributions, and a one-sided Mann-Whitney test of whether synthetic
images lie closer to the training set than unseen real ones do. `report.json` lists `near_copies` as
{fake, train, distance}.

The settings live in `MemorizationConfig` (`recipes/eval/memorization.yaml`); features are cached under
OUT/.work/memorization/ like `evaluate fid`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .. import stage
from ..config import load_config
from ..models import resolve_device
from .fid import BatchSizes
from .images import ImageSet, open_images
from .report import Report, Table, write_report


@dataclass(frozen=True)
class MemorizationConfig:
    """`evaluate memorization`'s recipe (`recipes/eval/memorization.yaml`)."""

    DEFAULT_RECIPE: ClassVar[str] = "eval/memorization.yaml"

    features: str  # the feature space (`features.load_features`)
    quantile: float  # of the real-to-train nearest distances: where unseen real images start
    margin: float  # a synthetic image below margin x that quantile is a near-copy
    holdout_fraction: float  # without --holdout: this share of the training set plays the unseen real images
    top_k: int  # nearest training images listed per flagged synthetic image
    show: int  # flagged pairs shown in the report (report.json lists all)
    batch_size: BatchSizes
    workers: int
    seed: int  # which training images are held out (without --holdout)

    def __post_init__(self):
        if not 0 < self.quantile < 1 or not 0 < self.margin <= 1 or not 0 < self.holdout_fraction < 1:
            raise ValueError("0 < quantile < 1, 0 < margin <= 1 and 0 < holdout_fraction < 1 are required")
        if self.top_k < 1 or self.show < 0 or self.workers < 0:
            raise ValueError("top_k >= 1, show >= 0 and workers >= 0 are required")

    def batch_size_for(self, device: str) -> int:
        return self.batch_size.cuda if str(device).startswith("cuda") else self.batch_size.cpu


@dataclass
class MemorizationResult:
    out: Path
    threshold: float
    near_copies: list[dict]  # {fake, train, distance, neighbours}, closest first
    fake_distances: list[float]  # each synthetic image's nearest-training distance
    holdout_distances: list[float]  # each unseen real image's
    p_value: float  # one-sided Mann-Whitney: synthetic closer to the training set than unseen real images
    counts: dict[str, int]
    provenance: Path | None = None


def memorization(
    train: str | Path,
    fake: str | Path,
    out: Path,
    *,
    holdout: str | Path | None = None,
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
    features: str | None = None,
    device: str | None = None,
) -> MemorizationResult:
    """Flag synthetic images of `fake` that are near-copies of images of `train` (see the module docstring)."""
    from .features import cached, load_features

    cfg = load_config(MemorizationConfig, recipe, overrides)
    if features:
        cfg = replace(cfg, features=features)
    device = resolve_device(device)
    train_set = open_images(train, option="--train", min_images=2 if holdout else 3)
    fake_set = open_images(fake, option="--fake")
    held = open_images(holdout, option="--holdout") if holdout else None
    extractor = load_features(cfg.features)
    run = stage.start(
        "evaluate memorization",
        out,
        {**asdict(cfg), "device": device},
        train=train_set.path,
        fake=fake_set.path,
        holdout=held.path if held else None,
    )
    work = stage.WorkDir(out, "memorization")
    kw = {"batch_size": cfg.batch_size_for(device), "workers": cfg.workers, "device": device}
    with work.lock("evaluate memorization"):
        raw = [cached(s, extractor, work, **kw) if s else None for s in (train_set, fake_set, held)]
    # centred on the training mean: what every fundus shares (the dark surround, the bright field) is not a likeness
    centre = raw[0].double().mean(0, keepdim=True)
    ft, ff, fh = (_unit(x.double() - centre) if x is not None else None for x in raw)

    # 1. The yardstick: unseen real images' distance to their nearest training image.
    if fh is not None:
        ref_d = _nearest(fh, ft, 1)[0][:, 0]
        ref_name = held.name
    else:
        n = len(train_set)
        perm = np.random.default_rng(cfg.seed).permutation(n)
        k = min(max(1, round(cfg.holdout_fraction * n)), n - 1)
        out_idx, in_idx = torch.from_numpy(perm[:k]), torch.from_numpy(perm[k:])
        ref_d = _nearest(ft[out_idx], ft[in_idx], 1)[0][:, 0]
        ref_name = f"{k} held-out training images"
    threshold = cfg.margin * float(np.quantile(ref_d.numpy(), cfg.quantile))

    # 2. Every synthetic image's nearest training images; the near-copies.
    dist, idx = _nearest(ff, ft, min(cfg.top_k, len(train_set)))
    near = []
    for i in torch.argsort(dist[:, 0]).tolist():
        if float(dist[i, 0]) >= threshold:
            break
        neighbours = [{"train": train_set.ref(int(j)), "distance": float(d)} for d, j in zip(dist[i], idx[i])]
        near.append(
            {"fake": fake_set.ref(i), "train": train_set.ref(int(idx[i, 0])), "distance": float(dist[i, 0])}
            | {"neighbours": neighbours, "_pair": (i, int(idx[i, 0]))}
        )
    p_value = _closer_p(dist[:, 0].numpy(), ref_d.numpy())
    counts = {"train": len(train_set), "fake": len(fake_set), "holdout": len(ref_d), "near_copies": len(near)}
    result = MemorizationResult(
        Path(out),
        threshold,
        near,
        [float(x) for x in dist[:, 0]],
        [float(x) for x in ref_d],
        p_value,
        counts,
    )
    _report(result, cfg, train_set, fake_set, ref_name)
    for c in near:
        del c["_pair"]
    result.provenance = run.finish(**counts)
    return result


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


def _nearest(a: torch.Tensor, b: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) of the k nearest rows of `b` for each row of `a`, by cosine distance (unit rows)."""
    d = (1 - a @ b.T).clamp(min=0)
    values, indices = torch.topk(d, k, dim=1, largest=False)
    return values, indices


def _closer_p(fake: np.ndarray, real: np.ndarray) -> float:
    """One-sided Mann-Whitney U: are the synthetic images' distances smaller than the unseen real ones'?"""
    from scipy.stats import mannwhitneyu

    if len(fake) < 2 or len(real) < 2:
        return float("nan")
    return float(mannwhitneyu(fake, real, alternative="less").pvalue)


def _report(result: MemorizationResult, cfg, train: ImageSet, fake: ImageSet, ref_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    both = result.fake_distances + result.holdout_distances
    bins = np.linspace(0, max(both) * 1.05 + 1e-9, 30)
    ax.hist(result.holdout_distances, bins=bins, alpha=0.6, label=f"unseen real ({ref_name})", density=True)
    ax.hist(result.fake_distances, bins=bins, alpha=0.6, label="synthetic", density=True)
    ax.axvline(result.threshold, color="red", linestyle="--", label="near-copy threshold")
    ax.set_xlabel(f"cosine distance to the nearest training image ({cfg.features})")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    summary = {
        "near copies": len(result.near_copies),
        "synthetic images": result.counts["fake"],
        "training images": result.counts["train"],
        "threshold (cosine distance)": result.threshold,
        "median distance, synthetic": float(np.median(result.fake_distances)),
        "median distance, unseen real": float(np.median(result.holdout_distances)),
        "p (synthetic closer than unseen real)": result.p_value,
        "features": cfg.features,
    }
    table = Table(
        "Near copies (closest first)",
        ["synthetic", "nearest training image", "distance", f"next {cfg.top_k - 1}"],
        [
            [c["fake"], c["train"], c["distance"], ", ".join(f"{n['distance']:.4f}" for n in c["neighbours"][1:])]
            for c in result.near_copies
        ],
        f"Threshold: {cfg.margin} x the {cfg.quantile:.0%} quantile of the distances of {ref_name} to their nearest "
        "training image. The p-value is a one-sided Mann-Whitney test that synthetic images lie closer to the "
        "training set than unseen real ones.",
    )
    grids = []
    for n, c in enumerate(result.near_copies[: cfg.show], start=1):
        i, j = c["_pair"]
        grids.append(
            (
                f"Near copy {n}: distance {c['distance']:.4f}",
                [(f"synthetic {c['fake']}", fake.image(i)), (f"training {c['train']}", train.image(j))],
            )
        )
    write_report(
        Report(
            "memorization",
            "Memorisation audit",
            summary,
            [table],
            grids,
            [("Distance to the nearest training image", fig)],
            data={
                "near_copies": [{k: v for k, v in c.items() if k != "_pair"} for c in result.near_copies],
                "threshold": result.threshold,
                "fake_distances": result.fake_distances,
                "holdout_distances": result.holdout_distances,
                "p_value": result.p_value,
                "counts": result.counts,
                "features": cfg.features,
            },
        ),
        result.out,
    )
