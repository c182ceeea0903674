"""The paper's Table 2: does adding synthetic images help a classifier? Each classifier (ResNet-50, ViT-B/16 by id, or
any `AutoModelForImageClassification`) is trained on the real training rows and on real + synthetic rows, once per
seed of `training.seeds`; each run's epoch is chosen on real validation rows (the source's validation split, or a
patient-wise share of the training rows) and scored on the real test rows (official splits: `data.expected_rows`
refuses any other counts) with the shipped accuracy, F1 (macro) and QWK metric modules. The report gives mean and 95%
CI over seeds and a paired comparison (same seed, same rows) of real + synthetic against real.

Every finished (classifier, training set) run is saved to OUTPUT_DIR/.work/downstream/*.json, named by a fingerprint of
the recipe, the data and the run, so a killed experiment resumes and a changed one trains afresh. OUTPUT_DIR holds
report.json, report.html and retinalogos.json (the resolved recipe, the data sets' fingerprints, counts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from .. import stage
from ..config import load_config
from ..errors import InputError
from ..models import resolve, resolve_device
from .images import ImageSet, open_images
from .metrics import load as load_metric
from .report import Report, Table, bar_plot, write_report

log = logging.getLogger(__name__)

TRAIN_SETS = ("real", "real+synthetic")


@dataclass(frozen=True)
class Classifier:
    name: str  # the table row, e.g. "ResNet-50"
    model: str  # Hub id, local path or tiny:<name>
    pretrained: bool  # false: random init from the model's config (tests; ablations)


@dataclass(frozen=True)
class DownstreamData:
    real: str  # dataset directory with the real rows (curated / captioned)
    synthetic: str  # `retinalogos generate` output (drawn from label conditions)
    test: Optional[str]  # dataset directory to score on; null: rows of `real` whose split is `test_split`
    test_split: str  # the split of `real` held out for scoring when `test` is null
    validation_split: str  # rows of `real` with this split choose the checkpoint; none: carved from train
    synthetic_limit: Optional[int]  # at most this many synthetic rows (the paper adds about 10k); null: all
    expected_rows: Optional[dict]  # {train: n, test: m}: refuse other counts (an official split, e.g. IDRiD 413/103)


@dataclass(frozen=True)
class Training:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    image_size: int  # square input; a model whose config fixes `image_size` (ViT) uses its own
    workers: int  # data loader processes
    seeds: list[int]  # one run per seed and training set; the report gives mean and 95% CI over them
    validation_fraction: float  # of the real training rows (by patient), when `real` has no validation rows
    select_by: Literal["accuracy", "f1", "qwk"]  # the validation metric that picks each run's epoch
    device: Optional[str]  # cpu, cuda, cuda:1; null: cuda when available

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or self.image_size < 8 or self.workers < 0:
            raise ValueError("training: epochs >= 0, batch_size >= 1, image_size >= 8 and workers >= 0 are required")
        if not self.seeds or not 0 < self.validation_fraction < 1:
            raise ValueError("training: give at least one seed and 0 < validation_fraction < 1")


@dataclass(frozen=True)
class DownstreamRecipe:
    """`evaluate downstream`'s recipe (`recipes/eval/<task>.yaml`)."""

    task: str
    label: Literal["dr_grade", "glaucoma"]
    num_labels: int
    data: DownstreamData
    classifiers: list[Classifier]
    output_dir: str
    training: Training

    def __post_init__(self):
        if self.label == "glaucoma" and self.num_labels != 2:
            raise ValueError("label 'glaucoma' has num_labels 2")
        if not self.classifiers:
            raise ValueError("classifiers: give at least one")


@dataclass
class DownstreamResult:
    out: Path
    metrics: dict[str, dict[str, dict[str, float]]]  # classifier -> training set -> metric -> mean over seeds
    counts: dict[str, int]
    ci: dict = field(default_factory=dict)  # classifier -> training set -> metric -> [low, high] (95%, t)
    per_seed: dict = field(default_factory=dict)  # classifier -> training set -> seed -> metric -> value
    paired: dict = field(default_factory=dict)  # classifier -> metric -> {diff, ci, p, wins}
    provenance: Path | None = None


METRIC_NAMES = ("accuracy", "f1", "qwk")


def downstream(recipe: Path, overrides: Sequence[str] = (), *, device: str | None = None) -> DownstreamResult:
    """Run the experiment described by `recipe` (+ `key=value` overrides); write the Table-2 report.

    Every (classifier, training set, seed) is one run: trained on the training rows, its epoch chosen on the
    validation rows (`training.select_by`), scored on the test rows. The report gives the mean and a 95% confidence
    interval over seeds, and a paired comparison real vs real + synthetic (the same seed, validation and test rows).
    `device`, when given, overrides `training.device`."""
    overrides = [*overrides, *([f"training.device={device}"] if device else [])]
    cfg = load_config(DownstreamRecipe, recipe, overrides)
    out = Path(cfg.output_dir)
    # 1. Data: real train / validation / test rows and labelled synthetic rows.
    real = open_images(cfg.data.real, option="data.real")
    test = open_images(cfg.data.test, option="data.test") if cfg.data.test else real
    synth = open_images(cfg.data.synthetic, option="data.synthetic")
    inputs = {"real": real.path, "test": test.path if cfg.data.test else None, "synthetic": synth.path}
    run = stage.start(
        "evaluate downstream", out, cfg, **inputs, **{f"model:{c.name}": c.model for c in cfg.classifiers}
    )
    split = cfg.data.test_split
    train_idx = _labelled(real, cfg, exclude_split=None if cfg.data.test else split)
    test_idx = _labelled(test, cfg, only_split=None if cfg.data.test else split)
    synth_idx = _labelled(synth, cfg, synthetic=True)[: cfg.data.synthetic_limit]
    if not train_idx or not test_idx:
        raise InputError(
            f"data: {len(train_idx)} labelled training and {len(test_idx)} test rows; both must be > 0 "
            f"(test rows come from data.test, or rows of data.real with split {split!r})"
        )
    expected = cfg.data.expected_rows
    if expected and (expected.get("train"), expected.get("test")) != (len(train_idx), len(test_idx)):
        raise InputError(
            f"data: {len(train_idx)} training and {len(test_idx)} test rows, the official split has "
            f"{expected.get('train')} and {expected.get('test')} (data.expected_rows); curate the source with its "
            "official splits kept, or set data.expected_rows=null"
        )
    train_idx, val_idx = _validation(real, train_idx, cfg)
    train_rows = [(real, i) for i in train_idx]
    sets = {"real": train_rows, "real+synthetic": train_rows + [(synth, i) for i in synth_idx]}
    val_rows = [(real, i) for i in val_idx]
    test_rows = [(test, i) for i in test_idx]

    # 2. Train and score every (classifier, training set, seed); finished runs of the same settings and data are read
    # back (the file name carries their fingerprint, so a changed recipe or dataset trains afresh instead of reusing).
    # Where the output goes, which device trains and which other seeds run are not part of a run.
    fingerprints = [real.fingerprint, test.fingerprint, synth.fingerprint]
    settings = {**asdict(cfg), "output_dir": None, "data_fingerprints": fingerprints}
    settings["training"]["device"] = None
    settings["training"]["seeds"] = None
    per_seed: dict = {}
    work = stage.WorkDir(out, "downstream")
    trained = 0
    with work.lock("evaluate downstream"):
        for clf in cfg.classifiers:
            for name, rows in sets.items():
                for seed in cfg.training.seeds:
                    key = stage.fingerprint(settings, clf, name, seed)[:10]
                    run_file = f"{_slug(clf.name)}--{_slug(name)}--seed{seed}--{key}.json"
                    if work.path(run_file).is_file():
                        scores = json.loads(work.path(run_file).read_text())["metrics"]
                    else:
                        ckpt = work.path(run_file.removesuffix(".json") + ".ckpt.pt")
                        # the real-only run of the first seed is kept as a grader (`evaluate fidelity --grader`)
                        keep = (
                            out / "graders" / _slug(clf.name)
                            if (name, seed) == ("real", cfg.training.seeds[0])
                            else None
                        )
                        scores = _train_and_score(clf, rows, val_rows, test_rows, cfg, ckpt, seed, save_to=keep)
                        record = {"classifier": asdict(clf), "train_set": name, "seed": seed, "rows": len(rows)}
                        work.commit(run_file, json.dumps({**record, "metrics": scores}))
                        ckpt.unlink(missing_ok=True)  # none when training.epochs is 0
                        trained += 1
                    per_seed.setdefault(clf.name, {}).setdefault(name, {})[seed] = scores
    counts = {
        "real train": len(train_idx),
        "validation": len(val_idx),
        "synthetic": len(synth_idx),
        "test": len(test_idx),
    }
    metrics, ci, paired = _statistics(per_seed)
    result = DownstreamResult(out, metrics, counts, ci, per_seed, paired)
    _report(result, cfg, synth, synth_idx)
    runs = len(cfg.classifiers) * len(sets) * len(cfg.training.seeds)
    result.provenance = run.finish(rows=counts, runs=runs, trained=trained, read_back=runs - trained)
    return result


def _validation(real: ImageSet, train_idx: list[int], cfg: DownstreamRecipe) -> tuple[list[int], list[int]]:
    """(train, validation) indices: the rows of `real` in `validation_split`, or else `validation_fraction` of the
    training rows carved by patient (a patient's images stay on one side), fixed across seeds."""
    splits = real.column("split") if "split" in real.columns else [None] * len(real)
    val = [i for i in train_idx if splits[i] == cfg.data.validation_split]
    if val:
        return [i for i in train_idx if splits[i] != cfg.data.validation_split], val
    patients = real.column("patient_id") if "patient_id" in real.columns else [None] * len(real)
    groups: dict[str, list[int]] = {}
    for i in train_idx:
        groups.setdefault(str(patients[i] or real.ref(i)), []).append(i)
    keys = sorted(groups)
    order = np.random.default_rng(0).permutation(len(keys))
    want = max(1, round(cfg.training.validation_fraction * len(train_idx)))
    chosen: set[int] = set()
    for j in order:
        if len(chosen) >= want or len(chosen) + len(groups[keys[j]]) >= len(train_idx):
            break
        chosen.update(groups[keys[j]])
    if not chosen:
        raise InputError(f"data.real {real.path}: too few training rows to hold out a validation set")
    return [i for i in train_idx if i not in chosen], [i for i in train_idx if i in chosen]


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval over runs (NaN bounds for a single run)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def _statistics(per_seed: dict) -> tuple[dict, dict, dict]:
    """Means and 95% CIs per (classifier, training set, metric); the paired comparison per (classifier, metric):
    the mean seed-by-seed difference real+synthetic - real, its CI, a paired t-test p-value and the seeds won."""
    from scipy import stats

    metrics: dict = {}
    ci: dict = {}
    paired: dict = {}
    for clf, by_set in per_seed.items():
        for name, by_seed in by_set.items():
            for m in METRIC_NAMES:
                mean, lo, hi = mean_ci([r[m] for r in by_seed.values()])
                metrics.setdefault(clf, {}).setdefault(name, {})[m] = mean
                ci.setdefault(clf, {}).setdefault(name, {})[m] = [lo, hi]
        base, plus = by_set.get("real", {}), by_set.get("real+synthetic", {})
        seeds = sorted(set(base) & set(plus))
        for m in METRIC_NAMES:
            diff = [plus[s][m] - base[s][m] for s in seeds]
            mean, lo, hi = mean_ci(diff) if diff else (float("nan"),) * 3
            p = float("nan")
            if len(diff) >= 2 and np.std(diff) > 0:
                p = float(stats.ttest_rel([plus[s][m] for s in seeds], [base[s][m] for s in seeds]).pvalue)
            wins = sum(d > 0 for d in diff)
            paired.setdefault(clf, {})[m] = {"diff": mean, "ci": [lo, hi], "p": p, "wins": wins, "seeds": len(seeds)}
    return metrics, ci, paired


def _labelled(
    images: ImageSet,
    cfg: DownstreamRecipe,
    *,
    synthetic: bool = False,
    only_split: str | None = None,
    exclude_split: str | None = None,
) -> list[int]:
    """Indices of rows with a usable label (and the wanted split)."""
    where = f"{'data.synthetic' if synthetic else 'data'} {images.path}"
    if cfg.label not in images.columns:
        raise InputError(f"{where}: no {cfg.label!r} column; it needs labels in the curated schema")
    labels = images.column(cfg.label)
    if synthetic and all(v is None for v in labels):
        raise InputError(
            f"{where}: every {cfg.label!r} is empty (a set made from free-text prompts?); it cannot enter the "
            "downstream experiment: generate it from label conditions (`retinalogos generate` without --prompt)"
        )
    splits = images.column("split") if (only_split or exclude_split) and "split" in images.columns else None
    keep = []
    for i, v in enumerate(labels):
        if v is None or (splits and only_split and splits[i] != only_split):
            continue
        if splits and exclude_split and splits[i] == exclude_split:
            continue
        if not 0 <= int(v) < cfg.num_labels:
            raise InputError(
                f"{where}: row {i} ({images.ref(i)}) has {cfg.label}={v!r}, outside "
                f"0..{cfg.num_labels - 1} (num_labels)"
            )
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


def _train_and_score(
    clf: Classifier,
    rows,
    val_rows,
    test_rows,
    cfg: DownstreamRecipe,
    ckpt: Path,
    seed: int,
    save_to: Path | None = None,
) -> dict[str, float]:
    """Train one classifier on `rows` with `seed`; after each epoch score `val_rows` and keep the best state by
    `training.select_by`; score `test_rows` with it. `ckpt` holds the state after each epoch (resume); `save_to`
    receives the chosen model and its image processor."""
    from torchvision import transforms
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    t = cfg.training
    device = resolve_device(t.device)
    path = resolve(clf.model, option=f"classifiers[{clf.name}].model")
    labels = {"num_labels": cfg.num_labels, "problem_type": "single_label_classification"}
    torch.manual_seed(seed)  # after resolve: building a tiny model on a cold cache draws from the global RNG
    if clf.pretrained:  # a new head for our classes; the backbone keeps its weights
        model = AutoModelForImageClassification.from_pretrained(path, ignore_mismatched_sizes=True, **labels)
    else:
        model = AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(path, **labels))
    proc = AutoImageProcessor.from_pretrained(path)
    size = getattr(model.config, "image_size", None) or t.image_size
    norm = transforms.Normalize(proc.image_mean, proc.image_std)
    train_tf = transforms.Compose(
        [transforms.Resize((size, size)), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm]
    )
    test_tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(), norm])
    gen = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(
        _Rows(rows, cfg.label, train_tf), t.batch_size, shuffle=True, generator=gen, num_workers=t.workers
    )
    val = torch.utils.data.DataLoader(_Rows(val_rows, cfg.label, test_tf), t.batch_size, num_workers=t.workers)
    test = torch.utils.data.DataLoader(_Rows(test_rows, cfg.label, test_tf), t.batch_size, num_workers=t.workers)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    start = 0
    best = {"epoch": -1, "score": _score(model, val, cfg, device)[t.select_by], "model": _cpu_state(model)}
    if ckpt.is_file():  # an interrupted run: continue after its last finished epoch, with the same data order
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["loader_rng"])
        torch.set_rng_state(state["torch_rng"])
        best = state["best"]
        start = state["epoch"] + 1
        log.info("%s: resumed from %s after epoch %d", clf.name, ckpt, state["epoch"])
    for epoch in range(start, t.epochs):
        model.train()
        for x, y in train:
            loss = model(pixel_values=x.to(device), labels=y.to(device)).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = _score(model, val, cfg, device)[t.select_by]
        log.info("%s epoch %d loss %.4f validation %s %.4f", clf.name, epoch, loss.item(), t.select_by, score)
        if score > best["score"]:
            best = {"epoch": epoch, "score": score, "model": _cpu_state(model)}
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "best": best,
            "loader_rng": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        torch.save(state, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
    model.load_state_dict(best["model"])
    if save_to is not None:  # the chosen checkpoint, loadable by AutoModelForImageClassification
        model.save_pretrained(save_to)
        proc.save_pretrained(save_to)
    return {**_score(model, test, cfg, device), "epoch": best["epoch"] + 1, f"validation_{t.select_by}": best["score"]}


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _score(model, loader, cfg: DownstreamRecipe, device: str) -> dict[str, float]:
    model.eval()
    preds, refs = [], []
    with torch.inference_mode():
        for x, y in loader:
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
    k = len(cfg.training.seeds)
    rows = []
    for clf, by_set in result.metrics.items():
        for name in TRAIN_SETS:
            rows.append([clf, name, *(_with_ci(by_set[name][m], result.ci[clf][name][m]) for m in METRIC_NAMES)])
    table = Table(
        f"{cfg.task}: mean and 95% CI over {k} seed(s)",
        ["classifier", "training set", "accuracy", "F1 (macro)", "QWK"],
        rows,
        f"Each run: up to {cfg.training.epochs} epochs, the epoch chosen by validation {cfg.training.select_by} "
        f"({result.counts['validation']} real validation images); scored on {result.counts['test']} real test "
        f"images. Seeds: {', '.join(map(str, cfg.training.seeds))}.",
    )
    paired_rows = [
        [clf, m, _with_ci(v["diff"], v["ci"]), v["p"], f"{v['wins']}/{v['seeds']}"]
        for clf, by_m in result.paired.items()
        for m, v in by_m.items()
    ]
    paired = Table(
        "Paired comparison: real + synthetic - real (same seed, validation and test rows)",
        ["classifier", "metric", "difference (95% CI)", "p (paired t)", "seeds improved"],
        paired_rows,
    )
    seeds = Table(
        "Per seed",
        ["classifier", "training set", "seed", "epoch chosen", *METRIC_NAMES],
        [
            [clf, name, seed, r.get("epoch"), *(r[m] for m in METRIC_NAMES)]
            for clf, by_set in result.per_seed.items()
            for name, by_seed in by_set.items()
            for seed, r in by_seed.items()
        ],
    )
    counts = Table("Rows", ["set", "images"], [[k_, v] for k_, v in result.counts.items()])
    series = {s: [result.metrics[c][s]["accuracy"] for c in result.metrics] for s in TRAIN_SETS}
    plot = bar_plot("Accuracy (mean over seeds)", list(result.metrics), series, "accuracy")
    labels = synth.column(cfg.label)
    grid = [(f"{cfg.label}={labels[i]}", synth.image(i)) for i in synth_idx[:8]]
    summary = {
        f"{c}: {m} gain with synthetic": f"{_with_ci(result.paired[c][m]['diff'], result.paired[c][m]['ci'])}"
        for c in result.metrics
        for m in ("accuracy", "qwk")
    }
    write_report(
        Report(
            "downstream",
            f"Downstream: {cfg.task}",
            summary,
            [table, paired, seeds, counts],
            [("Synthetic training images", grid)],
            [("Accuracy, real vs real + synthetic", plot)],
            data={
                "metrics": result.metrics,
                "ci": result.ci,
                "paired": result.paired,
                "per_seed": {
                    c: {s: {str(k_): v for k_, v in d.items()} for s, d in b.items()}
                    for c, b in result.per_seed.items()
                },
                "counts": result.counts,
                "task": cfg.task,
                "seeds": list(cfg.training.seeds),
            },
        ),
        result.out,
    )


def _with_ci(mean: float, ci) -> str:
    lo, hi = ci
    if lo != lo:  # NaN: a single seed
        return f"{mean:.3f}"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
