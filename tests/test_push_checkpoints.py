"""Checkpoints on the Hub (issue 17), against the loopback Hub: every kept checkpoint as a loadable revision
(`push-model --checkpoints`), the training state in a private repo (`push-state`) that `train --resume hf://...`
continues on a fresh working directory, an upload that loses its connection and a rerun, and bad input in one line."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_push_model import run_dir  # noqa: F401  (fixture: a finished run around the tiny Lumina-Next pipeline)
from test_train import QUIET, TINY, make_captioned, same, train_killed_after, weights

from retinalogos_hub.chain import run  # what `retinalogos train` calls
from retinalogos_hub.errors import ConfigError, HubError, InputError
from retinalogos_hub.hub.card import python_blocks
from retinalogos_hub.hub.checkpoints import push_state
from retinalogos_hub.hub.model import push_model
from retinalogos_hub.train import load_recipe
from retinalogos_hub.train.remote import recipe_identity

RECIPE = TINY / "lumina-next" / "step1_pretrain_full.yaml"
STATE_FILES = ("optimizer", "scheduler", "random_states", "rank_state", "custom_checkpoint", "model.safetensors")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def remote_files(repo_id: str, revision: str, token=None) -> list[str]:
    from huggingface_hub import HfApi

    return HfApi(token=token).list_repo_files(repo_id, revision=revision)


# --- push-model --checkpoints ------------------------------------------------------------------------------------------


LOADS = """
import hashlib, sys
import torch
from diffusers import DiffusionPipeline
for rev in sys.argv[2:]:
    pipe = DiffusionPipeline.from_pretrained(sys.argv[1], revision=rev)
    flat = torch.cat([p.detach().flatten() for p in pipe.transformer.state_dict().values()])
    print(rev, hashlib.sha256(flat.numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_three_checkpoints_publish_three_revisions_that_load_and_differ(hub_server, tmp_path):
    data = make_captioned(tmp_path / "captioned", n=6)
    common = ["train.max_steps=6", "checkpoint.every=2", "checkpoint.total_limit=3", "validation.every=2", *QUIET]
    res = run(RECIPE, [f"data.dataset={data}", f"output_dir={tmp_path / 'run'}", *common])
    repo = "tester/tiny-revisions"
    pushed = push_model(res.output_dir, repo, token=hub_server.token, checkpoints=True)
    names = ["step-000002", "step-000004", "step-000006"]
    assert pushed.revisions == pushed.sent == names

    # 1. Each revision: a whole pipeline with that step's EMA transformer, its validation grid, no training state
    for name in names:
        files = remote_files(repo, name)
        assert {"model_index.json", "transformer/diffusion_pytorch_model.safetensors", "README.md"} <= set(files)
        assert f"gallery/{name}.png" in files and "retinalogos.json" in files
        assert not any(k in f for f in files for k in ("optimizer", "random_states", "rank_state", "scheduler.bin"))
    # 2. They load in a fresh process with from_pretrained(..., revision=...) and differ from each other
    out = subprocess.run(
        [sys.executable, "-c", LOADS, repo, *names],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HOME": str(tmp_path / "fresh-hf-home")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    digests = dict(line.split() for line in out.stdout.splitlines() if line.startswith("step-"))
    assert list(digests) == names and len(set(digests.values())) == 3
    # the published weights are the checkpoint's EMA weights, not its raw training weights
    ckpt = res.output_dir / "checkpoints" / "checkpoint-000004"
    ema = load_file(str(ckpt / "transformer" / "diffusion_pytorch_model.safetensors"))
    raw = load_file(str(ckpt / "model.safetensors"))
    assert any(not torch.equal(ema[k], raw[k]) for k in ema if k in raw)

    # 3. main's card lists the revisions with step, loss and image; its snippet runs against the Hub
    from huggingface_hub import ModelCard, hf_hub_download

    card = ModelCard.load(hf_hub_download(repo, "README.md"))
    for name in names:
        assert f"| `{name}` | {int(name[5:])} | " in card.text and f"![{name}](gallery/{name}.png)" in card.text
    loss4 = json.loads((ckpt / "trainer_state.json").read_text())["last_logged_loss"]
    assert f"| `step-000004` | 4 | {loss4:.4f} |" in card.text
    (_, snippet) = python_blocks(card.text)
    assert f'from_pretrained("{repo}", revision="step-000002")' in snippet
    ran = subprocess.run(
        [sys.executable, "-c", snippet + "\nprint(type(pipe).__name__)"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HOME": str(tmp_path / "fresh-hf-home-2")},
    )
    assert ran.returncode == 0 and "LuminaPipeline" in ran.stdout, ran.stderr[-3000:]
    # a revision's card names it
    assert (
        "**Revision `step-000004`**: the checkpoint at training step 4"
        in Path(hf_hub_download(repo, "README.md", revision="step-000004")).read_text()
    )

    # 4. A rerun sends nothing; a new checkpoint is the only revision sent
    puts = len(hub_server.lfs_puts)
    again = push_model(res.output_dir, repo, token=hub_server.token, checkpoints=True)
    assert again.sent == [] and len(hub_server.lfs_puts) == puts
    new = res.output_dir / "checkpoints" / "checkpoint-000008"
    shutil.copytree(res.output_dir / "checkpoints" / "checkpoint-000006", new)
    state = json.loads((new / "trainer_state.json").read_text())
    (new / "trainer_state.json").write_text(json.dumps({**state, "global_step": 8}))
    third = push_model(res.output_dir, repo, token=hub_server.token, checkpoints=True)
    assert third.sent == ["step-000008"] and "step-000008" in third.revisions
    assert len(hub_server.lfs_puts) == puts  # the same weights as step 6: stored once, not sent again


def test_checkpoint_without_state_or_weights_is_named(run_dir, tmp_path):  # noqa: F811
    ckpt = run_dir / "checkpoints" / "checkpoint-000004"  # the fixture's: optimizer + RNG files only
    t = time.perf_counter()
    with pytest.raises(InputError, match=r"checkpoint-000004: no trainer_state.json, so the checkpoint is incomplete"):
        push_model(run_dir, "my-lab/x", local_dir=tmp_path / "o", checkpoints=True)
    fast = time.perf_counter() - t
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 4, "last_logged_loss": 0.5}))
    with pytest.raises(
        InputError, match=r"no transformer/config.json .*checkpoint.weights: false, or by an older version"
    ):
        push_model(run_dir, "my-lab/x", local_dir=tmp_path / "o", checkpoints=True)
    shutil.copytree(run_dir / "pipeline" / "transformer", ckpt / "transformer")
    res = push_model(run_dir, "my-lab/x", local_dir=tmp_path / "o", checkpoints=True)
    staged = tmp_path / "o" / ".revisions" / "step-000004"
    assert res.revisions == ["step-000004"] and (staged / "model_index.json").is_file()
    assert not any("optimizer" in str(p) or "random_states" in str(p) for p in staged.rglob("*"))
    assert not any(".revisions" in f for f in res.files)  # staged beside main, never inside it
    print(f"bad checkpoint refused in {fast * 1000:.0f} ms")


def test_lora_run_revisions_hold_the_adapter(run_dir, tmp_path):  # noqa: F811
    shutil.rmtree(run_dir / "pipeline")
    meta = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**meta, "mode": "lora", "backbone": "lumina2", "loads_lora": True}))
    for folder, data in (
        (run_dir / "lora", b"final"),
        (run_dir / "checkpoints" / "checkpoint-000004" / "lora", b"step 4"),
    ):
        folder.mkdir(parents=True)
        (folder / "pytorch_lora_weights.safetensors").write_bytes(data)
    ckpt = run_dir / "checkpoints" / "checkpoint-000004"
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 4, "last_logged_loss": 0.25}))
    push_model(run_dir, "my-lab/lora", local_dir=tmp_path / "o", checkpoints=True)
    staged = tmp_path / "o" / ".revisions" / "step-000004"
    assert (staged / "pytorch_lora_weights.safetensors").read_bytes() == b"step 4"
    assert not (staged / "model_index.json").exists() and not (staged / "optimizer.bin").exists()
    card = (tmp_path / "o" / "README.md").read_text()
    assert "that step's LoRA adapter" in card and "| `step-000004` | 4 | 0.2500 | ![step-000004]" in card
    assert 'pipe.load_lora_weights("my-lab/lora", revision="step-000004")' in python_blocks(card)[-1]


# --- a connection dropped mid-upload -----------------------------------------------------------------------------------


def test_dropped_connection_then_rerun_ends_with_a_complete_repo(hub_server, run_dir, tmp_path, monkeypatch):  # noqa: F811
    import huggingface_hub.lfs as lfs
    from huggingface_hub import snapshot_download

    # the client retries a dropped upload up to 5 times with backoff; once here, so the failure reaches the user fast
    monkeypatch.setattr(lfs, "http_backoff", functools.partial(lfs.http_backoff, max_retries=1, base_wait_time=0.01))
    repo = "tester/dropped"
    hub_server.drop_lfs_puts_after = 2
    with pytest.raises(HubError, match=r"lost the connection .*\(\w+Error\)") as e:
        push_model(run_dir, repo, token=hub_server.token)
    assert "run the same command again" in e.value.hint
    assert remote_files(repo, "main") == [".gitattributes"]  # nothing half-published
    landed = {oid for oid, _ in hub_server.lfs_puts if oid in hub_server.lfs}
    assert len(landed) == 2
    dropped = [(oid, n) for oid, n in hub_server.lfs_puts if oid not in hub_server.lfs]
    assert dropped and all(n > 0 for _, n in dropped)  # connections really dropped mid-body

    hub_server.drop_lfs_puts_after = None
    before = len(hub_server.lfs_puts)
    res = push_model(run_dir, repo, token=hub_server.token)
    resent = [oid for oid, _ in hub_server.lfs_puts[before:]]
    assert not set(resent) & landed and len(resent) == len(set(resent))  # what landed is not sent again
    down = Path(snapshot_download(repo, local_dir=tmp_path / "down"))
    for rel in res.files:  # complete and uncorrupted: every staged file, byte for byte
        assert sha256(down / rel) == sha256(res.local_dir / rel), rel
    sizes = {hashlib.sha256(b).hexdigest(): len(b) for b in hub_server.lfs.values()}
    print(f"rerun re-sent {sum(sizes[o] for o in resent)} of {sum(sizes.values())} LFS bytes")


# --- push-state and train --resume hf://... ----------------------------------------------------------------------------


def _fake_state(run: Path, step: int, recipe: dict) -> Path:
    ckpt = run / "checkpoints" / f"checkpoint-{step:06d}"
    ckpt.mkdir(parents=True)
    (ckpt / "optimizer.bin").write_bytes(b"optimizer state")
    (ckpt / "trainer_state.json").write_text(
        json.dumps({"global_step": step, "last_logged_loss": 1.0, "recipe": recipe})
    )
    return ckpt


def test_state_is_private_and_bad_resumes_are_named(hub_server, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    cfg = load_recipe(RECIPE, [f"output_dir={tmp_path / 'fresh'}"])
    _fake_state(tmp_path / "run", 2, recipe_identity(cfg))
    res = push_state(tmp_path / "run", "tester/state")
    assert res.revision == "step-000002" and hub_server.repo("model", "tester/state").private
    assert {"optimizer.bin", "trainer_state.json", "README.md"} <= set(remote_files("tester/state", "step-000002"))
    puts = len(hub_server.lfs_puts)
    assert push_state(tmp_path / "run", "tester/state").revision == "step-000002"
    assert len(hub_server.lfs_puts) == puts  # a rerun sends nothing again
    # a public target is refused unless the user insists
    HfApi().create_repo("tester/public-state", private=False)
    with pytest.raises(InputError, match="is a public repo: training state .* belongs in a private one") as e:
        push_state(tmp_path / "run", "tester/public-state")
    assert "--allow-public" in e.value.hint
    push_state(tmp_path / "run", "tester/public-state", allow_public=True)
    # a checkpoint killed mid-save, named or not
    (tmp_path / "run" / "checkpoints" / "checkpoint-000004").mkdir()
    with pytest.raises(InputError, match="checkpoint-000004: no trainer_state.json"):
        push_state(tmp_path / "run", "tester/state", checkpoint="checkpoint-000004")
    with pytest.raises(InputError, match=r"--checkpoint checkpoint-000009: not found .*checkpoint-000002"):
        push_state(tmp_path / "run", "tester/state", checkpoint="checkpoint-000009")

    timings = {}
    bad = {
        "revision": ("hf://tester/state@step-000099", r"tester/state has no revision 'step-000099'", []),
        "recipe": (
            "hf://tester/state",
            r"another recipe \(optim.lr: 0.5 here, 0.001 in the state\)",
            ["optim.lr=0.5"],
        ),
        "repo": ("hf://tester/missing-state", r"no repo tester/missing-state", []),
        "id": ("hf://not a repo", r"expected hf://ORG/NAME", []),
    }
    for what, (ref, message, overrides) in bad.items():
        t = time.perf_counter()
        with pytest.raises(InputError, match=message):
            run(RECIPE, [f"output_dir={tmp_path / 'fresh'}", *overrides], resume=ref)
        timings[what] = time.perf_counter() - t
    assert not (tmp_path / "fresh" / ".work" / "resume").exists() or not any(
        (tmp_path / "fresh" / ".work" / "resume").glob("*/optimizer.bin")
    )  # refused before the state was downloaded
    # the same through the CLI, in a fresh process: one line, and the recipe is checked before torch is imported
    for ref, message in (("hf://tester/state@step-000099", "has no revision"), ("hf://tester/state", "another recipe")):
        t = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "retinalogos_hub.cli", "train", "--recipe", str(RECIPE), "optim.lr=0.5",
             f"output_dir={tmp_path / 'fresh'}", "--resume", ref],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        timings[f"cli {message}"] = time.perf_counter() - t
        lines = [line for line in cli.stderr.splitlines() if line.strip()]
        assert cli.returncode == 1 and message in lines[0] and "Traceback" not in cli.stderr, cli.stderr[-2000:]
    with pytest.raises(ConfigError, match="resumes one step recipe"):
        run(TINY / "lumina-next" / "pipeline.yaml", [f"output_dir={tmp_path / 'chain'}"], resume="hf://tester/state")
    print("bad --resume refused in " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


@pytest.mark.slow
def test_killed_run_pushed_with_push_state_resumes_elsewhere_to_the_same_weights(hub_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    data = make_captioned(tmp_path / "captioned", n=6)
    common = [f"data.dataset={data}", "train.max_steps=40", "checkpoint.every=2", "checkpoint.total_limit=2", *QUIET]
    whole = run(RECIPE, [*common, f"output_dir={tmp_path / 'whole'}"])
    killed = train_killed_after(RECIPE, common, tmp_path / "killed", step=4)  # after its second checkpoint

    pushed = push_state(killed, "tester/tiny-state")
    assert pushed.global_step >= 4 and not any("transformer/" in f for f in pushed.files)
    assert {f.split("_")[0].split(".")[0] for f in pushed.files} >= {"optimizer", "scheduler", "random", "rank"}
    shutil.rmtree(killed)  # a fresh working directory on "another machine": only the Hub has the state
    fresh = tmp_path / "elsewhere"
    resumed = run(RECIPE, [*common, f"output_dir={fresh}"], resume=f"hf://tester/tiny-state@{pushed.revision}")
    assert resumed.global_step == whole.global_step == 40
    assert same(weights(resumed.pipeline_dir), weights(whole.pipeline_dir))  # EMA export
    last = "checkpoints/checkpoint-000040/model.safetensors"
    assert same(load_file(str(fresh / last)), load_file(str(tmp_path / "whole" / last)))  # raw weights
    assert resumed.final_loss == whole.final_loss
    assert yaml.safe_load((fresh / "config.yaml").read_text())["output_dir"] == str(fresh)


@pytest.mark.slow
def test_two_process_resume_from_the_hub_downloads_once_and_every_rank_loads_it(hub_server, tmp_path, monkeypatch):
    from test_train import launch

    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    data = make_captioned(tmp_path / "captioned", n=6)
    common = ["train", "--recipe", str(RECIPE), f"data.dataset={data}", "train.max_steps=6", "checkpoint.every=2",
              "checkpoint.total_limit=10", f"data.cache_dir={tmp_path / 'cache'}", *QUIET]  # fmt: skip
    launch("cpu-2proc.yaml", *common, f"output_dir={tmp_path / 'whole'}")
    pushed = push_state(tmp_path / "whole", "tester/ddp-state", checkpoint="checkpoint-000002")
    assert {"rank_state_0.pt", "rank_state_1.pt", "random_states_1.pkl"} <= set(pushed.files)
    fresh = tmp_path / "elsewhere"
    launch("cpu-2proc.yaml", *common, f"output_dir={fresh}", "--resume", "hf://tester/ddp-state@step-000002")
    assert same(weights(fresh / "pipeline"), weights(tmp_path / "whole" / "pipeline"))
    gets = [p for m, p in hub_server.requests if m == "GET" and "/resolve/" in p and p.endswith("/optimizer.bin")]
    assert len(gets) == 1  # one rank downloaded; the other waited on the lock and loaded the same folder


@pytest.mark.slow
def test_checkpoints_without_weights_hold_state_only_and_are_refused_by_name(tmp_path):
    """checkpoint.weights: false keeps a 2B run's checkpoints to the resumable state (no extra transformer on disk,
    no FSDP gather per checkpoint); publishing them as revisions then says what to set."""
    data = make_captioned(tmp_path / "captioned", n=4)
    res = run(RECIPE, [f"data.dataset={data}", f"output_dir={tmp_path / 'run'}", "train.max_steps=2",
                       "checkpoint.every=2", "checkpoint.weights=false", *QUIET])  # fmt: skip
    ckpt = res.output_dir / "checkpoints" / "checkpoint-000002"
    assert (ckpt / "trainer_state.json").is_file() and not (ckpt / "transformer").exists()
    with pytest.raises(InputError, match="checkpoint.weights: false"):
        push_model(res.output_dir, "tester/no-weights", local_dir=tmp_path / "out", checkpoints=True)
