"""`push_model`: a training RUN_DIR -> a Hub model repo (diffusers pipeline at the root, LoRA, gallery, model card).

Only what a user needs is copied: `pipeline/` (weights + configs), `lora/pytorch_lora_weights.safetensors`, the
validation images (metadata stripped) and the recipe. `checkpoints/`, optimizer/scheduler/RNG state and anything
else in the run directory are never staged, so they can never be uploaded. With `checkpoints=True` each kept
checkpoint's publishable weights (never its optimizer state) also become branch `step-NNNNNN` (`hub/checkpoints.py`),
pushed before `main`, whose card lists them.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import SHIPPED, stage
from ..errors import InputError
from ..licenses import run_license
from .checkpoints import Revision, published, revision_snippet, revisions, stage_revision
from .metadata import strip_metadata
from .upload import check_reachable, check_repo_id, endpoint, hf_home_exports, upload

# run.json keys the card needs: the run, and the backbone facts the trainer records (publishing never imports training)
RUN_KEYS = (
    "backbone",
    "base_model",
    "dataset",
    "stage",
    "mode",
    "global_step",
    "pipeline_class",
    "loads_lora",
    "call_kwargs",
)
KOHYA_FILE = "pytorch_lora_weights_kohya.safetensors"
GALLERY_MAX = 8  # the latest validation grids shown in the card
TRAINING_STATE = ("optimizer*", "scheduler.bin", "random_states*", "scaler.pt", "*.ckpt", "checkpoint-*", "ema*.bin")
PROMPT = (
    "A colour fundus photograph of the left eye. The optic disc is pink with a clear margin; the vessels are "
    "evenly distributed; scattered microaneurysms and haemorrhages: moderate non-proliferative diabetic retinopathy."
)


@dataclass
class ModelPushResult:
    local_dir: Path
    files: list[str]  # paths in the repo
    url: str | None
    revisions: list[str] = field(default_factory=list)  # branches step-NNNNNN staged (--checkpoints)
    sent: list[str] = field(default_factory=list)  # the revisions uploaded by this call (the others had landed)


def license_text(lic, backbone: str) -> str:
    """LICENSE.md of a model repo: what the weights inherit, component by component and source by source."""
    lines = [
        "# Licence terms of these weights",
        "",
        f"These weights were trained from the {backbone} base model on the data listed below; every term applies.",
        "" if lic.commercial else "\n**Not for commercial use**: at least one of the terms below does not allow it.\n",
        "| part | licence | commercial use | link |",
        "|---|---|---|---|",
        *(f"| {t.what} | {t.license} | {'yes' if t.commercial else 'no'} | {t.link} |" for t in lic.terms),
        "",
        "Medical images and labels: not for clinical diagnosis; do not attempt to re-identify anyone.",
    ]
    return "\n".join(lines) + "\n"


def read_run(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    for name in ("run.json", "config.yaml"):
        if not (run_dir / name).is_file():
            raise InputError(f"{run_dir}: no {name}; pass a finished training RUN_DIR (the train recipe's output_dir)")
    run = json.loads((run_dir / "run.json").read_text())
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise InputError(
            f"{run_dir / 'run.json'}: missing key(s) {', '.join(missing)}",
            hint="a run exported by an older version: re-export it with `retinalogos train --resume latest`",
        )
    if (
        not (run_dir / "pipeline" / "model_index.json").is_file()
        and not (run_dir / "lora" / "pytorch_lora_weights.safetensors").is_file()
    ):
        raise InputError(
            f"{run_dir}: neither pipeline/model_index.json nor lora/pytorch_lora_weights.safetensors; the run was not exported"
        )
    return run


def _is_hub_id(ref: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if ref.startswith("tiny:") or ref.count("/") != 1 or Path(ref).exists():
        return False
    try:
        validate_repo_id(ref)
        return True
    except HFValidationError:
        return False


def _public(ref) -> str:
    """A model/dataset reference as published: Hub ids and tiny:<name> as they are, local paths by name only."""
    ref = str(ref)
    return ref if _is_hub_id(ref) or ref.startswith("tiny:") else f"{Path(ref).name} (local)"


def _public_recipe(text: str) -> dict:
    """The resolved recipe with the training machine's paths reduced to names (they mean nothing to a reader)."""
    recipe = yaml.safe_load(text) or {}
    for section, key in ((None, "output_dir"), ("model", "base_model"), ("data", "dataset"), ("data", "cache_dir")):
        holder = recipe if section is None else recipe.get(section)
        if isinstance(holder, dict) and holder.get(key) is not None:
            holder[key] = _public(holder[key])
    return recipe


def _staging_dir(out: Path, run_dir: Path) -> Path:
    """`out`, emptied for a fresh staging: refused when it holds the run or files this command did not stage."""
    if out.resolve() == run_dir.resolve() or out.resolve() in run_dir.resolve().parents:
        raise InputError(f"--local-dir {out} holds the run directory {run_dir}; choose a new folder")
    if out.exists() and any(out.iterdir()) and not (out / "training_config.yaml").is_file():
        raise InputError(
            f"--local-dir {out} is not empty and was not staged by push-model; choose a new or empty folder"
        )
    if out.exists():
        shutil.rmtree(out)  # the staged repo is exactly what this run publishes, nothing left from an earlier run
    out.mkdir(parents=True)
    return out


def _copy_pipeline(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in TRAINING_STATE):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)


def usage_snippet(repo_id: str, run: dict, has_pipeline: bool, call_kwargs: dict) -> str:
    res = int(run.get("resolution") or 512)
    extra = "".join(f"    {k}={v!r},\n" for k, v in call_kwargs.items())
    load = f'pipe = DiffusionPipeline.from_pretrained("{repo_id}")\n'
    if not has_pipeline:  # LoRA-only repo: the base pipeline plus these weights
        load = f'pipe = DiffusionPipeline.from_pretrained("{run["base_model"]}")\npipe.load_lora_weights("{repo_id}")\n'
    return (
        "import torch\nfrom diffusers import DiffusionPipeline\n\n" + load + "image = pipe(\n"
        f"    prompt={PROMPT!r},\n"
        f"    height={res},\n    width={res},\n    num_inference_steps=50,\n    guidance_scale=4.0,\n"
        + extra
        + "    generator=torch.Generator().manual_seed(0),\n).images[0]\n"
        'image.save("fundus.png")'
    )


def _evaluation(run_dir: Path) -> dict | None:
    path = run_dir / "eval" / "report.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    summary = {
        k: (round(v, 4) if isinstance(v, float) else v)
        for k, v in (report.get("summary") or {}).items()
        if isinstance(v, (int, float, str, bool))
    }
    return {
        "title": report.get("title") or report.get("kind") or "",
        "summary": summary,
        "tables": report.get("tables") or [],
    }


def push_model(
    run_dir: Path,
    repo_id: str,
    *,
    local_dir: Path | None = None,
    private: bool = False,
    token: str | None = None,
    checkpoints: bool = False,
) -> ModelPushResult:
    """Stage RUN_DIR as a Hub model repo (`local_dir`, or a cache folder) and, without `local_dir`, upload it.

    `checkpoints`: every kept checkpoint also as branch `step-NNNNNN` (staged under `local_dir/.revisions/`); only
    the revisions not yet on the Hub are sent, and `main` goes last, so a failed push never lists a missing one."""
    from huggingface_hub import ModelCard, ModelCardData

    check_repo_id(repo_id)
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    revs: list[Revision] = []
    if checkpoints:  # every checkpoint checked before any network call or staging
        lora_file = "pytorch_lora_weights.safetensors"
        has_lora = (run_dir / "lora" / lora_file).is_file()
        revs = revisions(
            run_dir, (run_dir / "pipeline" / "model_index.json").is_file(), lora_file if has_lora else None
        )
    if local_dir is None:
        check_reachable()
    out = _staging_dir(
        Path(local_dir) if local_dir is not None else hf_home_exports() / "models" / repo_id.replace("/", "--"), run_dir
    )

    # 1. Weights: the pipeline at the root (from_pretrained(repo_id) works), the LoRA beside it.
    has_pipeline = (run_dir / "pipeline" / "model_index.json").is_file()
    if has_pipeline:
        _copy_pipeline(run_dir / "pipeline", out)
    lora = run_dir / "lora" / "pytorch_lora_weights.safetensors"
    lora_path = None
    if lora.is_file():
        lora_path = "lora/pytorch_lora_weights.safetensors" if has_pipeline else "pytorch_lora_weights.safetensors"
        (out / lora_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lora, out / lora_path)
    kohya = run_dir / "lora" / KOHYA_FILE  # the same LoRA in kohya-ss / ComfyUI keys (train/export.py writes it)
    kohya_path = None
    if lora_path is not None and kohya.is_file():
        kohya_path = str(Path(lora_path).with_name(KOHYA_FILE))
        shutil.copyfile(kohya, out / kohya_path)

    # 2. Gallery (metadata stripped) and the recipe.
    gallery = []
    pngs = sorted((run_dir / "validation").glob("step-*.png"))
    for png in [p for p in pngs if p in pngs[-GALLERY_MAX:] or f"gallery/{p.name}" in {r.image for r in revs}]:
        (out / "gallery").mkdir(exist_ok=True)
        (out / "gallery" / png.name).write_bytes(strip_metadata(png.read_bytes()))
        gallery.append(f"gallery/{png.name}")
    recipe = yaml.safe_dump(_public_recipe((run_dir / "config.yaml").read_text()), sort_keys=False).strip()
    (out / "training_config.yaml").write_text(recipe + "\n")

    # 3. The card, and LICENSE.md: the terms of every base component and every training source
    evaluation = _evaluation(run_dir)
    lic = run_license(run)
    (out / "LICENSE.md").write_text(license_text(lic, run["backbone"]))
    data = ModelCardData(
        library_name="diffusers",
        pipeline_tag="text-to-image",
        license=lic.license,
        tags=[
            "medical",
            "ophthalmology",
            "fundus",
            "retina",
            "retinalogos",
            "text-to-image",
            "diffusers",
            run["backbone"],
            *(["lora"] if run["mode"] == "lora" else []),
        ],
        **({"base_model": run["base_model"]} if _is_hub_id(run["base_model"]) else {}),
        **({"datasets": [run["dataset"]]} if _is_hub_id(str(run["dataset"])) else {}),
        **({"license_name": lic.license_name, "license_link": "LICENSE.md"} if lic.license_name else {}),
    )
    final_loss = run.get("final_loss")
    shown = {k: _public(run[k]) for k in ("base_model", "dataset", "recipe") if k in run}  # no local paths published
    card = ModelCard.from_template(
        data,
        template_path=SHIPPED / "model_cards" / "model_card.md.j2",
        title=f"RetinaLogos {run['backbone']} {run['stage']} ({run['mode']})",
        run={**run, **shown},
        pipeline_class=run["pipeline_class"],
        final_loss=f"{final_loss:.4f}" if isinstance(final_loss, float) else final_loss,
        snippet=usage_snippet(repo_id, {**run, **shown}, has_pipeline, run["call_kwargs"]),
        has_pipeline=has_pipeline,
        has_lora=lora_path is not None,
        lora_path=lora_path,
        kohya_path=kohya_path,
        loads_lora=run["loads_lora"],
        gallery=gallery,
        revisions=revs,
        revision_snippet=revision_snippet(
            repo_id, revs[0].name, has_pipeline, shown.get("base_model", run["base_model"])
        )
        if revs
        else None,
        evaluation=evaluation,
        recipe=recipe,
        licence=lic,
    )
    card.save(out / "README.md")
    config = {"repo_id": repo_id, "private": private, **({"revisions": [r.name for r in revs]} if revs else {})}
    stage.start("push-model", out, config, run=run_dir).finish(
        public=True, global_step=run["global_step"], gallery=len(gallery)
    )  # names and fingerprints, no local paths
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    # 4. The checkpoints' revisions (staged beside main, in a dot folder no upload of main sends), then main.
    landed = published(repo_id, [r.name for r in revs], token) if revs and local_dir is None else set()
    staged = {
        r.name: stage_revision(run_dir, r, out, out / ".revisions" / r.name, repo_id, endpoint(), lora_path)
        for r in revs
        if r.name not in landed
    }
    url = None
    if local_dir is None:
        for name, folder in staged.items():
            upload(folder, repo_id, repo_type="model", private=private, token=token, revision=name, replace=True,
                   atomic=True, message=f"Checkpoint at step {int(name.split('-')[1])}")  # fmt: skip
        url = upload(
            out,
            repo_id,
            repo_type="model",
            private=private,
            token=token,
            message=f"Upload {run['backbone']} {run['stage']} ({run['mode']}) at step {run['global_step']}",
            atomic=True,
        )
    return ModelPushResult(out, files, url, [r.name for r in revs], list(staged) if local_dir is None else [])
