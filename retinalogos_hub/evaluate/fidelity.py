"""Does a synthetic image show what its prompt asked for?

A frozen grader (any `AutoModelForImageClassification` by Hub id, local path or tiny:<name>: e.g. the downstream
classifier `evaluate downstream` keeps, OUTPUT_DIR/graders/<classifier>/, trained on real images only) grades every synthetic image of a labelled set (`retinalogos generate` from label
conditions); the report gives accuracy and quadratic weighted kappa against the requested grade, and the confusion
matrix. Laterality is checked without a model: the optic disc lies on the nasal side, so curation's optic-disc side
detector (`optic_disc.disc_side`) says which eye an image shows; laterality accuracy is over the images it makes a
clear call on (the share of clear calls is reported beside it).

The settings live in `FidelityConfig` (`recipes/eval/fidelity.yaml`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Literal, Optional

import numpy as np
import torch

from .. import stage
from ..config import load_config
from ..errors import InputError
from ..models import resolve, resolve_device
from .images import open_images
from .report import Report, Table, bar_plot, write_report


@dataclass(frozen=True)
class FidelityConfig:
    """`evaluate fidelity`'s recipe (`recipes/eval/fidelity.yaml`)."""

    DEFAULT_RECIPE: ClassVar[str] = "eval/fidelity.yaml"

    label: Literal["dr_grade", "glaucoma"]  # the requested label the grader is scored against
    num_labels: int
    batch_size: int
    disc_confident: float  # |disc_side| from which the laterality call is clear (curation turns photos from 2.5)
    examples: int  # images shown in the report grid

    def __post_init__(self):
        if self.num_labels < 2 or self.batch_size < 1 or self.disc_confident <= 0 or self.examples < 0:
            raise ValueError("num_labels >= 2, batch_size >= 1, disc_confident > 0 and examples >= 0 are required")


@dataclass
class FidelityResult:
    out: Path
    accuracy: Optional[float]  # grader vs requested label (None without a grader)
    qwk: Optional[float]
    laterality_accuracy: Optional[float]  # over clear calls (None when the set has no eye labels or no clear call)
    laterality_decided: float  # share of images with a clear call
    counts: dict
    provenance: Path | None = None


def fidelity(
    data: str | Path,
    out: Path,
    *,
    grader: str | None = None,
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
) -> FidelityResult:
    """Grade the synthetic set `data` with `grader` (optional) and check its laterality; write the report."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

    from ..optic_disc import disc_side

    cfg = load_config(FidelityConfig, recipe, overrides)
    device = resolve_device(device)
    images = open_images(data, option="--data")
    if not images.is_dataset:
        raise InputError(f"--data {images.path}: an image folder has no requested labels; pass a generated dataset")
    cols = images.columns
    if cfg.label not in cols and "eye" not in cols:
        raise InputError(f"--data {images.path}: neither a {cfg.label!r} nor an 'eye' column to check against")
    run = stage.start("evaluate fidelity", out, {**asdict(cfg), "device": device}, data=images.path, grader=grader)
    n = len(images)
    # 1. Laterality from the optic disc's side.
    eyes = images.column("eye") if "eye" in cols else [None] * n
    calls = []
    for i in range(n):
        side = disc_side(np.asarray(images.image(i).convert("RGB")))
        calls.append(None if abs(side) < cfg.disc_confident else ("right" if side > 0 else "left"))
    judged = [(e, c) for e, c in zip(eyes, calls) if e in ("left", "right") and c is not None]
    labelled_eyes = sum(e in ("left", "right") for e in eyes)
    lat_acc = float(np.mean([e == c for e, c in judged])) if judged else None
    decided = len(judged) / labelled_eyes if labelled_eyes else 0.0

    # 2. The grader.
    requested = images.column(cfg.label) if cfg.label in cols else [None] * n
    keep = [i for i, v in enumerate(requested) if v is not None]
    preds: list[int] = []
    accuracy = qwk = None
    matrix = None
    if grader:
        if not keep:
            raise InputError(f"--data {images.path}: every {cfg.label!r} is empty; nothing to grade against")
        preds = _grade(grader, images, keep, cfg, device)
        refs = [int(requested[i]) for i in keep]
        accuracy = float(accuracy_score(refs, preds))
        scale = list(range(cfg.num_labels))
        qwk = float(cohen_kappa_score(refs, preds, labels=scale, weights="quadratic"))
        matrix = confusion_matrix(refs, preds, labels=scale).tolist()
    counts = {"images": n, "graded": len(preds), "eye labelled": labelled_eyes, "laterality calls": len(judged)}
    result = FidelityResult(Path(out), accuracy, qwk, lat_acc, decided, counts)
    _report(result, cfg, images, keep, requested, preds, matrix, eyes, calls, grader)
    result.provenance = run.finish(**counts)
    return result


def _grade(grader: str, images, keep: list[int], cfg: FidelityConfig, device: str) -> list[int]:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    path = resolve(grader, option="--grader")
    try:
        model = AutoModelForImageClassification.from_pretrained(path).to(device).eval()
        proc = AutoImageProcessor.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise InputError(f"--grader {grader}: not an image classifier ({str(e).splitlines()[0]})") from None
    if model.config.num_labels != cfg.num_labels:
        raise InputError(
            f"--grader {grader}: it has {model.config.num_labels} classes, the recipe grades {cfg.label} with "
            f"{cfg.num_labels} (num_labels); pass a grader trained for {cfg.label}"
        )
    preds: list[int] = []
    with torch.inference_mode():
        for start in range(0, len(keep), cfg.batch_size):
            batch = [images.image(i) for i in keep[start : start + cfg.batch_size]]
            x = proc(images=batch, return_tensors="pt")["pixel_values"].to(device)
            preds += model(pixel_values=x).logits.argmax(-1).tolist()
    return preds


def _report(result, cfg, images, keep, requested, preds, matrix, eyes, calls, grader) -> None:
    summary = {
        f"grader accuracy ({cfg.label})": result.accuracy,
        "grader QWK": result.qwk,
        "laterality accuracy (optic disc side)": result.laterality_accuracy,
        "laterality clear calls": result.laterality_decided,
        "images": result.counts["images"],
        "grader": grader or "none",
    }
    tables, plots = [], []
    if matrix is not None:
        scale = list(range(cfg.num_labels))
        tables.append(
            Table(
                f"Confusion matrix: requested {cfg.label} (rows) vs graded (columns)",
                ["requested", *map(str, scale)],
                [[str(g), *row] for g, row in zip(scale, matrix)],
            )
        )
        per = [row[g] / sum(row) if sum(row) else float("nan") for g, row in zip(scale, matrix)]
        plots.append(
            (
                "Grader accuracy per requested grade",
                bar_plot("Accuracy per requested grade", [str(g) for g in scale], {"accuracy": per}, "accuracy"),
            )
        )
    lat_rows = []
    for side in ("left", "right"):
        asked = [c for e, c in zip(eyes, calls) if e == side]
        lat_rows.append([side, len(asked), sum(c == side for c in asked), sum(c is None for c in asked)])
    tables.append(
        Table("Laterality (optic disc side)", ["requested eye", "images", "disc agrees", "no clear call"], lat_rows)
    )
    graded = dict(zip(keep, preds))
    grid = []
    for i in range(min(cfg.examples, len(images))):
        label = f"asked {cfg.label}={requested[i]} eye={eyes[i]}"
        label += f" | graded {graded[i]}" if i in graded else ""
        label += f" | disc: {calls[i] or 'unsure'}"
        grid.append((label, images.image(i)))
    write_report(
        Report(
            "fidelity",
            "Fidelity: does each image show what was asked?",
            summary,
            tables,
            [("Synthetic images, requested vs found", grid)],
            plots,
            data={
                "accuracy": result.accuracy,
                "qwk": result.qwk,
                "laterality_accuracy": result.laterality_accuracy,
                "laterality_decided": result.laterality_decided,
                "confusion_matrix": matrix,
                "predictions": {images.ref(i): p for i, p in graded.items()},
                "laterality_calls": {images.ref(i): c for i, c in enumerate(calls)},
                "counts": result.counts,
            },
        ),
        result.out,
    )
