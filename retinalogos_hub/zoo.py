"""The model zoo as one manifest (`zoo.yaml`): list it, build its entries (run or print their recipes), publish it.

`publish` pushes every entry's repo with its card (trained runs through `push_model`, the converted official weights
as their folder), creates or updates one Hub Collection holding them, and pushes a zoo card whose leaderboard is read
from each entry's evaluation reports (`evaluate` writes them; nothing here recomputes a metric).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import SHIPPED
from .config import load_config
from .errors import ConfigError, InputError
from .licenses import license_label, run_license

ZOO_TEMPLATE = SHIPPED / "model_cards" / "zoo_card.md.j2"
REFERENCE_ROW = "real vs real (halves)"  # the FID report's floor row: not a model


@dataclass(frozen=True)
class Official:
    checkpoint: str  # the authors' folder (consolidated[_ema].00-of-01.*, model_args.pth)
    text_encoder: str | None  # None: the convert recipe's
    vae: str | None


@dataclass(frozen=True)
class Entry:
    name: str
    repo_id: str
    kind: str  # trained | official
    backbone: str
    stage: str  # step1 | step3 | official
    mode: str  # full | lora
    recipe: str | None  # trained: the step recipe; official: the convert recipe (None: the shipped one)
    run_dir: str  # trained: the recipe's output_dir; official: the converted folder
    base_model: str
    dataset: str | None
    license: str | None  # official: the authors' licence; trained: None, derived from the run (base model + data)
    eval_reports: list[str]  # report.json paths (evaluate --out ...)
    reported: dict | None  # numbers from a paper, shown as such: {metric: {dataset: value}}
    official: Official | None


@dataclass(frozen=True)
class CollectionSpec:
    namespace: str
    title: str
    description: str


@dataclass(frozen=True)
class ZooConfig:
    collection: CollectionSpec
    card_repo: str  # the repo whose README is the zoo card
    entries: list[Entry]


@dataclass
class EntryStatus:
    entry: Entry
    built: bool
    command: list[str] | None  # build: the command run (or printed)


@dataclass
class PublishResult:
    urls: dict[str, str]  # entry name -> repo url
    collection: str  # slug
    card_url: str
    leaderboard: list[list]


def load_zoo(path: Path | str = "zoo.yaml", overrides: list[str] | tuple = ()) -> ZooConfig:
    zoo = load_config(ZooConfig, path, overrides)
    names = [e.name for e in zoo.entries]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: entry names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    for e in zoo.entries:
        if e.kind not in ("trained", "official"):
            raise ConfigError(f"{path}: entry {e.name!r}: kind must be trained or official, got {e.kind!r}")
        if e.kind == "official" and e.official is None:
            raise ConfigError(f"{path}: entry {e.name!r} is official but has no `official.checkpoint`")
        if e.kind == "official" and not e.license:
            raise ConfigError(f"{path}: entry {e.name!r} is official: give the authors' licence in `license`")
        if e.kind == "trained" and e.license:
            raise ConfigError(
                f"{path}: entry {e.name!r}: a trained model's licence follows its base model and training data; "
                "set `license: null` (it is derived from the run)"
            )
        if e.kind == "trained" and not e.recipe:
            raise ConfigError(f"{path}: entry {e.name!r} is trained but names no recipe")
    return zoo


def _root(path: Path | str) -> Path:
    return Path(path).resolve().parent  # zoo.yaml paths are relative to the manifest


def _p(root: Path, rel: str) -> Path:
    return Path(rel) if Path(rel).is_absolute() else root / rel


def is_built(entry: Entry, root: Path) -> bool:
    run = _p(root, entry.run_dir)
    if entry.kind == "official":
        return (run / "model_index.json").is_file() and (run / "conversion.json").is_file()
    return (run / "run.json").is_file() and (
        (run / "pipeline" / "model_index.json").is_file()
        or (run / "lora" / "pytorch_lora_weights.safetensors").is_file()
    )


def launch_command(entry: Entry, root: Path) -> list[str]:
    """The entry's build command: a trained recipe's own first-line launch command (accelerate launch ...) with the
    dataset and output_dir of the entry; the official entry's convert-official call."""
    if entry.kind == "official":
        assert entry.official is not None
        cmd = ["retinalogos", "convert-official", str(_p(root, entry.official.checkpoint)), "--out"]
        cmd += [str(_p(root, entry.run_dir)), "--repo-id", entry.repo_id]
        for flag, value in (("--text-encoder", entry.official.text_encoder), ("--vae", entry.official.vae)):
            cmd += [flag, value] if value else []
        return cmd + (["--recipe", str(_p(root, entry.recipe))] if entry.recipe else [])
    recipe = _p(root, entry.recipe or "")
    if not recipe.is_file():
        raise InputError(f"zoo entry {entry.name!r}: recipe not found: {recipe}")
    first = recipe.read_text().splitlines()[0]
    if not first.startswith("# ") or " train " not in f"{first} ":
        raise InputError(f"{recipe}: the first line is not its launch command (`# accelerate launch ... train ...`)")
    cmd = shlex.split(first[2:])
    cmd = [str(recipe) if c.endswith(entry.recipe or "\0") else c for c in cmd]  # the recipe as the manifest found it
    cmd = [c for c in cmd if not c.startswith(("data.dataset=", "output_dir="))]
    if entry.dataset:
        cmd.append(f"data.dataset={entry.dataset}")
    return cmd + [f"output_dir={_p(root, entry.run_dir)}"]


def statuses(zoo: ZooConfig, path: Path | str) -> list[EntryStatus]:
    root = _root(path)
    return [EntryStatus(e, is_built(e, root), launch_command(e, root)) for e in zoo.entries]


def build(path: Path | str = "zoo.yaml", *, only: list[str] | tuple = (), dry_run: bool = False) -> list[EntryStatus]:
    """Run each unbuilt entry's command (a finished one is skipped); `dry_run` only returns the commands."""
    zoo = load_zoo(path)
    unknown = sorted(set(only) - {e.name for e in zoo.entries})
    if unknown:
        raise InputError(f"zoo: no entry named {', '.join(unknown)}; known: {', '.join(e.name for e in zoo.entries)}")
    out = [s for s in statuses(zoo, path) if not only or s.entry.name in only]
    if dry_run:
        return out
    for s in out:
        if s.built or s.command is None:
            continue
        cmd = s.command
        if cmd[0] == "retinalogos":  # the same interpreter, whatever is on PATH
            cmd = [sys.executable, "-m", "retinalogos_hub.cli", *cmd[1:]]
        done = subprocess.run(cmd, cwd=_root(path))
        if done.returncode != 0:
            raise InputError(f"zoo build: {s.entry.name} failed (exit {done.returncode}): {shlex.join(s.command)}")
        s.built = is_built(s.entry, _root(path))
    return out


# ---------------------------------------------------------------------------------------------------- leaderboard

LEADERBOARD_COLUMNS = ["model", "dataset", "FID", "KID x 1000", "precision", "recall", "density", "coverage", "source"]


def _num(v) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ("-" if v is None else str(v))


def leaderboard(zoo: ZooConfig, root: Path) -> tuple[list[list], list[list]]:
    """(rows by model and real dataset, other metrics as [model, report, metric, value]) from each entry's reports."""
    rows, other = [], []
    for e in zoo.entries:
        for rel in e.eval_reports:
            path = _p(root, rel)
            if not path.is_file():
                raise InputError(f"zoo entry {e.name!r}: evaluation report not found: {path}")
            report = json.loads(path.read_text())
            if report.get("kind") == "fid" and isinstance(report.get("fid"), dict):
                prdc = report.get("prdc") or {}
                for fake, per in report["fid"].items():
                    if fake == REFERENCE_ROW:
                        continue
                    for real, fid in per.items():
                        kid = (report.get("kid") or {}).get(fake, {}).get(real)
                        p = prdc.get(fake, {}).get(real, {})
                        kid_s = f"{1000 * kid[0]:.2f} ± {1000 * kid[1]:.2f}" if isinstance(kid, list) else "-"
                        rows.append(
                            [e.name, real, _num(fid), kid_s]
                            + [_num(p.get(k)) for k in ("precision", "recall", "density", "coverage")]
                            + [f"measured ({fake})"]
                        )
            else:
                for k, v in (report.get("summary") or {}).items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        other.append([e.name, report.get("title") or report.get("kind", ""), k, _num(v)])
        for metric, per in (e.reported or {}).items():
            for dataset, value in per.items():
                if metric == "FID":
                    rows.append([e.name, dataset, _num(value), "-", "-", "-", "-", "-", "reported (paper)"])
                else:
                    other.append([e.name, "reported (paper)", f"{metric} {dataset}", _num(value)])
    return rows, other


# ---------------------------------------------------------------------------------------------------- publish


def publish(path: Path | str = "zoo.yaml", *, token: str | None = None, private: bool = False) -> PublishResult:
    """Push every built entry, the collection and the zoo card. Unbuilt entries are refused, naming them."""
    from huggingface_hub import HfApi

    from .convert_official import write_card
    from .hub.model import push_model
    from .hub.upload import check_reachable, check_repo_id, hub_errors, upload

    zoo = load_zoo(path)
    root = _root(path)
    for e in zoo.entries:
        check_repo_id(e.repo_id)
    check_repo_id(zoo.card_repo)
    missing = [e.name for e in zoo.entries if not is_built(e, root)]
    if missing:
        raise InputError(f"zoo: not built yet: {', '.join(missing)}", hint="run `retinalogos zoo build` first")
    rows, other = leaderboard(zoo, root)  # a missing report fails before anything is pushed
    check_reachable()
    urls = {}
    for e in zoo.entries:
        run = _p(root, e.run_dir)
        if e.kind == "official":
            write_card(run, e.repo_id)  # the snippet names the published id
            urls[e.name] = upload(run, e.repo_id, repo_type="model", private=private, token=token,
                                  message=f"Upload {e.name} (converted official weights)")  # fmt: skip
        else:
            urls[e.name] = push_model(run, e.repo_id, private=private, token=token).url or ""
    api = HfApi(token=token)
    spec = zoo.collection
    with hub_errors(f"create collection {spec.namespace}/{spec.title}"):
        coll = api.create_collection(
            spec.title, namespace=spec.namespace, description=spec.description, private=private, exists_ok=True
        )
        api.update_collection_metadata(coll.slug, description=spec.description)
        for e in [*zoo.entries]:
            note = f"{e.backbone} {e.stage} ({e.mode})"
            api.add_collection_item(coll.slug, e.repo_id, "model", note=note, exists_ok=True)
    card_dir = _staged_card(zoo, root, rows, other, coll.slug)
    card_url = upload(card_dir, zoo.card_repo, repo_type="model", private=private, token=token,
                      message="Update the zoo card")  # fmt: skip
    return PublishResult(urls, coll.slug, card_url, rows)


def entry_license(e: Entry, root: Path) -> str:
    """An entry's licence: the one zoo.yaml states (the official weights), else what its run's base model and
    training sources give (`licenses.run_license`)."""
    if e.license:
        return e.license
    run = _p(root, e.run_dir) / "run.json"
    if not run.is_file():
        return "derived at build (base model + training data)"
    return license_label(run_license(json.loads(run.read_text())))


def _staged_card(zoo: ZooConfig, root: Path, rows: list[list], other: list[list], slug: str) -> Path:
    from huggingface_hub import ModelCard, ModelCardData

    from .models import cache_root

    out = cache_root() / "exports" / "zoo" / zoo.card_repo.replace("/", "--")
    out.mkdir(parents=True, exist_ok=True)
    data = ModelCardData(
        license="other",
        license_name="per-model",
        license_link="LICENSE.md",
        tags=["medical", "ophthalmology", "fundus", "retinalogos", "text-to-image", "model-zoo"],
        pipeline_tag="text-to-image",
    )
    licences = {e.name: entry_license(e, root) for e in zoo.entries}
    card = ModelCard.from_template(
        data,
        template_path=ZOO_TEMPLATE,
        zoo=zoo,
        licences=licences,
        collection=slug,
        columns=LEADERBOARD_COLUMNS,
        rows=rows,
        other=other,
    )
    card.save(out / "README.md")
    (out / "LICENSE.md").write_text(
        "Each model in this zoo carries its own licence (see its card):\n\n"
        + "".join(f"- `{e.repo_id}`: {licences[e.name]} (base model `{e.base_model}`)\n" for e in zoo.entries)
    )
    public = ("name", "repo_id", "backbone", "stage", "mode", "base_model", "dataset", "license")  # no local paths
    entries = [{**{k: getattr(e, k) for k in public}, "license": licences[e.name]} for e in zoo.entries]
    (out / "zoo.json").write_text(json.dumps({"collection": slug, "entries": entries}, indent=1))
    return out
