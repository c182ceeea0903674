"""What several benchmarks share: wall time of a call, synchronised on CUDA so queued kernels are counted."""

from __future__ import annotations

import time


def timed(fn, device: str = "cpu"):
    """(seconds, result) of `fn()`."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t, out
