"""Facts about diffusers text-to-image pipelines that several stages need (training validation, generate, the demo).

One place for the per-family `__call__` arguments (FIELD-NOTES §3), read from the pipeline's own signature, so a new
backbone needs no entry here.
"""

from __future__ import annotations

import inspect


def call_kwargs(pipe) -> dict:
    """Arguments every call of `pipe` needs: captions verbatim (no bs4/ftfy rewriting of clinical text), the exact
    requested size (no resolution binning), and captions encoded without Sana's long system instruction, exactly as
    training encodes them."""
    params = inspect.signature(pipe.__call__).parameters
    wanted = {"clean_caption": False, "use_resolution_binning": False, "complex_human_instruction": None}
    return {k: v for k, v in wanted.items() if k in params}
