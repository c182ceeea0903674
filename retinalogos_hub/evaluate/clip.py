"""CLIP score of image-caption pairs: the mean cosine similarity of CLIP image and text embeddings (clamped at 0),
on the paper's 0-1 scale (0.660 for RetinaLogos, 0.540 for the untuned base).

Computed directly: torchmetrics' CLIPScore breaks on transformers 5 (`get_image_features` returns an output object).
Captions longer than the text encoder's window (77 tokens for CLIP) are truncated, as CLIPScore does; the report
says how many were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError
from .images import open_images
from .report import Report, Table, write_report


@dataclass
class ClipResult:
    out: Path
    score: float
    std: float
    rows: int
    truncated: int


def clip_score(
    data: str | Path,
    model: str,
    out: Path,
    *,
    caption_column: str = "caption",
    batch_size: int = 16,
    device: str = "cpu",
) -> ClipResult:
    """Score every (image, `caption_column`) row of the dataset directory `data` with the CLIP model `model`."""
    from ..scorers import ClipScorer

    images = open_images(data, option="--data")
    if not images.is_dataset:
        raise InputError(f"--data {images.path}: an image folder has no captions; pass a dataset directory with an image and a {caption_column!r} column")
    if caption_column not in images.columns:
        raise InputError(f"--data {images.path}: no {caption_column!r} column (columns: {', '.join(images.columns)}); pick one with --caption-column")
    clip = ClipScorer(model, option="--model", device=device)
    texts = images.column(caption_column)
    if any(not t for t in texts):
        bad = next(i for i, t in enumerate(texts) if not t)
        raise InputError(f"--data {images.path}: row {bad} ({images.ref(bad)}) has an empty {caption_column!r}")

    scores, truncated = [], 0
    for start in range(0, len(images), batch_size):
        idx = range(start, min(start + batch_size, len(images)))
        batch_texts = [texts[i] for i in idx]
        truncated += sum(len(ids) > clip.max_len for ids in clip.processor.tokenizer(batch_texts)["input_ids"])
        scores.append(clip.cosine([images.image(i) for i in idx], batch_texts).clamp(min=0))
    s = torch.cat(scores)
    result = ClipResult(Path(out), float(s.mean()), float(s.std()) if len(s) > 1 else 0.0, len(s), truncated)
    _report(result, images, texts, s, model)
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
    table = Table("Lowest and highest scoring pairs", ["id", "score", "caption"],
                  [[images.ref(i), float(scores[i]), texts[i][:160]] for i in dict.fromkeys(picks)])
    summary = {"CLIP score": result.score, "std": result.std, "pairs": result.rows, "captions truncated": result.truncated,
               "model": model}
    grid = [(f"{float(scores[i]):.3f}", images.image(i)) for i in dict.fromkeys(picks)]
    data = {"scores": [float(x) for x in scores], "ids": [images.ref(i) for i in range(len(images))]}
    write_report(Report("clip-score", "CLIP score", summary, [table], [("Lowest and highest scoring images", grid)],
                        [("Score distribution", fig)], data=data), result.out)
