"""Training (issue 6): tiny CPU runs of every backbone, the 1 -> 2 -> 3 chain, exports, LoRA, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file
from typer.testing import CliRunner

from retinalogos_hub import schema
from retinalogos_hub.cli._app import app
from retinalogos_hub.config import load_config
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.errors import ConfigError, InputError, OfflineError
from retinalogos_hub.pipelines import call_kwargs
from retinalogos_hub.train import PipelineConfig, TrainConfig, backbones, run
from retinalogos_hub.train.data import _to_pixels, buckets, nearest_bucket

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
TINY = RECIPES / "tiny"
BACKBONES = ("lumina-next", "lumina2", "sana")
QUIET = ["train.log_every=1000"]


def make_captioned(out: Path, n: int = 6, features=schema.CAPTIONED) -> Path:
    """Captioned rows with procedural fundus images of two aspect ratios and template captions."""
    from retinalogos_hub.caption.template import TemplateCaptioner

    cap, rows = TemplateCaptioner(seed=0), []
    for i in range(n):
        grade, eye = i % 5, ("left", "right")[i % 2]
        w, h = (48, 32) if i % 2 else (40, 40)
        row = {k: None for k in schema.CAPTIONED} | {
            "image": fundus_image(w, h, seed=i, dr_grade=grade, eye=eye),
            "id": f"idrid/{i}",
            "source": "idrid",
            "source_id": str(i),
            "eye": eye,
            "dr_grade": grade,
            "diseases": [],
            "width": w,
            "height": h,
            "split": "train",
            "official_split": None,  # schema.CURATED column (issue 15)
            "license": "CC-BY-4.0",
            "redistributable": True,
            "caption_issues": [],
        }
        row["caption"], row["caption_fields"] = cap.caption(row)
        rows.append({k: row[k] for k in features})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(out))
    return out


def weights(pipeline_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(pipeline_dir / "transformer" / "diffusion_pytorch_model.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- recipes and buckets --------------------------------------------------------------------------------------------


def train_killed_after(recipe: Path, overrides: list[str], out: Path, *, step: int) -> Path:
    """`retinalogos train` in a subprocess, SIGKILLed once checkpoint `step` is complete (mid-training, before the
    export); returns its output_dir."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "retinalogos_hub.cli",
            "train",
            "--recipe",
            str(recipe),
            *overrides,
            f"output_dir={out}",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = out / "checkpoints" / f"checkpoint-{step:06d}" / "trainer_state.json"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (out / "run.json").exists(), "the run was not killed mid-training"
    return out


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_shipped_training_yaml_loads(path):
    text = path.read_text()
    if path.parent.name == "accelerate":
        assert text.startswith("# ") and "accelerate launch --config_file" in text.splitlines()[0]
        assert yaml.safe_load(text)["distributed_type"]
    elif path.name == "pipeline.yaml":
        cfg = load_config(PipelineConfig, path)
        assert all((path.parent / getattr(cfg.steps, s)).is_file() for s in ("step1", "step2", "step3"))
    elif path.name.startswith(("step1_", "step3_")):
        cfg = load_config(TrainConfig, path)
        assert text.startswith("# retinalogos train") or text.startswith("# accelerate launch")
        assert "Override example:" in text.splitlines()[1]
        assert path.parent.name in (cfg.model.backbone, "demo") and cfg.stage == path.name[:5]
        assert (cfg.lora is not None) == (cfg.model.mode == "lora") and (cfg.ema is None) == (cfg.model.mode == "lora")
        assert cfg.data.require_purify_keep == (cfg.stage == "step3")


def test_buckets_are_an_area_budget():
    table = buckets(512, 16, 2.0)
    assert (624, 416) in table and (512, 512) in table  # the paper's 3:2 EyePACS bucket at "512"
    assert all(w * h <= 512 * 512 and w % 16 == 0 and h % 16 == 0 for w, h in table)
    assert table[nearest_bucket(4752, 3168, table)] == (624, 416)
    assert table[nearest_bucket(3168, 4752, table)] == (416, 624)
    px = _to_pixels(fundus_image(90, 60), (48, 32))
    assert px.shape == (3, 32, 48) and px.min() >= -1 and px.max() <= 1


@pytest.mark.slow
def test_cache_parts_are_shared_by_processes_and_match_one_process(tmp_path, monkeypatch):
    from retinalogos_hub.train import data as D

    monkeypatch.setattr(D, "CACHE_PART_ROWS", 2)  # 6 rows -> 3 parts
    cfg = load_config(
        TrainConfig,
        TINY / "lumina-next" / "step1_pretrain_full.yaml",
        [f"data.dataset={make_captioned(tmp_path / 'captioned')}"],
    ).data
    (rows, _), backbone = D.load_rows(cfg), backbones.get("lumina-next")
    pipe = backbone.load("tiny:lumina-next")
    single = D.build_cache(rows, pipe, backbone, cfg, 256, tmp_path / "single")

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    with pytest.raises(Stop):  # process 1 of 2 encodes its share, then would wait for process 0
        D.build_cache(rows, pipe, backbone, cfg, 256, tmp_path / "shared", rank=1, world=2, barrier=stop)
    assert sorted(p.name for p in (tmp_path / "shared" / "parts").iterdir()) == ["part-00001"]
    shared = D.build_cache(rows, pipe, backbone, cfg, 256, tmp_path / "shared", rank=0, world=2)
    assert shared["id"] == single["id"] == [f"idrid/{i}" for i in range(6)]
    assert shared["bucket"] == single["bucket"] and shared["text_shape"] == single["text_shape"]
    for a, b in zip(shared["latent"], single["latent"]):
        assert np.allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-6)
    assert not (tmp_path / "shared" / "parts").exists() and (tmp_path / "shared" / "uncond.pt").is_file()


# --- the chain, per backbone ------------------------------------------------------------------------------------------

# lumina-next: step 3 at lr 0 must export step 1's weights bit for bit; the others train a LoRA step 3 on top of step 1
CHAIN_EXTRA = {
    "lumina-next": ["step3.optim.lr=1e-8"],  # step 3 barely moves: its export must be step 1's weights
    "lumina2": ["steps.step3=step3_hires_sft_lora.yaml"],
    "sana": ["steps.step3=step3_hires_sft_lora.yaml"],
}


@pytest.fixture(scope="module")
def chains(tmp_path_factory) -> dict[str, Path]:
    """Each backbone's tiny pipeline recipe through the real CLI: backbone -> OUTPUT_DIR."""
    work = tmp_path_factory.mktemp("chains")
    data = make_captioned(work / "captioned")
    outs = {}
    for bb in BACKBONES:
        args = [
            "train",
            "--recipe",
            str(TINY / bb / "pipeline.yaml"),
            f"dataset={data}",
            f"output_dir={work / bb}",
            *CHAIN_EXTRA[bb],
        ]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output + repr(res.exception)
        assert "Training finished" in res.output
        outs[bb] = work / bb
    return outs


@pytest.mark.parametrize("bb", BACKBONES)
def test_chain_runs_step1_purify_step3(chains, bb):
    out = chains[bb]
    s1, s3 = json.loads((out / "step1" / "run.json").read_text()), json.loads((out / "step3" / "run.json").read_text())
    assert (s1["stage"], s1["global_step"], s1["train_rows"]) == ("step1", 4, 6)
    assert s3["stage"] == "step3" and s3["global_step"] == 2
    purified = datasets.load_from_disk(str(out / "step2"))
    assert s3["train_rows"] == sum(purified["purify_keep"]) and s3["dataset"] == str(out / "step2")
    assert s3["base_model"] == str(out / "step1" / "pipeline")  # step 3 starts from step 1's export
    # the model card's licence follows every source: step 3 learnt from its own rows and, through step 1, from its
    assert sum(s1["sources"].values()) == 6 and s3["base_sources"] == s1["sources"] and s1["base_sources"] is None
    assert sum(s3["sources"].values()) == s3["train_rows"]
    resolved = yaml.safe_load((out / "step3" / "config.yaml").read_text())
    assert resolved["data"]["require_purify_keep"] is True and resolved["model"]["base_model"] == s3["base_model"]
    assert (out / "step1" / "validation" / "step-000004.png").is_file()
    # every stage folder of the chain holds its provenance, and the chain's own names the steps' counts
    stages = {d: json.loads((out / d / "retinalogos.json").read_text()) for d in ("step1", "step2", "step3", ".")}
    assert [stages[d]["stage"] for d in ("step1", "step2", "step3", ".")] == ["train", "purify", "train", "chain"]
    assert stages["step1"]["counts"]["global_step"] == 4 and stages["step1"]["counts"]["distributed_type"] == "NO"
    assert stages["step3"]["config"]["data"]["require_purify_keep"] is True
    assert stages["."]["counts"]["step2_kept"] == s3["train_rows"]
    assert (
        s1["pipeline_class"]
        == {"lumina-next": "LuminaPipeline", "lumina2": "Lumina2Pipeline", "sana": "SanaPipeline"}[bb]
    )
    for step in ("step1", "step3"):
        ckpts = sorted((out / step / "checkpoints").iterdir())
        assert len(ckpts) <= 2  # checkpoint.total_limit
        assert not list((out / step).glob("pipeline/**/optimizer*"))  # never exported
    step1 = weights(out / "step1" / "pipeline")
    assert not same(step1, load_file(str(_tiny(bb) / "transformer" / "diffusion_pytorch_model.safetensors")))
    if bb == "lumina-next":  # lr 1e-8 in step 3: its export is step 1's (EMA) weights to 1e-6, so it started there
        step3, base = weights(out / "step3" / "pipeline"), weights(_tiny(bb))
        assert max((step3[k] - step1[k]).abs().max().item() for k in step1) < 1e-6
        assert max((base[k] - step1[k]).abs().max().item() for k in step1) > 1e-4
    else:
        assert (out / "step3" / "lora" / "pytorch_lora_weights.safetensors").is_file()


def _tiny(bb: str) -> Path:
    from retinalogos_hub.models import resolve

    return resolve(f"tiny:{bb}")


GENERATE = r"""
import json, sys, torch
torch.set_num_threads(1)
from diffusers import DiffusionPipeline
from retinalogos_hub.pipelines import call_kwargs
for bb, pipe_dir, lora_dir in json.loads(sys.argv[1]):
    pipe = DiffusionPipeline.from_pretrained(pipe_dir)
    kw = call_kwargs(pipe)
    pipe.set_progress_bar_config(disable=True)
    def gen():
        return pipe(prompt="A colour fundus photograph of the left eye.", num_inference_steps=2, height=32, width=64,
                    generator=torch.Generator().manual_seed(0), output_type="np", **kw).images[0]
    img = gen()
    out = {"cls": type(pipe).__name__, "shape": list(img.shape), "finite": bool((img == img).all())}
    if lora_dir:
        pipe.load_lora_weights(lora_dir)
        out["lora_delta"] = float(abs(gen() - img).max())
    print("RESULT " + json.dumps(out))
"""


def generate_fresh(specs: list[tuple[str, Path, Path | None]]) -> list[dict]:
    """Load each (backbone, pipeline dir, LoRA dir or None) with DiffusionPipeline.from_pretrained in one fresh
    process (no custom code) and generate, before and after load_lora_weights."""
    arg = json.dumps([(bb, str(p), str(lora) if lora else None) for bb, p, lora in specs])
    proc = subprocess.run(
        [sys.executable, "-c", GENERATE, arg],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-30000:]
    return [json.loads(line[len("RESULT ") :]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]


@pytest.mark.slow
def test_exports_load_in_a_fresh_process_and_lora_changes_output(chains):
    specs = [("lumina-next", chains["lumina-next"] / step / "pipeline", None) for step in ("step1", "step3")]
    specs += [(bb, chains[bb] / "step1" / "pipeline", chains[bb] / "step3" / "lora") for bb in ("lumina2", "sana")]
    results = generate_fresh(specs)
    assert len(results) == len(specs)
    for (bb, _, lora), r in zip(specs, results):
        assert r["cls"] == backbones.get(bb).pipeline_cls and r["shape"] == [32, 64, 3] and r["finite"]
        if lora:
            assert r["lora_delta"] > 1e-4  # the step 3 LoRA on its step 1 base changes the image


def test_lumina_next_lora_exports_a_fused_pipeline(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=4)
    res = run(
        TINY / "lumina-next" / "step1_pretrain_lora.yaml",
        [f"data.dataset={data}", f"output_dir={tmp_path / 'run'}", *QUIET],
    )
    lora = res.lora_dir / "pytorch_lora_weights.safetensors"
    with safe_open(str(lora), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("transformer.") and "lora_" in k for k in keys)
    assert json.loads(meta["lora_adapter_metadata"])["transformer.r"] == 4
    fused, base = (
        weights(res.pipeline_dir),
        load_file(str(_tiny("lumina-next") / "transformer" / "diffusion_pytorch_model.safetensors")),
    )
    assert fused.keys() == base.keys()  # a plain LuminaNextDiT2DModel: LuminaPipeline loads it with no LoRA support
    assert any(not torch.equal(fused[k], base[k]) for k in base)
    assert not any("lora" in k for k in fused)


@pytest.mark.parametrize("bb", ["lumina-next", "lumina2"])  # our block wrapper / diffusers' own support
def test_gradient_checkpointing_gives_the_same_weights(bb, tmp_path):
    data = make_captioned(tmp_path / "captioned", n=2)
    common = [f"data.dataset={data}", "train.max_steps=2", f"data.cache_dir={tmp_path / 'cache'}", *QUIET]
    plain = run(TINY / bb / "step1_pretrain_full.yaml", [*common, f"output_dir={tmp_path / 'plain'}"])
    ckpt = run(
        TINY / bb / "step1_pretrain_full.yaml",
        [*common, f"output_dir={tmp_path / 'ckpt'}", "model.gradient_checkpointing=true"],
    )
    assert same(weights(plain.pipeline_dir), weights(ckpt.pipeline_dir))


def test_bf16_autocast_and_grad_accumulation_run(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=4)
    res = run(
        TINY / "lumina-next" / "step1_pretrain_lora.yaml",
        [
            f"data.dataset={data}",
            f"output_dir={tmp_path / 'run'}",
            "train.mixed_precision=bf16",
            "train.grad_accum=2",
            "train.max_steps=2",
            "train.timestep_sampling=logit_normal",
            *QUIET,
        ],
    )
    assert res.global_step == 2 and 0 < res.final_loss < 10
    assert json.loads((tmp_path / "run" / "run.json").read_text())["mode"] == "lora"
    # the exported (fused) pipeline samples in its default dtypes: the bf16 text encoder is not what gets saved
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(res.pipeline_dir)
    assert pipe.text_encoder.dtype == pipe.transformer.dtype == torch.float32
    assert pipe("a fundus", height=32, width=32, num_inference_steps=1, clean_caption=False).images[0].size == (32, 32)


# --- the training target points the way each sampler integrates ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("bb", BACKBONES)
def test_overfit_one_image_moves_generation_toward_it(bb, tmp_path):
    from diffusers import DiffusionPipeline

    backbone = backbones.get(bb)
    img = fundus_image(32, seed=3, dr_grade=4)
    data = tmp_path / "one"
    datasets.Dataset.from_list(
        [{"image": img, "caption": "A colour fundus photograph of the right eye."}]
    ).save_to_disk(str(data))
    # give the random tiny VAE unit-variance latents (what a real VAE's scaling factor does), so "toward the image"
    # cannot be confused with "toward zero"
    base = DiffusionPipeline.from_pretrained(_tiny(bb))
    x0 = backbone.encode_images(base, _to_pixels(img, (32, 32))[None])
    base.vae.register_to_config(scaling_factor=base.vae.config.scaling_factor / x0.std().item())
    base.save_pretrained(tmp_path / "base")
    x0 = backbone.encode_images(base, _to_pixels(img, (32, 32))[None])
    res = run(
        TINY / bb / "step1_pretrain_full.yaml",
        [
            f"model.base_model={tmp_path / 'base'}",
            f"data.dataset={data}",
            f"output_dir={tmp_path / 'run'}",
            "train.max_steps=200",
            "train.batch_size=1",
            "optim.lr=0.01",
            "data.caption_dropout=0.0",
            "ema=null",
            "checkpoint.every=1000",
            "train.log_every=20",
        ],
    )

    def error(pipe) -> float:
        pipe.set_progress_bar_config(disable=True)
        z = pipe(
            prompt="A colour fundus photograph of the right eye.",
            num_inference_steps=20,
            guidance_scale=1.0,
            height=32,
            width=32,
            output_type="latent",
            generator=torch.Generator().manual_seed(5),
            **call_kwargs(pipe),
        ).images
        return ((z - x0) ** 2).mean().item()

    before, after = error(base), error(DiffusionPipeline.from_pretrained(res.pipeline_dir))
    assert after < 0.5 * (x0**2).mean().item() and after < 0.25 * before, (before, after)
    assert res.final_loss < 1.0  # the flow loss starts near 2 (|noise - x0|^2 with unit-variance x0)


# --- resume, multi-process --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=6)
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    common = [
        f"data.dataset={data}",
        "train.max_steps=60",
        "checkpoint.every=4",
        "checkpoint.total_limit=2",
        f"data.cache_dir={tmp_path / 'cache'}",
        *QUIET,
    ]
    whole = run(recipe, [*common, f"output_dir={tmp_path / 'whole'}"])
    killed = train_killed_after(recipe, common, tmp_path / "killed", step=4)
    resumed = run(recipe, [*common, f"output_dir={killed}"], resume="latest")
    assert resumed.global_step == whole.global_step == 60
    assert same(weights(resumed.pipeline_dir), weights(whole.pipeline_dir))  # EMA export
    last = "checkpoints/checkpoint-000060/model.safetensors"
    raw = load_file(str(killed / last))
    assert same(raw, load_file(str(tmp_path / "whole" / last)))  # raw weights
    exported = weights(whole.pipeline_dir)
    assert any(not torch.equal(exported[k], raw[k]) for k in raw)  # the export holds the EMA, not the raw weights
    assert resumed.final_loss == whole.final_loss


def launch(config: str, *args: str, timeout: int = 600, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    """`accelerate launch --config_file recipes/accelerate/<config> -m retinalogos_hub.cli ARGS` on 2 CPU processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [
        str(accelerate),
        "launch",
        "--config_file",
        str(RECIPES / "accelerate" / config),
        "--main_process_port",
        str(port),
        "-m",
        "retinalogos_hub.cli",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    if popen:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, **popen)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-30000:]
    return proc


@pytest.mark.slow
def test_ddp_and_fsdp2_on_two_processes_train_the_same_weights(tmp_path):
    """The same tiny recipe under DDP and under FSDP2 (really sharded) exports the same EMA weights, not the base's."""
    data = make_captioned(tmp_path / "captioned", n=6)
    recipe = str(TINY / "lumina-next" / "step1_pretrain_full.yaml")
    common = ["train", "--recipe", recipe, f"data.dataset={data}", "train.max_steps=4", *QUIET]
    launch("cpu-2proc.yaml", *common, f"output_dir={tmp_path / 'ddp'}")
    launch("cpu-2proc-fsdp.yaml", *common, f"output_dir={tmp_path / 'fsdp'}")
    ddp, fsdp = (json.loads((tmp_path / e / "run.json").read_text()) for e in ("ddp", "fsdp"))
    assert (ddp["distributed_type"], ddp["processes"]) == ("MULTI_CPU", 2)
    assert (fsdp["distributed_type"], fsdp["fsdp_version"], fsdp["processes"]) == ("FSDP", 2, 2)
    shards = sorted(p.name for p in (tmp_path / "fsdp" / "checkpoints" / "checkpoint-000004").rglob("*.distcp"))
    assert len(shards) >= 2, shards  # one file per rank: the model state really was sharded
    a, b = weights(tmp_path / "ddp" / "pipeline"), weights(tmp_path / "fsdp" / "pipeline")
    base = weights(_tiny("lumina-next"))
    finite = [k for k in a if base[k].abs().max() < 1e10]
    assert max((a[k] - b[k]).abs().max().item() for k in finite) < 1e-5
    assert max((a[k] - base[k]).abs().max().item() for k in finite) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("bb", BACKBONES)
def test_chain_under_a_two_process_launch(tmp_path, bb):
    """Every rank learns each step's output, purify runs once, the process group outlives step 1."""
    data = make_captioned(tmp_path / "captioned", n=6)
    out = tmp_path / "chain"
    args = ["train", "--recipe", str(TINY / bb / "pipeline.yaml"), f"dataset={data}", f"output_dir={out}"]
    launch("cpu-2proc.yaml", *args, *CHAIN_EXTRA[bb])
    chain = json.loads((out / "retinalogos.json").read_text())
    assert chain["stage"] == "chain" and chain["counts"]["step3_steps"] == 2
    assert json.loads((out / "step3" / "run.json").read_text())["processes"] == 2
    rerun = launch("cpu-2proc.yaml", *args, *CHAIN_EXTRA[bb])  # finished steps are skipped
    assert "already finished" in rerun.stderr + rerun.stdout or (out / "step3" / "run.json").is_file()


@pytest.mark.slow
def test_two_process_fsdp_run_killed_and_resumed_matches_the_uninterrupted_one(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=6)
    common = [
        "train",
        "--recipe",
        str(TINY / "lumina-next" / "step1_pretrain_full.yaml"),
        f"data.dataset={data}",
        "train.max_steps=8",
        "checkpoint.every=2",
        "checkpoint.total_limit=10",
        f"data.cache_dir={tmp_path / 'cache'}",
        *QUIET,
    ]
    launch("cpu-2proc-fsdp.yaml", *common, f"output_dir={tmp_path / 'whole'}")
    killed = tmp_path / "killed"
    proc = launch(
        "cpu-2proc-fsdp.yaml",
        *common,
        f"output_dir={killed}",
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = killed / "checkpoints" / "checkpoint-000004" / "trainer_state.json"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks
    proc.wait()
    assert marker.exists() and not (killed / "run.json").exists(), "the run was not killed mid-training"
    launch("cpu-2proc-fsdp.yaml", *common, f"output_dir={killed}", "--resume", "latest")
    assert json.loads((killed / "run.json").read_text())["global_step"] == 8
    assert same(weights(killed / "pipeline"), weights(tmp_path / "whole" / "pipeline"))  # per-rank noise and EMA


def test_a_run_that_learns_nothing_stops_with_one_line(tmp_path):
    from retinalogos_hub.errors import TrainingError

    data = make_captioned(tmp_path / "captioned", n=2)
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    with pytest.raises(TrainingError, match="EMA has not moved|equal the base model"):
        run(
            recipe,
            [f"data.dataset={data}", f"output_dir={tmp_path / 'run'}", "train.max_steps=2", "optim.lr=0.0", *QUIET],
        )


def test_tiny_lumina_next_is_finite_and_a_nan_base_model_is_refused(tmp_path):
    """diffusers leaves LuminaNextDiT2DModel.pad_token uninitialised: garbage, at times NaN, made runs unequal."""
    from diffusers import LuminaNextDiT2DModel

    from retinalogos_hub.errors import TrainingError
    from retinalogos_hub.tiny.pipelines import build_lumina_next

    build_lumina_next(tmp_path / "base")
    transformer = LuminaNextDiT2DModel.from_pretrained(tmp_path / "base" / "transformer")
    assert all(torch.isfinite(p).all() for p in transformer.parameters())
    assert 0 < transformer.pad_token.std() < 0.1
    with torch.no_grad():
        transformer.pad_token.fill_(float("nan"))
    transformer.save_pretrained(tmp_path / "base" / "transformer")
    data = make_captioned(tmp_path / "captioned", n=2)
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    with pytest.raises(TrainingError, match=r"base\S*: transformer weights pad_token hold NaN or inf"):
        run(
            recipe,
            [f"data.dataset={data}", f"model.base_model={tmp_path / 'base'}", f"output_dir={tmp_path / 'r'}", *QUIET],
        )


# --- bad input -------------------------------------------------------------------------------------------------------


def test_bad_input_fails_clearly(tmp_path):
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    data = make_captioned(tmp_path / "captioned", n=2)
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'train.max_stpes' \(did you mean 'train.max_steps'\?\); valid keys: .*train.seed",
    ):
        run(recipe, ["train.max_stpes=3"])
    with pytest.raises(ConfigError, match="model.mode is 'lora' but the recipe has no lora: section"):
        run(recipe, ["model.mode=lora", "ema=null"])
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="optim.name=adamw8bit needs bitsandbytes: pip install bitsandbytes"):
            run(recipe, ["optim.name=adamw8bit"])
    uncaptioned = make_captioned(tmp_path / "curated", n=2, features=schema.CURATED)
    with pytest.raises(InputError, match=r"no 'caption' column .*run `retinalogos caption`"):
        run(recipe, [f"data.dataset={uncaptioned}", f"output_dir={tmp_path / 'a'}"])
    with pytest.raises(InputError, match=r"data.dataset: \S+/missing is not a dataset directory"):
        run(recipe, [f"data.dataset={tmp_path / 'missing'}", f"output_dir={tmp_path / 'a'}"])
    with pytest.raises(InputError, match="no 'purify_keep' column"):
        run(recipe, [f"data.dataset={data}", "data.require_purify_keep=true", f"output_dir={tmp_path / 'b'}"])
    with pytest.raises(InputError, match=r"--resume .*nope: not a checkpoint directory"):
        run(recipe, [f"data.dataset={data}", f"output_dir={tmp_path / 'c'}"], resume=str(tmp_path / "nope"))
    with pytest.raises(InputError, match="--resume latest: no checkpoint under"):
        run(recipe, [f"data.dataset={data}", f"output_dir={tmp_path / 'c'}"], resume="latest")
    with pytest.raises(OfflineError, match="model.base_model: model 'retinalogos/not-cached' is not available") as e:
        run(recipe, [f"data.dataset={data}", "model.base_model=retinalogos/not-cached", f"output_dir={tmp_path / 'd'}"])
    assert "model.base_model /path/to/model" in e.value.hint


def test_trains_on_a_hub_layout_dataset_folder(tmp_path):
    from retinalogos_hub.hub import push_dataset

    pushed = push_dataset(make_captioned(tmp_path / "captioned", n=4), "org/fundus", local_dir=tmp_path / "hub")
    res = run(
        TINY / "lumina-next" / "step1_pretrain_lora.yaml",
        [f"data.dataset={pushed.local_dir}", f"output_dir={tmp_path / 'run'}", "train.max_steps=1", *QUIET],
    )
    assert json.loads((res.output_dir / "run.json").read_text())["train_rows"] == 4


def test_hub_export_without_images_names_the_row(tmp_path):
    from retinalogos_hub.hub import push_dataset

    ds = datasets.load_from_disk(str(make_captioned(tmp_path / "captioned", n=2)))
    ds.map(lambda r: {"redistributable": False}).save_to_disk(str(tmp_path / "closed"))  # published without pixels
    pushed = push_dataset(tmp_path / "closed", "org/fundus", local_dir=tmp_path / "hub")
    with pytest.raises(InputError, match=r"data.dataset: row idrid/0 has no image; .*attach-images"):
        run(
            TINY / "lumina-next" / "step1_pretrain_lora.yaml",
            [f"data.dataset={pushed.local_dir}", f"output_dir={tmp_path / 'run'}", "train.max_steps=1", *QUIET],
        )


def test_cli_reports_one_line_error(tmp_path, monkeypatch, capsys):
    from retinalogos_hub.cli import main

    monkeypatch.setattr(
        sys,
        "argv",
        ["retinalogos", "train", "--recipe", str(TINY / "lumina-next" / "step1_pretrain_full.yaml"), "optim.lr=fast"],
    )
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "optim.lr must be float, got 'fast'" in err and "Traceback" not in err


def test_rows_smaller_than_their_bucket_are_counted_and_refused_past_the_recipe_share(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=2)  # 40-48 px images
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    common = [f"data.dataset={data}", "train.max_steps=1", *QUIET]
    with pytest.raises(InputError, match=r"2 of 2 rows are smaller than their bucket at data.resolution=64 .*size >= "):
        run(recipe, [*common, f"output_dir={tmp_path / 'a'}", "data.resolution=64", "data.max_upscaled=0.0"])
    res = run(recipe, [*common, f"output_dir={tmp_path / 'b'}", "data.resolution=64"])  # the tiny recipe allows it
    assert json.loads((res.output_dir / "run.json").read_text())["upscaled_rows"] == 2


def test_captions_encoded_every_step_train_as_the_cached_embeddings_do(tmp_path):
    """data.cache_text false keeps captions instead of ~1 MB/row Gemma states and trains to the same weights."""
    data = make_captioned(tmp_path / "captioned", n=4)
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    common = [f"data.dataset={data}", "train.max_steps=3", *QUIET]
    cached = run(recipe, [*common, f"output_dir={tmp_path / 'cached'}"])
    live = run(recipe, [*common, f"output_dir={tmp_path / 'live'}", "data.cache_text=false"])
    a, b = weights(cached.pipeline_dir), weights(live.pipeline_dir)
    assert max((a[k] - b[k]).abs().max().item() for k in a if a[k].abs().max() < 1e10) < 1e-5
    cache = datasets.load_from_disk(str(next((tmp_path / "live" / "cache").glob("*/dataset"))))
    assert "caption" in cache.column_names and "text" not in cache.column_names


def test_rows_without_a_caption_are_left_out_with_a_count_or_refused(tmp_path):
    data = make_captioned(tmp_path / "captioned", n=4)
    ds = datasets.load_from_disk(str(data))
    holes = ds.map(lambda r, i: {"caption": "" if i == 1 else ("  " if i == 2 else r["caption"])}, with_indices=True)
    holes.save_to_disk(str(tmp_path / "holes"))
    recipe = TINY / "lumina-next" / "step1_pretrain_full.yaml"
    common = [f"data.dataset={tmp_path / 'holes'}", "train.max_steps=1", *QUIET]
    res = run(recipe, [*common, f"output_dir={tmp_path / 'a'}"])
    info = json.loads((res.output_dir / "run.json").read_text())
    assert (info["train_rows"], info["no_caption_rows"]) == (2, 2)  # an empty caption is never trained
    with pytest.raises(InputError, match=r"2 of 4 rows have no caption \(first: idrid/1\); retry them with"):
        run(recipe, [*common, f"output_dir={tmp_path / 'b'}", "data.on_missing_caption=error"])


RANK_BUILDS = r"""
import os, sys, torch.distributed as dist
dist.init_process_group("gloo")
from retinalogos_hub.models import build_tiny
if dist.get_rank() == 1:  # rank 1 builds from the empty cache; transformers saves weights on rank 0 only
    path = build_tiny("lumina2")
dist.barrier()
path = build_tiny("lumina2")
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained(path)
print("loaded", dist.get_rank(), type(pipe.text_encoder).__name__)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_what_one_rank_builds_every_rank_loads_whole(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_BUILDS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        str(script),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("loaded") == 2
    built = tmp_path / "empty-hf-home" / "retinalogos" / "tiny" / "lumina2-seed0"
    assert (built / "text_encoder" / "model.safetensors").is_file()
