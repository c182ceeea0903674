"""CLIP score of image-caption pairs: the mean cosine similarity of CLIP image and text embeddings (clamped at 0),
on the paper's 0-1 scale (0.660 for RetinaLogos, 0.540 for the untuned base).

Computed directly: torchmetrics' CLIPScore breaks on transformers 5 (`get_image_features` returns an output object).
Captions longer than the text encoder's window (77 tokens for CLIP) are truncated, as CLIPScore does; the report
says how many were. The settings live in `ClipScoreConfig` (`recipes/eval/clip_score.yaml`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import stage
from ..config import load_config
from ..errors import InputError
from ..models import resolve_device
from .images import open_images
from .report import Report, Table, write_report


@dataclass(frozen=True)
class ClipScoreConfig:
    """`evaluate clip-score`'s recipe (`recipes/eval/clip_score.yaml`)."""

    DEFAULT_RECIPE: ClassVar[str] = "eval/clip_score.yaml"

    caption_column: str  # the text column scored against the image
    batch_size: int  # image-caption pairs per forward

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class ClipResult:
    out: Path
    score: float
    std: float
    rows: int
    truncated: int
    provenance: Path | None = None


def clip_score(
    data: str | Path,
    model: str,
    out: Path,
    *,
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
) -> ClipResult:
    """Score every (image, caption) row of the dataset directory `data` with the CLIP model `model`.

    `recipe` (default `recipes/eval/clip_score.yaml`) + `overrides` give the settings; `device`: default cuda when
    available.
    """
    from ..scorers import ClipScorer

    cfg = load_config(ClipScoreConfig, recipe, overrides)
    device, column = resolve_device(device), cfg.caption_column
    images = open_images(data, option="--data")
    if not images.is_dataset:
        raise InputError(
            f"--data {images.path}: an image folder has no captions; pass a dataset directory with an "
            f"image and a {column!r} column"
        )
    if column not in images.columns:
        raise InputError(
            f"--data {images.path}: no {column!r} column (columns: {', '.join(images.columns)}); "
            "pick one with caption_column=NAME"
        )
    run = stage.start("evaluate clip-score", out, {**asdict(cfg), "device": device}, data=images.path, model=model)
    clip = ClipScorer(model, option="--model", device=device)
    texts = images.column(column)
    if any(not t for t in texts):
        bad = next(i for i, t in enumerate(texts) if not t)
        raise InputError(f"--data {images.path}: row {bad} ({images.ref(bad)}) has an empty {column!r}")

    scores, truncated = [], 0
    for start in range(0, len(images), cfg.batch_size):
        idx = range(start, min(start + cfg.batch_size, len(images)))
        batch_texts = [texts[i] for i in idx]
        truncated += sum(len(ids) > clip.max_len for ids in clip.processor.tokenizer(batch_texts)["input_ids"])
        scores.append(clip.cosine([images.image(i) for i in idx], batch_texts).clamp(min=0))
    s = torch.cat(scores)
    result = ClipResult(Path(out), float(s.mean()), float(s.std()) if len(s) > 1 else 0.0, len(s), truncated)
    _report(result, images, texts, s, model)
    result.provenance = run.finish(pairs=result.rows, truncated=result.truncated)
    return result


def _report(result: ClipResult, images, texts, scores: torch.Tensor, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(scores.numpy(), bins=20)
    ax.set_xlabel("CLIP score (cosine)")
    ax.set_ylabel("pairs")
    fig.tight_layout()
    order = scores.argsort()
    picks = [int(i) for i in order[:4]] + [int(i) for i in order[-4:]]
    table = Table(
        "Lowest and highest scoring pairs",
        ["id", "score", "caption"],
        [[images.ref(i), float(scores[i]), texts[i][:160]] for i in dict.fromkeys(picks)],
    )
    summary = {
        "CLIP score": result.score,
        "std": result.std,
        "pairs": result.rows,
        "captions truncated": result.truncated,
        "model": model,
    }
    grid = [(f"{float(scores[i]):.3f}", images.image(i)) for i in dict.fromkeys(picks)]
    data = {"scores": [float(x) for x in scores], "ids": [images.ref(i) for i in range(len(images))]}
    write_report(
        Report(
            "clip-score",
            "CLIP score",
            summary,
            [table],
            [("Lowest and highest scoring images", grid)],
            [("Score distribution", fig)],
            data=data,
        ),
        result.out,
    )
