"""Checkpoints on the Hub: every kept checkpoint as a loadable revision of the model repo, and the full training state
in a private repo that `retinalogos train --resume hf://ORG/NAME-state[@REVISION]` continues from.

- `revisions(run_dir, ...)` + `stage_revision(...)` (`push-model --checkpoints`): each complete
  RUN_DIR/checkpoints/checkpoint-NNNNNN becomes branch `step-NNNNNN` holding what `main` holds at that step: the
  pipeline with the checkpoint's EMA transformer (full runs) and/or its LoRA adapter, from the publishable weights the
  trainer writes beside the state (`transformer/`, `lora/`). Optimizer, scheduler, RNG and EMA-shadow files are never
  staged. A branch whose commit landed (it holds `retinalogos.json`, committed with the weights) is not sent again.
- `push_state(...)` (`push-state`): the checkpoint's resumable files, hard-linked into a staging folder, as one
  commit on `main` of a private repo plus a branch `step-NNNNNN` at that commit. A public repo is refused unless asked.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import stage
from ..errors import InputError
from .metadata import strip_metadata

STATE_FILE = "trainer_state.json"  # the trainer writes it last: a checkpoint without it was killed mid-save
CKPT = re.compile(r"checkpoint-(\d+)")
PUBLISHED = ("transformer", "lora")  # a checkpoint's publishable weights (train/trainer.py `_save_weights`)
NOTE = (
    "> **Revision `{name}`**: the checkpoint at training step {step} (loss {loss}) of [`{repo}`]({endpoint}/{repo}). "
    "The final model is on `main`; the card below describes the whole run.\n"
)


@dataclass
class Revision:
    name: str  # the branch, step-NNNNNN
    step: int
    loss: float | None
    path: Path  # RUN_DIR/checkpoints/checkpoint-NNNNNN
    image: str | None  # the validation grid of this step in the repo (gallery/step-NNNNNN.png), if one was written


def read_state(ckpt: Path) -> dict:
    if not (ckpt / STATE_FILE).is_file():
        raise InputError(
            f"{ckpt}: no {STATE_FILE}, so the checkpoint is incomplete (killed mid-save)",
            hint="delete that folder, or let the run rewrite it with `retinalogos train --recipe R --resume latest`",
        )
    return json.loads((ckpt / STATE_FILE).read_text())


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and CKPT.fullmatch(p.name)] if root.is_dir() else []
    return sorted(found, key=lambda p: int(CKPT.fullmatch(p.name).group(1)))  # type: ignore[union-attr]


def revisions(run_dir: Path, has_pipeline: bool, lora_file: str | None) -> list[Revision]:
    """Every kept checkpoint as a revision; a checkpoint that cannot be published is named with the fix."""
    run_dir = Path(run_dir)
    found = checkpoint_dirs(run_dir)
    if not found:
        raise InputError(
            f"{run_dir / 'checkpoints'}: no checkpoint-NNNNNN folders to publish; push without --checkpoints"
        )
    out = []
    for ckpt in found:
        state = read_state(ckpt)
        needs = (["transformer/config.json"] if has_pipeline else []) + ([f"lora/{lora_file}"] if lora_file else [])
        missing = [n for n in needs if not (ckpt / n).is_file()]
        if missing:
            raise InputError(
                f"{ckpt}: no {', '.join(missing)} (the publishable weights of a checkpoint): it was saved with "
                "checkpoint.weights: false, or by an older version",
                hint="resume the run with checkpoint.weights=true so its next checkpoints carry them, or push without --checkpoints",
            )
        step = int(state["global_step"])
        png = run_dir / "validation" / f"step-{step:06d}.png"
        out.append(
            Revision(
                f"step-{step:06d}",
                step,
                state.get("last_logged_loss"),
                ckpt,
                f"gallery/{png.name}" if png.is_file() else None,
            )
        )
    return out


def _copy_tree(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    from .model import TRAINING_STATE  # one filter for what never leaves the training machine

    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.parts[0] in skip:
            continue
        if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in TRAINING_STATE):
            continue
        _place(path, dst / rel)


def _place(src: Path, dst: Path) -> None:
    """A hard link (a copy across file systems): a revision's text encoder and VAE are main's, not a second copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def stage_revision(
    run_dir: Path, rev: Revision, main: Path, out: Path, repo_id: str, endpoint: str, lora_path: str | None
) -> Path:
    """The repo folder of one revision, laid out as `main` (staged in `main`) with this checkpoint's weights."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ckpt = rev.path
    # 1. Weights: the run's pipeline with this step's transformer, and/or this step's adapter where main has one
    if (main / "model_index.json").is_file():
        _copy_tree(Path(run_dir) / "pipeline", out, skip=("transformer",))
        _copy_tree(ckpt / "transformer", out / "transformer")
    if lora_path is not None:
        for src in sorted((ckpt / "lora").glob("*.safetensors")):
            _place(src, out / Path(lora_path).with_name(src.name))
    # 2. This step's validation grid, the recipe, and main's card with a note naming the revision
    if rev.image is not None:
        (out / "gallery").mkdir()
        (out / rev.image).write_bytes(
            strip_metadata((Path(run_dir) / "validation" / Path(rev.image).name).read_bytes())
        )
    shutil.copyfile(main / "training_config.yaml", out / "training_config.yaml")
    card = (main / "README.md").read_text()
    head, sep, body = card.partition("\n---\n")  # after the YAML header
    loss = f"{rev.loss:.4f}" if isinstance(rev.loss, float) else "-"
    note = NOTE.format(name=rev.name, step=rev.step, loss=loss, repo=repo_id, endpoint=endpoint.rstrip("/"))
    (out / "README.md").write_text(head + sep + "\n" + note + body if sep else note + "\n" + card)
    stage.start("push-model", out, {"repo_id": repo_id, "revision": rev.name}, run=run_dir, checkpoint=ckpt).finish(
        public=True, global_step=rev.step
    )  # committed with the weights: its presence on the branch marks the revision complete
    return out


def published(repo_id: str, names: list[str], token: str | None) -> set[str]:
    """The revisions among `names` whose commit landed (the branch holds retinalogos.json)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    from .upload import hub_errors

    api = HfApi(token=token)
    with hub_errors(f"list the revisions of {repo_id}"):
        try:
            branches = {b.name for b in api.list_repo_refs(repo_id).branches}
        except RepositoryNotFoundError:
            return set()
        done = set()
        for name in sorted(set(names) & branches):
            if api.get_paths_info(repo_id, [stage.PROVENANCE], revision=name):
                done.add(name)
    return done


def revision_snippet(repo_id: str, rev: str, has_pipeline: bool, base_model: str) -> str:
    if has_pipeline:
        load = f'pipe = DiffusionPipeline.from_pretrained("{repo_id}", revision="{rev}")'
    else:
        load = (
            f'pipe = DiffusionPipeline.from_pretrained("{base_model}")\n'
            f'pipe.load_lora_weights("{repo_id}", revision="{rev}")'
        )
    return f"from diffusers import DiffusionPipeline\n\n{load}"


# --- the full training state ------------------------------------------------------------------------------------------


@dataclass
class StatePushResult:
    checkpoint: Path
    global_step: int
    files: list[str]
    revision: str
    url: str


def pick_checkpoint(run_dir: Path, checkpoint: str | None) -> Path:
    """The named checkpoint (a name under RUN_DIR/checkpoints or a path), or the latest complete one."""
    run_dir = Path(run_dir)
    if checkpoint is None:
        done = [p for p in checkpoint_dirs(run_dir) if (p / STATE_FILE).is_file()]
        if not done:
            raise InputError(
                f"{run_dir / 'checkpoints'}: no complete checkpoint (a checkpoint-NNNNNN with {STATE_FILE}); "
                "pass a training RUN_DIR that has saved one"
            )
        return done[-1]
    path = Path(checkpoint) if Path(checkpoint).is_dir() else run_dir / "checkpoints" / checkpoint
    if not path.is_dir():
        names = ", ".join(p.name for p in checkpoint_dirs(run_dir)) or "none"
        raise InputError(f"--checkpoint {checkpoint}: not found under {run_dir / 'checkpoints'} (there: {names})")
    read_state(path)
    return path


def _link_tree(src: Path, dst: Path) -> list[str]:
    """Hard links (a copy across file systems) of the resumable files: no second copy of gigabytes on disk."""
    shutil.rmtree(dst, ignore_errors=True)
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.parts[0] in PUBLISHED or any(p.startswith(".") for p in rel.parts):
            continue
        _place(path, dst / rel)
        files.append(str(rel))
    return files


STATE_CARD = """---
tags:
- retinalogos
- training-state
---

# Training state: {stage} {backbone} ({mode}) at step {step}

The resumable state of a retinalogos-hub run (model, optimizer, scheduler, EMA, RNGs, data position). Not a model to
load: continue the run with the recipe it was trained with (checked against `trainer_state.json`):

```bash
retinalogos train --recipe RECIPE.yaml --resume hf://{repo}@{revision}
```
"""


def push_state(
    run_dir: Path,
    repo_id: str,
    *,
    checkpoint: str | None = None,
    allow_public: bool = False,
    token: str | None = None,
) -> StatePushResult:
    """Upload one checkpoint's resumable state to a private repo: `main` = the latest push, `step-NNNNNN` = each."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    from .upload import check_reachable, check_repo_id, hf_home_exports, hub_errors, upload

    # 1. Local checks first (no network): the checkpoint is complete and records its recipe
    check_repo_id(repo_id)
    ckpt = pick_checkpoint(run_dir, checkpoint)
    state = read_state(ckpt)
    if "recipe" not in state:
        raise InputError(
            f"{ckpt / STATE_FILE}: records no recipe (written by an older version), so a resume could not be checked",
            hint="resume the run locally with --resume latest and push a checkpoint it writes",
        )
    step = int(state["global_step"])
    revision = f"step-{step:06d}"
    # 2. The target must be private unless the user insists
    check_reachable()
    api = HfApi(token=token)
    with hub_errors(f"read {repo_id}"):
        try:
            private = api.repo_info(repo_id).private
        except RepositoryNotFoundError:
            private = None  # created private below
    if private is False and not allow_public:
        raise InputError(
            f"--repo-id {repo_id} is a public repo: training state (optimizer, RNG and data order) belongs in a private one",
            hint=f"make it private (`hf repos settings {repo_id} --private`), use a new repo id, or pass --allow-public",
        )
    # 3. Stage (hard links) and commit once to main, then the step's branch at that commit
    out = hf_home_exports() / "states" / repo_id.replace("/", "--")
    files = _link_tree(ckpt, out)
    r = state["recipe"]
    (out / "README.md").write_text(
        STATE_CARD.format(
            stage=r["stage"], backbone=r["model"]["backbone"], mode=r["model"]["mode"], step=step, repo=repo_id,
            revision=revision,
        )
    )  # fmt: skip
    url = upload(
        out,
        repo_id,
        repo_type="model",
        private=True,
        token=token,
        message=f"Training state at step {step}",
        replace=True,
        atomic=True,
    )
    with hub_errors(f"create branch {revision} of {repo_id}"):
        sha = api.repo_info(repo_id).sha
        api.create_branch(repo_id, branch=revision, revision=sha, exist_ok=True)
    return StatePushResult(ckpt, step, sorted([*files, "README.md"]), revision, url)
