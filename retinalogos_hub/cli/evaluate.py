"""CLI commands for evaluation: the `evaluate` group (registered on the shared app).

Each command's settings live in a recipe under recipes/eval/ (fid.yaml, clip_score.yaml, turing.yaml are the
defaults; downstream takes one per task); `--recipe` swaps it, `key=value` overrides go on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import app, result, table
from ._options import Device, Model, OptionalRecipe, Overrides, Recipe

evaluate_cli = typer.Typer(
    help="Evaluate synthetic fundus data: FID/KID, CLIP score, downstream gain, Turing test.", no_args_is_help=True
)
app.add_typer(evaluate_cli, name="evaluate")

ReportOut = Annotated[Path, typer.Option("--out", "-o", help="Report directory (report.json, report.html).")]
RealSets = Annotated[
    list[str], typer.Option("--real", help="Real set: [NAME=]DIR, a dataset directory or an image folder; repeatable.")
]
FakeSets = Annotated[list[str], typer.Option("--fake", help="Synthetic set: [NAME=]DIR; repeatable.")]
Data = Annotated[Path, typer.Option("--data", help="Dataset directory with image and caption columns.")]
Kit = Annotated[Path, typer.Argument(help="The turing-kit output directory (holds key.json).")]
Answers = Annotated[list[str], typer.Option("--answers", help="A filled answers.csv; repeatable, one per grader.")]
Features = Annotated[
    Optional[list[str]],
    typer.Option(
        "--features",
        help="Feature space: inception, pixels, timm:NAME|DIR, or a transformers model id/path/tiny:NAME; repeatable "
        "(default: the recipe's).",
        show_default=False,
    ),
]
ScoreOut = Annotated[
    Optional[Path], typer.Option("--out", "-o", help="Report directory (default: KIT/score).", show_default=False)
]


@evaluate_cli.command("fid")
def fid_cmd(
    real: RealSets,
    fake: FakeSets,
    out: ReportOut,
    features: Features = None,
    recipe: OptionalRecipe = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """FD, KID and precision/recall/density/coverage of synthetic sets against real sets, per feature space, overall
    and per condition, with real-vs-real reference rows (paper Table 1 and beyond).

    Settings: recipes/eval/fid.yaml (features, kid_subset_size, nearest_k, conditions, batch_size, seed, weights).

    Example: retinalogos evaluate fid --real aptos=data/aptos --fake runs/synth -o runs/eval-fid --features inception
    --features facebook/dinov2-base kid_subset_size=500
    """
    from ..evaluate.fid import fid_report

    res = fid_report(real, fake, out, recipe=recipe, overrides=overrides or (), device=device, features=features or ())
    rows = [
        [space, row, real_set, f"{v['fd']:.2f}", f"{v['precision']:.3f}", f"{v['recall']:.3f}"]
        for space, by_row in res.metrics.items()
        for row, by_real in by_row.items()
        for real_set, v in by_real.items()
    ]
    table("FD / PRDC", ["features", "set", "real set", "FD", "precision", "recall"], rows)
    result("FID report", out=res.out / "report.html")


TrainSet = Annotated[
    Path, typer.Option("--train", help="The generator's training images: a dataset directory or folder.")
]
FakeSet = Annotated[Path, typer.Option("--fake", help="Synthetic images: a dataset directory or folder.")]
Holdout = Annotated[
    Optional[Path],
    typer.Option(
        "--holdout",
        help="Real images the generator never saw (default: a held-out share of --train).",
        show_default=False,
    ),
]
OneFeatures = Annotated[
    Optional[str],
    typer.Option("--features", help="Feature space (default: the recipe's).", show_default=False),
]


@evaluate_cli.command("memorization")
def memorization_cmd(
    train: TrainSet,
    fake: FakeSet,
    out: ReportOut,
    holdout: Holdout = None,
    features: OneFeatures = None,
    recipe: OptionalRecipe = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """Flag synthetic images that are near-copies of training images (nearest neighbours in a feature space, against
    unseen real images' distances); report.json lists them under near_copies.

    Settings: recipes/eval/memorization.yaml (features, quantile, margin, holdout_fraction, top_k).

    Example: retinalogos evaluate memorization --train data/train --fake runs/synth -o runs/eval-mem
    """
    from ..evaluate.memorization import memorization

    res = memorization(
        train, fake, out, holdout=holdout, recipe=recipe, overrides=overrides or (), features=features, device=device
    )
    rows = [[c["fake"], c["train"], f"{c['distance']:.4f}"] for c in res.near_copies[:20]]
    if rows:
        table("Near copies", ["synthetic", "training image", "distance"], rows)
    result(
        "Memorisation audit",
        near_copies=len(res.near_copies),
        threshold=f"{res.threshold:.4f}",
        p_closer=f"{res.p_value:.3g}",
        report=res.out / "report.html",
    )


Grader = Annotated[
    Optional[str],
    typer.Option(
        "--grader",
        help="Image classifier for the requested label: Hub id, local path or tiny:NAME (default: laterality only).",
        show_default=False,
    ),
]


@evaluate_cli.command("fidelity")
def fidelity_cmd(
    data: Data,
    out: ReportOut,
    grader: Grader = None,
    recipe: OptionalRecipe = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """Does each synthetic image show what was asked? Grader accuracy and QWK against the requested grade, and
    laterality accuracy from the optic disc's side.

    Settings: recipes/eval/fidelity.yaml (label, num_labels, batch_size, disc_confident).

    Example: retinalogos evaluate fidelity --data runs/synth --grader runs/eval-idrid/graders/ResNet-50 -o runs/eval-fid
    """
    from ..evaluate.fidelity import fidelity

    res = fidelity(data, out, grader=grader, recipe=recipe, overrides=overrides or (), device=device)

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    result(
        "Fidelity",
        accuracy=f(res.accuracy),
        qwk=f(res.qwk),
        laterality_accuracy=f(res.laterality_accuracy),
        laterality_clear_calls=f"{res.laterality_decided:.0%}",
        report=res.out / "report.html",
    )


@evaluate_cli.command("clip-score")
def clip_score_cmd(
    data: Data,
    model: Model,
    out: ReportOut,
    recipe: OptionalRecipe = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """CLIP score (mean image-caption cosine similarity) of a captioned or generated dataset.

    Settings: recipes/eval/clip_score.yaml (caption_column, batch_size).

    Example: retinalogos evaluate clip-score --data runs/synth -m openai/clip-vit-large-patch14 -o runs/eval-clip
    """
    from ..evaluate.clip import clip_score

    res = clip_score(data, model, out, recipe=recipe, overrides=overrides or (), device=device)
    result(
        "CLIP score",
        score=f"{res.score:.4f} ± {res.std:.4f}",
        pairs=res.rows,
        truncated=res.truncated,
        report=res.out / "report.html",
    )


@evaluate_cli.command("downstream")
def downstream_cmd(recipe: Recipe, device: Device = None, overrides: Overrides = None) -> None:
    """Train classifiers on real and on real + synthetic images; accuracy, F1 and QWK (paper Table 2).

    Example: retinalogos evaluate downstream --recipe recipes/eval/idrid_dr_grading.yaml data.synthetic=runs/synth
    """
    from ..evaluate.downstream import downstream

    res = downstream(recipe, overrides or (), device=device)
    rows = [
        [c, s, *(f"{m[k]:.3f}" for k in ("accuracy", "f1", "qwk"))]
        for c, by in res.metrics.items()
        for s, m in by.items()
    ]
    table("Downstream", ["classifier", "training set", "accuracy", "F1", "QWK"], rows)
    result("Downstream report", out=res.out / "report.html")


@evaluate_cli.command("turing-kit")
def turing_kit_cmd(
    real: RealSets, fake: FakeSets, out: ReportOut, recipe: OptionalRecipe = None, overrides: Overrides = None
) -> None:
    """Write a blinded, shuffled real-vs-synthetic sheet (HTML + answers.csv) and a private key.

    Settings: recipes/eval/turing.yaml (n_real, n_fake, size, seed).

    Example: retinalogos evaluate turing-kit --real data/idrid --fake runs/synth -o turing n_real=50 n_fake=50
    """
    from ..evaluate.turing import turing_kit

    kit = turing_kit(real, fake, out, recipe=recipe, overrides=overrides or ())
    result("Turing kit", send=kit.sheet, form=kit.form, private_key=kit.key, cases=kit.cases)


@evaluate_cli.command("turing-score")
def turing_score_cmd(kit: Kit, answers: Answers, out: ScoreOut = None) -> None:
    """Score filled Turing-test answers: % of synthetic images judged real, per-structure realism.

    Example: retinalogos evaluate turing-score turing --answers grader1.csv --answers grader2.csv
    """
    from ..evaluate.turing import turing_score

    res = turing_score(kit, [Path(a) for a in answers], out)
    s = {k: f"real {v['real']:.2f} / synthetic {v['synthetic']:.2f}" for k, v in res.structures.items()}
    result(
        "Turing score",
        synthetic_judged_real=f"{res.synthetic_judged_real:.2f}%",
        grader_accuracy=f"{res.accuracy:.2f}%",
        answers=res.answered,
        **s,
        report=res.out / "report.html",
    )
