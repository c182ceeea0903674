"""Every evaluate run ends here: `report.json` (the numbers, machine-readable) and `report.html` (jinja2: metric
tables, image grids and matplotlib plots embedded as base64 PNG, so the page is one self-contained file)."""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..stage import atomic_write

TEMPLATE = "report.html.j2"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Report:
    kind: str  # "fid" | "clip-score" | "downstream" | "turing"
    title: str
    summary: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    grids: list[tuple[str, list[tuple[str, Image.Image]]]] = field(default_factory=list)  # (title, [(label, image)])
    plots: list[tuple[str, Any]] = field(default_factory=list)  # (title, matplotlib Figure)
    data: dict[str, Any] = field(default_factory=dict)  # everything else report.json should hold


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return "n/a" if value is None else str(value)


def write_report(report: Report, out: Path) -> tuple[Path, Path]:
    """Write OUT/report.json and OUT/report.html; return their paths."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "kind": report.kind,
        "title": report.title,
        "summary": report.summary,
        "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows, "note": t.note} for t in report.tables],
        **report.data,
    }
    json_path = out / "report.json"
    atomic_write(json_path, json.dumps(_clean(payload), indent=2, default=_jsonable))
    env = Environment(loader=PackageLoader("retinalogos_hub.evaluate", "templates"), autoescape=select_autoescape())
    env.filters["fmt"] = fmt
    html = env.get_template(TEMPLATE).render(
        report=report,
        grids=[(title, [(label, _png_b64(im, 160)) for label, im in items]) for title, items in report.grids],
        plots=[(title, _fig_b64(fig)) for title, fig in report.plots],
    )
    html_path = out / "report.html"
    atomic_write(html_path, html)
    return json_path, html_path


def bar_plot(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str):
    """Grouped bars (one group per x label, one bar per series) as a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or CI
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _png_b64(im: Image.Image, size: int) -> str:
    thumb = im.convert("RGB").copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _fig_b64(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _clean(obj):
    """NaN (a metric with nothing to average) becomes null: report.json stays valid JSON for any reader."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
