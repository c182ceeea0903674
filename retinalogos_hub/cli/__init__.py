"""`retinalogos`: a thin Typer layer. Each command parses options, calls one library function and prints the result.

Library errors (retinalogos_hub.errors) become one line plus a hint and exit code 1; set RETINALOGOS_DEBUG=1 for the
traceback.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from ..errors import RetinalogosError

# Each module registers its commands on `app` (one file per area of the data path).
from . import caption, curate, demo, evaluate, generate, hub, purify, train  # noqa: E402,F401
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
