"""The expert Turing test (the paper: 62.07% of synthetic images were judged real).

`turing_kit` writes a blinded, shuffled sheet: OUT/sheet/ (index.html, images/case-NNN.png, answers.csv to fill in)
goes to the graders; OUT/key.json, which says which case is real, stays private. `turing_score` reads filled
answers.csv files (one per grader) against the key: the share of synthetic images judged real, grader accuracy, and
per-structure realism ratings (1-5) for the optic disc, vessels, macula and lesions, real vs synthetic.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .images import open_images
from .report import Report, Table, bar_plot, write_report

STRUCTURES = ("optic_disc", "vessels", "macula", "lesions")
FORM_COLUMNS = ("case", "judgement", *STRUCTURES, "comments")
JUDGEMENTS = {"real": True, "r": True, "synthetic": False, "s": False, "fake": False}


@dataclass
class TuringKit:
    out: Path
    sheet: Path  # the folder to send to graders
    form: Path  # sheet/answers.csv
    key: Path  # private
    cases: int


@dataclass
class TuringResult:
    out: Path
    synthetic_judged_real: float  # %, pooled over graders
    accuracy: float  # %, graders' correct calls
    per_grader: dict[str, dict[str, float]]
    structures: dict[str, dict[str, float]]  # structure -> {"real": mean, "synthetic": mean}
    answered: int


def turing_kit(
    real: Sequence[str | Path], fake: Sequence[str | Path], out: Path, *, n_real: int = 50, n_fake: int = 50,
    seed: int = 0, size: int = 1024,
) -> TuringKit:
    """Draw n_real real and n_fake synthetic images, shuffle them under case numbers and write the sheet and key."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    rng = np.random.default_rng(seed)
    picks = _draw(real, n_real, "--real", rng, True) + _draw(fake, n_fake, "--fake", rng, False)
    order = rng.permutation(len(picks))
    out, sheet = Path(out), Path(out) / "sheet"
    (sheet / "images").mkdir(parents=True, exist_ok=True)
    key, cases = {}, []
    for k, j in enumerate(order, start=1):
        images, i, is_real = picks[j]
        case = f"case-{k:03d}"
        im = images.image(i)
        im.thumbnail((size, size))
        im.save(sheet / "images" / f"{case}.png")  # re-encoded from pixels: no EXIF, no names that give it away
        key[case] = {"real": is_real, "set": images.name, "ref": images.ref(i)}
        cases.append(case)
    form = sheet / "answers.csv"
    with form.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FORM_COLUMNS)
        writer.writerows([[case] + [""] * (len(FORM_COLUMNS) - 1) for case in cases])
    env = Environment(loader=PackageLoader("retinalogos_hub.evaluate", "templates"), autoescape=select_autoescape())
    (sheet / "index.html").write_text(env.get_template("turing_sheet.html.j2").render(cases=cases, structures=STRUCTURES, columns=FORM_COLUMNS))
    key_path = out / "key.json"
    key_path.write_text(json.dumps({"seed": seed, "cases": key}, indent=1))
    n_r = sum(v["real"] for v in key.values())
    write_report(
        Report("turing-kit", "Turing test kit (private: shows the key)",
               {"cases": len(cases), "real": n_r, "synthetic": len(cases) - n_r, "sheet": str(sheet), "key": str(key_path)},
               [Table("Key", ["case", "origin", "set", "source image"], [[c, "real" if v["real"] else "synthetic", v["set"], v["ref"]] for c, v in key.items()])]),
        out,
    )
    return TuringKit(out, sheet, form, key_path, len(cases))


def _draw(specs, n: int, option: str, rng, is_real: bool) -> list:
    if not specs:
        raise InputError(f"give at least one {option} set")
    sets = [open_images(s, option=option) for s in specs]
    pool = [(s, i) for s in sets for i in range(len(s))]
    if n > len(pool):
        raise InputError(f"{option}: {n} images asked for, only {len(pool)} available; lower --n-{'real' if is_real else 'fake'}")
    return [(*pool[j], is_real) for j in rng.choice(len(pool), size=n, replace=False)]


def turing_score(kit: Path, answers: Sequence[Path], out: Path | None = None) -> TuringResult:
    """Score filled answer forms against KIT/key.json; write the report into `out` (default KIT/score)."""
    kit = Path(kit)
    key_path = kit / "key.json"
    if not key_path.is_file():
        raise InputError(f"{key_path}: not found; pass the directory `retinalogos evaluate turing-kit` wrote (it holds key.json)")
    if not answers:
        raise InputError("give at least one --answers CSV")
    key = json.loads(key_path.read_text())["cases"]
    out = Path(out) if out else kit / "score"
    names = [Path(a).stem for a in answers]
    if len(set(names)) != len(names):
        names = [str(a) for a in answers]
    graders = {name: _read_form(Path(a), key) for name, a in zip(names, answers)}

    per_grader, pooled = {}, []
    for name, rows in graders.items():
        per_grader[name] = _rates(rows, key)
        pooled += rows
    if not pooled:
        raise InputError(f"no case has a judgement in {', '.join(map(str, answers))}; fill the 'judgement' column with real/synthetic")
    total = _rates(pooled, key)
    structures = {s: {origin: _mean([r[s] for r in pooled if key[r["case"]]["real"] == (origin == "real") and r[s] is not None])
                      for origin in ("real", "synthetic")} for s in STRUCTURES}
    result = TuringResult(out, total["synthetic judged real %"], total["accuracy %"], per_grader, structures, len(pooled))
    _report(result, total, len(graders))
    return result


def _report(result: TuringResult, total: dict, graders: int) -> None:
    summary = {"synthetic judged real %": result.synthetic_judged_real, "grader accuracy %": result.accuracy,
               "answers": result.answered, "graders": graders}
    per_grader = Table("Per grader", ["grader", *total],
                       [[g, *v.values()] for g, v in result.per_grader.items()] + [["all", *total.values()]])
    ratings = Table("Realism ratings (1-5, mean)", ["structure", "real", "synthetic"],
                    [[s, v["real"], v["synthetic"]] for s, v in result.structures.items()])
    origins = ("real", "synthetic")
    plot = bar_plot("Realism by structure", list(STRUCTURES), {o: [result.structures[s][o] for s in STRUCTURES] for o in origins},
                    "mean rating (1-5)")
    write_report(Report("turing", "Turing test score", summary, [per_grader, ratings], plots=[("Realism by structure", plot)],
                        data={"per_grader": result.per_grader, "structures": result.structures}), result.out)


def _read_form(path: Path, key: dict) -> list[dict]:
    """Answered rows of one form; a bad case id, judgement or rating names the file and row."""
    if not path.is_file():
        raise InputError(f"--answers {path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("case", "judgement") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; use the answers.csv from the kit's sheet/")
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
                    raise InputError(f"{path}:{line}: {s} rating {value!r} for {case}; use 1 (clearly artificial) to 5 (fully realistic) or leave blank")
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
