"""`retinalogos`: a thin Typer layer. Each command parses options, calls one library function and prints the result.

Library errors (retinalogos_hub.errors) become one line plus a hint and exit code 1; any other exception becomes one
line too (the command, the exception, the file and row where known) with exit code 1; set RETINALOGOS_DEBUG=1 for the
traceback.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from ..errors import RetinalogosError

# Each module registers its commands on `app` (one file per area of the data path).
from . import caption, curate, demo, evaluate, generate, hub, purify, train, zoo  # noqa: E402,F401
from ._app import app, err_console


def main() -> None:
    try:
        app()
    except RetinalogosError as e:
        if os.environ.get("RETINALOGOS_DEBUG") == "1":
            raise
        # escaped: messages quote values such as `[left]` or paths with `[/...]`, which rich would eat or choke on
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        if e.hint:
            err_console.print(f"[dim]hint: {escape(e.hint)}[/]", highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as e:  # not SystemExit / KeyboardInterrupt: typer's own exits and Ctrl-C pass through
        if os.environ.get("RETINALOGOS_DEBUG") == "1":
            raise
        err_console.print(f"[bold red]error:[/] {escape(unexpected(e, sys.argv[1:]))}", highlight=False, soft_wrap=True)
        err_console.print(
            "[dim]hint: this is not a known input problem; rerun with RETINALOGOS_DEBUG=1 for the traceback and report "
            "it with the file named above[/]",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


def unexpected(e: BaseException, argv: list[str]) -> str:
    """One line for an exception the library did not type: the stage (the command words), the exception, and where:
    the file and row from PEP 678 notes (`file F row N`, added where the library knows them) or the OSError's file."""
    words = []
    for a in argv:
        if a.startswith("-") or "=" in a or "/" in a or len(words) == 2:
            break
        words.append(a)
    stage = " ".join(words) or "retinalogos"
    first = (str(e).splitlines() or [""])[0]
    where = [n for n in getattr(e, "__notes__", ()) if n]
    filename = getattr(e, "filename", None)
    if filename and str(filename) not in first and not any(str(filename) in n for n in where):
        where.append(f"file {filename}")
    return f"{stage} failed: {type(e).__name__}: {first}" + (f" ({'; '.join(where)})" if where else "")
