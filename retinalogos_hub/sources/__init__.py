"""Source adapters: one module per public dataset, registered here by one line each."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from types import ModuleType

from ..errors import SourceError
from ..licenses import FIELDS, license_for

# name -> module under retinalogos_hub.sources (one line per adapter)
REGISTRY: dict[str, str] = {
    "eyepacs": "eyepacs",
    "aptos": "aptos",
    "messidor2": "messidor2",
    "idrid": "idrid",
    "ddr": "ddr",
    "deepdrid": "deepdrid",
    "odir": "odir",
    "rfmid": "rfmid",
    "rfmid2": "rfmid2",
    "jsiec": "jsiec",
    "brset": "brset",
    "mbrset": "mbrset",
    "airogs": "airogs",
    "justraigs": "justraigs",
    "refuge": "refuge",
    "origa": "origa",
    "g1020": "g1020",
    "papila": "papila",
    "fives": "fives",
    "hrf": "hrf",
    "drive": "drive",
    "stare": "stare",
    "chase_db1": "chase_db1",
    "messidor1": "messidor1",
    "diaretdb1": "diaretdb1",
    "e_ophtha": "e_ophtha",
    "aria": "aria",
    "acrima": "acrima",
    "lag": "lag",
    "rim_one_dl": "rim_one_dl",
    "chaksu": "chaksu",
    "glaucoma_det": "glaucoma_det",
    "adam": "adam",
    "palm": "palm",
    "mmac": "mmac",
    "mured": "mured",
    "cataract": "cataract",
    "eye_diseases": "eye_diseases",
    "deepeyenet": "deepeyenet",
    "hei_med": "hei_med",
    "roc": "roc",
    "drishti_gs": "drishti_gs",
    "drions_db": "drions_db",
    "sustech_sysu": "sustech_sysu",
    "jichi": "jichi",
    "paraguay": "paraguay",
    "table": "table",
}


def get_source(name: str) -> ModuleType:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SourceError(f"unknown source {name!r}{hint}; known sources: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}")


def parse_sources(specs) -> list:
    """['NAME=PATH', ...] -> [(name, Path)], as given on the command line."""
    from pathlib import Path

    out = []
    for spec in specs:
        name, sep, root = str(spec).partition("=")
        if not (sep and name.strip() and root.strip()):
            raise SourceError(f"--source {spec!r}: expected NAME=PATH, e.g. --source eyepacs=/data/eyepacs")
        out.append((name.strip(), Path(root.strip()).expanduser()))
    return out


def make_config(name: str, root, **options):
    """The adapter's Config dataclass for `root` plus options (an unknown option names the valid ones)."""
    module = get_source(name)
    valid = [f.name for f in dataclasses.fields(module.Config) if f.name != "root"]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise SourceError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return module.Config(root=root, **options)


def describe() -> list[dict]:
    """One row per adapter for `retinalogos sources` (`--json` prints these rows): what it expects on disk, the
    schema labels it fills, how its patients are keyed, its licence and whether its images may be re-hosted."""
    rows = []
    for name in REGISTRY:
        info = get_source(name).INFO
        lic = license_for(name)
        rows.append(
            {
                "name": name,
                "title": info.title,
                "expects": info.expects,
                "labels": list(info.labels),
                "license": lic.license,
                "redistributable": lic.redistributable,
                "tier": lic.tier,
                "published": [f for f in FIELDS if f in lic.publish],
                "patient_key": info.patient_key,
                "homepage": info.homepage or lic.url,
            }
        )
    return rows


COUNTED = ("eye", "dr_grade", "dme", "glaucoma", "quality", "diseases")  # labels `check` counts (per split)


def check(name: str, root, **options) -> dict:
    """What the adapter `name` would read at `root`, without curating: the label files it opened, the image count, the
    counts per official split and label, and its problems (rows with missing images, encodings it had to guess, the
    first error that stopped it). Missing images are reported (on_bad_files=warn) unless options say otherwise."""
    import logging
    from collections import Counter, defaultdict
    from pathlib import Path

    from ..errors import RetinalogosError
    from . import base

    problems: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            problems.append(record.getMessage())

    handler, logger = _Collect(logging.WARNING), logging.getLogger(__name__)
    reads: list[Path] = []
    token = base._READS.set(reads)
    logger.addHandler(handler)
    counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    n, ok = 0, True
    try:
        cfg = make_config(name, Path(root), **{"on_bad_files": "warn", **options})
        for rec in get_source(name).records(cfg):
            rec = base.complete(rec)
            n += 1
            split = rec["split"] or "none"
            for label in COUNTED:
                values = rec[label] if label == "diseases" else [rec[label]]
                for v in values or ([] if label == "diseases" else [None]):
                    counts[split][label][str(v) if v is not None else "unknown"] += 1
    except RetinalogosError as e:
        problems.append(str(e))
        ok = False
    finally:
        logger.removeHandler(handler)
        base._READS.reset(token)
    return {
        "name": name,
        "root": str(root),
        "ok": ok and n > 0,
        "files": [str(p) for p in reads],
        "images": n,
        "splits": {
            s: {label: dict(sorted(c.items())) for label, c in by_label.items() if set(c) != {"unknown"}}
            for s, by_label in sorted(counts.items())
        },
        "problems": problems + ([] if n or not ok else [f"{name}: no images found under {root}"]),
    }
