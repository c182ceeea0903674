"""Source adapters: one module per public dataset, registered here by one line each."""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

from ..errors import SourceError

# name -> module under retinalogos_hub.sources (one line per adapter)
REGISTRY: dict[str, str] = {
    "eyepacs": "eyepacs",
    "aptos": "aptos",
}


def get_source(name: str) -> ModuleType:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SourceError(f"unknown source {name!r}{hint}; known sources: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}")


def make_config(name: str, root, **options):
    """The adapter's Config dataclass for `root` plus options."""
    module = get_source(name)
    return module.Config(root=root, **options)
