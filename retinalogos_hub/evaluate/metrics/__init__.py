"""`evaluate` metric modules shipped in the package and loaded by path (`evaluate.load(metric_path(name))`), since
`evaluate.load("accuracy")` fetches its script from the Hub and fails offline. Each import sits on its own line:
evaluate's loader parses a module's imports line by line. Each module is self-contained (evaluate copies the one
script into its cache, so they cannot share a helper module); hence their alike `_info` blocks."""

from __future__ import annotations

from pathlib import Path

NAMES = ("accuracy", "f1", "qwk")


def metric_path(name: str) -> Path:
    return Path(__file__).parent / name


def load(name: str):
    import evaluate

    return evaluate.load(str(metric_path(name)))
