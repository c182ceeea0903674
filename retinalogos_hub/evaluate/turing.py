"""The expert Turing test (the paper: 62.07% of synthetic images were judged real).

`turing_kit` writes a blinded, shuffled sheet: OUT/sheet/ (index.html, images/case-NNN.png, answers.csv to fill in)
goes to the graders; OUT/key.json, which says which case is real, stays private. `turing_score` reads filled
answers.csv files (one per grader) against the key: the share of synthetic images judged real, grader accuracy, and
per-structure realism ratings (1-5) for the optic disc, vessels, macula and lesions, real vs synthetic.
The kit's settings live in `TuringConfig` (`recipes/eval/turing.yaml`); both write OUT/retinalogos.json.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from PIL import Image

from .. import stage
from ..config import load_config
from ..errors import InputError
from .images import open_images
from .report import Report, Table, bar_plot, write_report

STRUCTURES = ("optic_disc", "vessels", "macula", "lesions")
FORM_COLUMNS = ("case", "judgement", *STRUCTURES, "comments")
JUDGEMENTS = {"real": True, "r": True, "synthetic": False, "s": False, "fake": False}


@dataclass(frozen=True)
class TuringConfig:
    """`evaluate turing-kit`'s recipe (`recipes/eval/turing.yaml`)."""

    DEFAULT_RECIPE: ClassVar[str] = "eval/turing.yaml"

    n_real: int  # real images in the sheet
    n_fake: int  # synthetic images in the sheet
    size: int  # side of the sheet's square images, px (every image, real or synthetic, is brought to it)
    format: Literal["jpeg", "png"]  # every sheet image is re-encoded in it, with the same settings
    jpeg_quality: int
    seed: int  # which images are drawn, and their order

    def __post_init__(self):
        if self.n_real < 0 or self.n_fake < 0 or self.n_real + self.n_fake < 1 or self.size < 8:
            raise ValueError("n_real, n_fake >= 0 with at least one image, and size >= 8 are required")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be in 1..100")


@dataclass
class TuringKit:
    out: Path
    sheet: Path  # the folder to send to graders
    form: Path  # sheet/answers.csv
    key: Path  # private
    cases: int
    provenance: Path | None = None


@dataclass
class TuringResult:
    out: Path
    synthetic_judged_real: float  # %, pooled over graders
    accuracy: float  # %, graders' correct calls
    per_grader: dict[str, dict[str, float]]
    structures: dict[str, dict[str, float]]  # structure -> {"real": mean, "synthetic": mean}
    answered: int
    agreement: dict = None  # {"fleiss_kappa", "cases", "pairs": {"a vs b": {"cohen_kappa", "cases"}}}
    provenance: Path | None = None


def turing_kit(
    real: Sequence[str | Path],
    fake: Sequence[str | Path],
    out: Path,
    *,
    recipe: Path | None = None,
    overrides: Sequence[str] = (),
) -> TuringKit:
    """Draw n_real real and n_fake synthetic images, shuffle them under case numbers and write the sheet and key.

    `recipe` (default `recipes/eval/turing.yaml`) + `overrides` give the counts, the image size and the seed."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    cfg = load_config(TuringConfig, recipe, overrides)
    rng = np.random.default_rng(cfg.seed)
    real_sets, fake_sets = _open(real, "--real"), _open(fake, "--fake")
    inputs = {**{f"real:{s.name}": s.path for s in real_sets}, **{f"fake:{s.name}": s.path for s in fake_sets}}
    run = stage.start("evaluate turing-kit", out, cfg, **inputs)
    picks = _draw(real_sets, cfg.n_real, "n_real", rng, True) + _draw(fake_sets, cfg.n_fake, "n_fake", rng, False)
    order = rng.permutation(len(picks))
    out, sheet = Path(out), Path(out) / "sheet"
    (sheet / "images").mkdir(parents=True, exist_ok=True)
    key, cases = {}, []
    ext = "jpg" if cfg.format == "jpeg" else "png"
    for k, j in enumerate(order, start=1):
        images, i, is_real = picks[j]
        case = f"case-{k:03d}"
        data = sheet_image(images.image(i), cfg)
        (sheet / "images" / f"{case}.{ext}").write_bytes(data)
        key[case] = {"real": is_real, "set": images.name, "ref": images.ref(i)}
        cases.append(case)
    form = sheet / "answers.csv"
    with form.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FORM_COLUMNS)
        writer.writerows([[case] + [""] * (len(FORM_COLUMNS) - 1) for case in cases])
    env = Environment(loader=PackageLoader("retinalogos_hub.evaluate", "templates"), autoescape=select_autoescape())
    page = env.get_template("turing_sheet.html.j2").render(
        cases=cases, structures=STRUCTURES, columns=FORM_COLUMNS, ext=ext
    )
    (sheet / "index.html").write_text(page)
    key_path = out / "key.json"
    stage.atomic_write(key_path, json.dumps({"seed": cfg.seed, "cases": key}, indent=1))
    n_r = sum(v["real"] for v in key.values())
    rows = [[c, "real" if v["real"] else "synthetic", v["set"], v["ref"]] for c, v in key.items()]
    summary = {
        "cases": len(cases),
        "real": n_r,
        "synthetic": len(cases) - n_r,
        "sheet": str(sheet),
        "key": str(key_path),
    }
    write_report(
        Report(
            "turing-kit",
            "Turing test kit (private: shows the key)",
            summary,
            [Table("Key", ["case", "origin", "set", "source image"], rows)],
        ),
        out,
    )
    provenance = run.finish(cases=len(cases), real=n_r, synthetic=len(cases) - n_r)
    return TuringKit(out, sheet, form, key_path, len(cases), provenance)


def sheet_image(im: Image.Image, cfg: TuringConfig) -> bytes:
    """One sheet image, made the same way whatever its origin: centred on a black square (the fundus surround),
    resized to `size` x `size` (Lanczos), re-encoded from bare pixels in `format` with fixed settings. Nothing of
    the source file survives: no size, aspect, compression history hint, EXIF, ICC profile or text chunk."""
    rgb = im.convert("RGB")
    side = max(rgb.size)
    square = Image.new("RGB", (side, side))
    square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    pixels = Image.fromarray(np.asarray(square.resize((cfg.size, cfg.size), Image.LANCZOS)))  # no info carried
    buf = io.BytesIO()
    if cfg.format == "jpeg":
        pixels.save(buf, "JPEG", quality=cfg.jpeg_quality, subsampling=0, optimize=False)
    else:
        pixels.save(buf, "PNG")
    return buf.getvalue()


def _open(specs, option: str) -> list:
    if not specs:
        raise InputError(f"give at least one {option} set")
    return [open_images(s, option=option) for s in specs]


def _draw(sets, n: int, key: str, rng, is_real: bool) -> list:
    pool = [(s, i) for s in sets for i in range(len(s))]
    if n > len(pool):
        raise InputError(
            f"{key}={n}: {n} {'real' if is_real else 'synthetic'} images asked for, only {len(pool)} "
            f"available; lower it (override {key}={len(pool)})"
        )
    return [(*pool[j], is_real) for j in rng.choice(len(pool), size=n, replace=False)]


def turing_score(kit: Path, answers: Sequence[Path], out: Path | None = None) -> TuringResult:
    """Score filled answer forms against KIT/key.json; write the report into `out` (default KIT/score)."""
    kit = Path(kit)
    key_path = kit / "key.json"
    if not key_path.is_file():
        raise InputError(
            f"{key_path}: not found; pass the directory `retinalogos evaluate turing-kit` wrote (it holds key.json)"
        )
    if not answers:
        raise InputError("give at least one --answers CSV")
    key = json.loads(key_path.read_text())["cases"]
    out = Path(out) if out else kit / "score"
    names = [Path(a).stem for a in answers]
    if len(set(names)) != len(names):
        names = [str(a) for a in answers]
    run = stage.start("evaluate turing-score", out, {}, kit=kit, **{f"answers:{n}": a for n, a in zip(names, answers)})
    graders = {name: _read_form(Path(a), key) for name, a in zip(names, answers)}

    per_grader, pooled = {}, []
    for name, rows in graders.items():
        per_grader[name] = _rates(rows, key)
        pooled += rows
    if not pooled:
        raise InputError(
            f"no case has a judgement in {', '.join(map(str, answers))}; fill the 'judgement' column "
            "with real/synthetic"
        )
    total = _rates(pooled, key)
    agreement = _agreement(graders)
    structures = {
        s: {
            origin: _mean([r[s] for r in pooled if key[r["case"]]["real"] == (origin == "real") and r[s] is not None])
            for origin in ("real", "synthetic")
        }
        for s in STRUCTURES
    }
    result = TuringResult(
        out, total["synthetic judged real %"], total["accuracy %"], per_grader, structures, len(pooled), agreement
    )
    _report(result, total, len(graders))
    result.provenance = run.finish(answers=len(pooled), graders=len(graders))
    return result


def _report(result: TuringResult, total: dict, graders: int) -> None:
    summary = {
        "synthetic judged real %": result.synthetic_judged_real,
        "grader accuracy %": result.accuracy,
        "answers": result.answered,
        "graders": graders,
        "Fleiss' kappa": result.agreement["fleiss_kappa"],
    }
    per_grader = Table(
        "Per grader",
        ["grader", *total],
        [[g, *v.values()] for g, v in result.per_grader.items()] + [["all", *total.values()]],
    )
    ratings = Table(
        "Realism ratings (1-5, mean)",
        ["structure", "real", "synthetic"],
        [[s, v["real"], v["synthetic"]] for s, v in result.structures.items()],
    )
    ag = result.agreement
    pair_rows = [[pair, v["cohen_kappa"], v["cases"]] for pair, v in ag["pairs"].items()]
    agreement = Table(
        "Agreement between graders (real / synthetic calls)",
        ["graders", "Cohen's kappa", "cases both answered"],
        [*pair_rows, ["all (Fleiss' kappa)", ag["fleiss_kappa"], ag["cases"]]],
        "Kappa: 1 = the graders always agree, 0 = no more than chance.",
    )
    origins = ("real", "synthetic")
    series = {o: [result.structures[s][o] for s in STRUCTURES] for o in origins}
    plot = bar_plot("Realism by structure", list(STRUCTURES), series, "mean rating (1-5)")
    write_report(
        Report(
            "turing",
            "Turing test score",
            summary,
            [per_grader, agreement, ratings],
            plots=[("Realism by structure", plot)],
            data={"per_grader": result.per_grader, "structures": result.structures, "agreement": ag},
        ),
        result.out,
    )


def _agreement(graders: dict[str, list[dict]]) -> dict:
    """Cohen's kappa for every pair of graders on the cases both answered; Fleiss' kappa on the cases all answered."""
    from sklearn.metrics import cohen_kappa_score

    calls = {g: {r["case"]: r["real"] for r in rows} for g, rows in graders.items()}
    pairs = {}
    for a, b in itertools.combinations(calls, 2):
        common = sorted(set(calls[a]) & set(calls[b]))
        x, y = [calls[a][c] for c in common], [calls[b][c] for c in common]
        kappa = float(cohen_kappa_score(x, y)) if common and len(set(x) | set(y)) > 1 else float("nan")
        pairs[f"{a} vs {b}"] = {"cohen_kappa": kappa, "cases": len(common)}
    every = sorted(set.intersection(*(set(c) for c in calls.values()))) if calls else []
    counts = np.array([[sum(calls[g][c] for g in calls), sum(not calls[g][c] for g in calls)] for c in every])
    return {
        "fleiss_kappa": fleiss_kappa(counts) if len(calls) > 1 else float("nan"),
        "cases": len(every),
        "pairs": pairs,
    }


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of a (cases x categories) table of how many raters put each case in each category."""
    if counts.size == 0:
        return float("nan")
    n = counts.sum(1)[0]
    p_j = counts.sum(0) / counts.sum()
    p_i = ((counts**2).sum(1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float("nan") if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


def _read_form(path: Path, key: dict) -> list[dict]:
    """Answered rows of one form; a bad case id, judgement or rating names the file and row."""
    if not path.is_file():
        raise InputError(f"--answers {path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("case", "judgement") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(missing)}; use the answers.csv from the kit's sheet/"
            )
        rows, seen = [], set()
        for line, raw in enumerate(reader, start=2):
            case = (raw.get("case") or "").strip()
            if case not in key:
                raise InputError(f"{path}:{line}: unknown case {case!r}; is this the form of another kit?")
            if case in seen:
                raise InputError(f"{path}:{line}: case {case} answered twice")
            seen.add(case)
            judgement = (raw.get("judgement") or "").strip().lower()
            if not judgement:
                continue  # unanswered: not counted either way
            if judgement not in JUDGEMENTS:
                raise InputError(f"{path}:{line}: judgement {raw['judgement']!r} for {case}; write real or synthetic")
            row = {"case": case, "real": JUDGEMENTS[judgement]}
            for s in STRUCTURES:
                value = (raw.get(s) or "").strip()
                if value and not (value.isdigit() and 1 <= int(value) <= 5):
                    raise InputError(
                        f"{path}:{line}: {s} rating {value!r} for {case}; use 1 (clearly artificial) "
                        "to 5 (fully realistic) or leave blank"
                    )
                row[s] = int(value) if value else None
            rows.append(row)
    return rows


def _rates(rows: list[dict], key: dict) -> dict[str, float | int]:
    synth = [r for r in rows if not key[r["case"]]["real"]]
    real = [r for r in rows if key[r["case"]]["real"]]
    return {
        "synthetic judged real %": 100 * _mean([r["real"] for r in synth]),
        "real judged real %": 100 * _mean([r["real"] for r in real]),
        "accuracy %": 100 * _mean([r["real"] == key[r["case"]]["real"] for r in rows]),
        "answered": len(rows),
    }


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")
