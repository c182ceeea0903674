"""The paper's Table 2: does adding synthetic images help a classifier? Each classifier (ResNet-50, ViT-B/16 by id, or
any `AutoModelForImageClassification`) is trained twice with the same seed, on the real training rows and on real +
synthetic rows, and scored on the real test rows with the shipped accuracy, F1 (macro) and QWK metric modules.

Every finished (classifier, training set) run is saved to OUTPUT_DIR/runs/*.json, so a killed experiment resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from ..config import dump_config, load_config
from ..errors import InputError
from ..models import resolve
from .images import ImageSet, open_images
from .metrics import load as load_metric
from .report import Report, Table, bar_plot, write_report

log = logging.getLogger(__name__)

TRAIN_SETS = ("real", "real+synthetic")


@dataclass
class Classifier:
    name: str  # the table row, e.g. "ResNet-50"
    model: str  # Hub id, local path or tiny:<name>
    pretrained: bool = True  # false: random init from the model's config (tests; ablations)


@dataclass
class DownstreamData:
    real: str  # dataset directory with the real rows (curated / captioned)
    synthetic: str  # `retinalogos generate --conditions` output
    test: str | None = None  # dataset directory to score on; None: rows of `real` whose split is `test_split`
    test_split: str = "test"
    synthetic_limit: int | None = None  # at most this many synthetic rows (the paper adds about 10k)


@dataclass
class Training:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.05
    image_size: int = 224  # square input; a model whose config fixes `image_size` (ViT) uses its own
    workers: int = 0
    seed: int = 0
    device: str = "auto"  # "auto" = cuda when available


@dataclass
class DownstreamRecipe:
    task: str
    label: Literal["dr_grade", "glaucoma"]
    num_labels: int
    data: DownstreamData
    classifiers: list[Classifier]
    output_dir: str
    training: Training = field(default_factory=Training)

    def __post_init__(self):
        if self.label == "glaucoma" and self.num_labels != 2:
            raise ValueError("label 'glaucoma' has num_labels 2")
        if not self.classifiers:
            raise ValueError("classifiers: give at least one")


@dataclass
class DownstreamResult:
    out: Path
    metrics: dict[str, dict[str, dict[str, float]]]  # classifier -> training set -> metric -> value
    counts: dict[str, int]


def downstream(recipe: Path, overrides: Sequence[str] = ()) -> DownstreamResult:
    """Run the experiment described by `recipe` (+ `key=value` overrides); write the Table-2 report."""
    cfg = load_config(DownstreamRecipe, recipe, overrides)
    out = Path(cfg.output_dir)
    dump_config(cfg, out / "config.yaml")
    # 1. Data: real train / test rows and labelled synthetic rows.
    real = open_images(cfg.data.real, option="data.real")
    test = open_images(cfg.data.test, option="data.test") if cfg.data.test else real
    synth = open_images(cfg.data.synthetic, option="data.synthetic")
    train_idx = _labelled(real, cfg, exclude_split=None if cfg.data.test else cfg.data.test_split)
    test_idx = _labelled(test, cfg, only_split=None if cfg.data.test else cfg.data.test_split)
    synth_idx = _labelled(synth, cfg, synthetic=True)[: cfg.data.synthetic_limit]
    if not train_idx or not test_idx:
        raise InputError(f"data: {len(train_idx)} labelled training and {len(test_idx)} test rows; both must be > 0 "
                         f"(test rows come from data.test, or rows of data.real with split {cfg.data.test_split!r})")
    sets = {"real": [(real, i) for i in train_idx], "real+synthetic": [(real, i) for i in train_idx] + [(synth, i) for i in synth_idx]}
    test_rows = [(test, i) for i in test_idx]

    # 2. Train and score every (classifier, training set); finished runs of the same settings and data are read
    # back (the file name carries their digest, so a changed recipe or dataset trains afresh instead of reusing).
    settings = {**asdict(cfg), "output_dir": None, "data_fingerprints": [real.fingerprint, test.fingerprint, synth.fingerprint]}
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for clf in cfg.classifiers:
        for name, rows in sets.items():
            key = hashlib.sha256(json.dumps([settings, asdict(clf), name], sort_keys=True, default=str).encode()).hexdigest()[:10]
            run_file = out / "runs" / f"{_slug(clf.name)}--{_slug(name)}--{key}.json"
            if run_file.is_file():
                scores = json.loads(run_file.read_text())["metrics"]
            else:
                ckpt = run_file.with_suffix(".ckpt.pt")
                scores = _train_and_score(clf, rows, test_rows, cfg, ckpt)
                run_file.write_text(json.dumps({"classifier": asdict(clf), "train_set": name, "rows": len(rows), "metrics": scores}))
                ckpt.unlink(missing_ok=True)  # none when training.epochs is 0
            metrics.setdefault(clf.name, {})[name] = scores
    result = DownstreamResult(out, metrics, {"real train": len(train_idx), "synthetic": len(synth_idx), "test": len(test_idx)})
    _report(result, cfg, synth, synth_idx)
    return result


def _labelled(images: ImageSet, cfg: DownstreamRecipe, *, synthetic: bool = False, only_split: str | None = None,
              exclude_split: str | None = None) -> list[int]:
    """Indices of rows with a usable label (and the wanted split)."""
    where = f"{'data.synthetic' if synthetic else 'data'} {images.path}"
    if cfg.label not in images.columns:
        raise InputError(f"{where}: no {cfg.label!r} column; it needs labels in the curated schema")
    labels = images.column(cfg.label)
    if synthetic and all(v is None for v in labels):
        raise InputError(
            f"{where}: every {cfg.label!r} is empty (a set made from free-text prompts?); it cannot enter the downstream "
            "experiment: generate it from label conditions with `retinalogos generate --conditions`"
        )
    splits = images.column("split") if (only_split or exclude_split) and "split" in images.columns else None
    keep = []
    for i, v in enumerate(labels):
        if v is None or (splits and only_split and splits[i] != only_split) or (splits and exclude_split and splits[i] == exclude_split):
            continue
        if not 0 <= int(v) < cfg.num_labels:
            raise InputError(f"{where}: row {i} ({images.ref(i)}) has {cfg.label}={v!r}, outside 0..{cfg.num_labels - 1} (num_labels)")
        keep.append(i)
    if (only_split or exclude_split) and splits is None:
        raise InputError(f"{where}: no 'split' column to find the test rows; set data.test to a test dataset directory")
    return keep


class _Rows(torch.utils.data.Dataset):
    """(image set, index) pairs from several sets as one dataset of (pixels, class)."""

    def __init__(self, rows, label: str, transform):
        columns = {id(s): s.column(label) for s, _ in rows}  # labels read once, without decoding pixels
        self.rows, self.transform = rows, transform
        self.labels = [int(columns[id(s)][i]) for s, i in rows]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, k):
        images, i = self.rows[k]
        return self.transform(images.image(i)), self.labels[k]


def _train_and_score(clf: Classifier, rows, test_rows, cfg: DownstreamRecipe, ckpt: Path) -> dict[str, float]:
    """Train one classifier on `rows`, score it on `test_rows`; `ckpt` holds the state after each epoch (resume)."""
    from torchvision import transforms
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    t = cfg.training
    device = ("cuda" if torch.cuda.is_available() else "cpu") if t.device == "auto" else t.device
    path = resolve(clf.model, option=f"classifiers[{clf.name}].model")
    labels = {"num_labels": cfg.num_labels, "problem_type": "single_label_classification"}
    torch.manual_seed(t.seed)  # after resolve: building a tiny model on a cold cache draws from the global RNG
    if clf.pretrained:  # a new head for our classes; the backbone keeps its weights
        model = AutoModelForImageClassification.from_pretrained(path, ignore_mismatched_sizes=True, **labels)
    else:
        model = AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(path, **labels))
    proc = AutoImageProcessor.from_pretrained(path)
    size = getattr(model.config, "image_size", None) or t.image_size
    norm = transforms.Normalize(proc.image_mean, proc.image_std)
    train_tf = transforms.Compose([transforms.Resize((size, size)), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    test_tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(), norm])
    gen = torch.Generator().manual_seed(t.seed)
    train = torch.utils.data.DataLoader(_Rows(rows, cfg.label, train_tf), t.batch_size, shuffle=True, generator=gen, num_workers=t.workers)
    test = torch.utils.data.DataLoader(_Rows(test_rows, cfg.label, test_tf), t.batch_size, num_workers=t.workers)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    start = 0
    if ckpt.is_file():  # an interrupted run: continue after its last finished epoch, with the same data order
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["loader_rng"])
        torch.set_rng_state(state["torch_rng"])
        start = state["epoch"] + 1
        log.info("%s: resumed from %s after epoch %d", clf.name, ckpt, state["epoch"])
    for epoch in range(start, t.epochs):
        for x, y in train:
            loss = model(pixel_values=x.to(device), labels=y.to(device)).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        log.info("%s epoch %d loss %.4f", clf.name, epoch, loss.item())
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                 "loader_rng": gen.get_state(), "torch_rng": torch.get_rng_state()}
        torch.save(state, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
    model.eval()
    preds, refs = [], []
    with torch.inference_mode():
        for x, y in test:
            preds += model(pixel_values=x.to(device)).logits.argmax(-1).tolist()
            refs += y.tolist()
    scale = list(range(cfg.num_labels))
    return {
        "accuracy": load_metric("accuracy").compute(predictions=preds, references=refs)["accuracy"],
        "f1": load_metric("f1").compute(predictions=preds, references=refs, labels=scale)["f1"],
        "qwk": load_metric("qwk").compute(predictions=preds, references=refs, labels=scale)["qwk"],
    }


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)


def _report(result: DownstreamResult, cfg: DownstreamRecipe, synth: ImageSet, synth_idx: list[int]) -> None:
    names = ("accuracy", "f1", "qwk")
    rows = []
    for clf, by_set in result.metrics.items():
        base, plus = by_set["real"], by_set["real+synthetic"]
        rows.append([clf, *(f"{base[m]:.3f} → {plus[m]:.3f} ({plus[m] - base[m]:+.3f})" for m in names)])
    table = Table(f"{cfg.task}: real → real + synthetic", ["classifier", "accuracy", "F1 (macro)", "QWK"], rows,
                  f"Trained {cfg.training.epochs} epochs per run with seed {cfg.training.seed}; scored on {result.counts['test']} real test images.")
    counts = Table("Rows", ["set", "images"], [[k, v] for k, v in result.counts.items()])
    plot = bar_plot("Accuracy", list(result.metrics), {s: [result.metrics[c][s]["accuracy"] for c in result.metrics] for s in TRAIN_SETS}, "accuracy")
    labels = synth.column(cfg.label)
    grid = [(f"{cfg.label}={labels[i]}", synth.image(i)) for i in synth_idx[:8]]
    summary = {f"{c}: {m} gain with synthetic": result.metrics[c]["real+synthetic"][m] - result.metrics[c]["real"][m]
               for c in result.metrics for m in ("accuracy", "qwk")}
    write_report(
        Report("downstream", f"Downstream: {cfg.task}", summary, [table, counts], [("Synthetic training images", grid)],
               [("Accuracy, real vs real + synthetic", plot)], data={"metrics": result.metrics, "counts": result.counts, "task": cfg.task}),
        result.out,
    )
