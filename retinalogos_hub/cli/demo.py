"""`retinalogos demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, result, table
from ._options import Seed


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Where every stage writes its directory.")] = Path(
        "demo-run"
    ),
    patients: Annotated[int, typer.Option("--patients", help="Miniature EyePACS patients (two eyes each).")] = 6,
    seed: Seed = 0,
) -> None:
    """Run the whole path offline on procedural fundus images and embedded tiny models (a few minutes on a CPU)."""
    from ..demo.run import run_demo

    res = run_demo(workdir, patients=patients, seed=seed)
    table(
        f"retinalogos demo ({res.workdir})",
        ["stage", "output", "rows/steps", "seconds"],
        [[s.name, s.output, s.count, s.seconds] for s in res.stages],
    )
    result(
        "Demo finished",
        summary=res.workdir / "summary.json",
        samples=res.summary["samples_png"],
        evaluation=res.summary["evaluation_report"],
    )
