"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

OutDir = Annotated[
    Path, typer.Option("--out", "-o", help="Output directory (a HF dataset directory or a diffusers folder).")
]
InDir = Annotated[Path, typer.Argument(help="Input stage directory (written by the previous stage).")]
Shard = Annotated[
    Optional[str], typer.Option("--shard", help="Process shard i of N, as 'i/N' (0-based), for multi-machine runs.")
]
Workers = Annotated[int, typer.Option("--workers", "-j", help="Parallel worker processes.")]
RepoId = Annotated[str, typer.Option("--repo-id", help="Hub repository, ORG/NAME.")]
Private = Annotated[bool, typer.Option("--private", help="Create the Hub repo as private.")]
Token = Annotated[
    Optional[str],
    typer.Option(
        "--token", help="Hub token (default: HF_TOKEN or the saved login). Never printed.", show_default=False
    ),
]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="Recipe overrides, key.sub=value.", show_default=False)]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Model = Annotated[str, typer.Option("--model", "-m", help="Hub id, local directory or tiny:<name>.")]
Models = Annotated[
    Optional[list[str]], typer.Option("--model", "-m", help="Hub id, local directory or tiny:<name> (repeatable).")
]
Device = Annotated[
    Optional[str],
    typer.Option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).", show_default=False),
]
Recipe = Annotated[
    Path,
    typer.Option(
        "--recipe", "-r", help="Recipe YAML under recipes/ (the single source of truth; key=value overrides go on top)."
    ),
]
OptionalRecipe = Annotated[
    Optional[Path],
    typer.Option(
        "--recipe",
        "-r",
        help="Recipe YAML (default: the shipped one named in --help); key=value overrides go on top.",
        show_default=False,
    ),
]
RefuseUncaptioned = Annotated[
    bool,
    typer.Option(
        "--refuse-uncaptioned",
        help="Stop when a row has no caption (failed captioning) instead of leaving it out with a count.",
    ),
]
