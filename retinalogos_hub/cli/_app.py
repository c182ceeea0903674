"""The Typer app and the one output helper every command prints through."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    name="retinalogos",
    help="RetinaLogos on the Hub: curate -> caption -> purify -> push-dataset; train -> push-model -> generate -> evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _quiet_rank() -> bool:
    """Under `accelerate launch` / torchrun every rank runs the command; only global rank 0 prints its result."""
    return os.environ.get("RANK", "0") != "0"


def result(title: str, **fields: Any) -> None:
    """Print a command's result as `title` + key: value lines (one place, so every command looks the same)."""
    if _quiet_rank():
        return
    console.print(f"[bold green]{escape(title)}[/]")
    for k, v in fields.items():
        console.print(f"  {k}: {escape(str(v))}")  # values are data (paths, ids), never markup


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    if _quiet_rank():
        return
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[escape(str(x)) for x in r])
    console.print(t)
