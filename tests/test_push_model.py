"""push-model: a RUN_DIR -> model repo (pipeline, LoRA, gallery, card), round trip through the loopback Hub, and the
card's usage snippet run against what was downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from retinalogos_hub.errors import HubError, InputError
from retinalogos_hub.hub.card import python_blocks
from retinalogos_hub.hub.model import push_model
from retinalogos_hub.models import resolve


@pytest.fixture
def run_dir(tmp_path, fundus) -> Path:
    """A finished step-3 full run as the trainer lays it out, around the embedded tiny Lumina-Next pipeline."""
    run = tmp_path / "run"
    shutil.copytree(resolve("tiny:lumina-next"), run / "pipeline", ignore=shutil.ignore_patterns(".complete"))
    (run / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "stage": "step3",
                "output_dir": str(run),
                "data": {"dataset": "my-lab/cfp"},
                "model": {"backbone": "lumina-next", "base_model": "tiny:lumina-next", "mode": "full"},
            }
        )
    )
    (run / "run.json").write_text(
        json.dumps(
            {
                "backbone": "lumina-next",
                "base_model": "tiny:lumina-next",
                "dataset": "my-lab/cfp",
                "recipe": str(run / "config.yaml"),
                "stage": "step3",
                "mode": "full",
                "global_step": 4,
                "final_loss": 0.8123,
                "train_rows": 12,
                "sources": {"idrid": 8, "airogs": 4},  # AIROGS: CC BY-NC-ND
                "resolution": 32,
                "pipeline_class": "LuminaPipeline",
                "loads_lora": False,
                "call_kwargs": {"clean_caption": False},
            }
        )
    )
    (run / "validation").mkdir()
    for step in (2, 4):
        exif = Image.Exif()
        exif[0x0131] = "trainer-host-secret"
        fundus(64, seed=step).save(run / "validation" / f"step-{step:06d}.png", exif=exif.tobytes())
    ckpt = run / "checkpoints" / "checkpoint-000004"
    ckpt.mkdir(parents=True)
    (ckpt / "optimizer.bin").write_bytes(b"optimizer state")
    (ckpt / "random_states_0.pkl").write_bytes(b"rng")
    (run / "pipeline" / "optimizer.bin").write_bytes(b"stray optimizer state")  # must never be published
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(
        json.dumps(
            {
                "kind": "fid",
                "title": "FID against held-out real images",
                "summary": {"fid": 123.456789, "kid": 0.0123, "n_fake": 16},
                "tables": [
                    {"title": "per source", "columns": ["source", "fid"], "rows": [["eyepacs", 120.5]], "note": ""}
                ],
            }
        )
    )
    return run


@pytest.mark.slow
def test_push_model_round_trip_and_card_snippet_runs(hub_server, run_dir, tmp_path):
    from huggingface_hub import ModelCard, snapshot_download

    res = push_model(run_dir, "my-lab/retinalogos-tiny", token=hub_server.token)
    assert res.url.endswith("/my-lab/retinalogos-tiny")
    down = Path(snapshot_download("my-lab/retinalogos-tiny", local_dir=tmp_path / "down", token=hub_server.token))
    files = {str(p.relative_to(down)) for p in down.rglob("*") if p.is_file() and ".cache" not in p.parts}
    assert "model_index.json" in files and "transformer/diffusion_pytorch_model.safetensors" in files
    assert {"gallery/step-000002.png", "gallery/step-000004.png", "training_config.yaml", "README.md"} <= files
    assert not any("checkpoint" in f or "optimizer" in f or "random_states" in f for f in files)
    assert b"trainer-host-secret" not in (down / "gallery" / "step-000004.png").read_bytes()

    card = ModelCard.load(down / "README.md")
    meta = card.data.to_dict()
    assert meta["library_name"] == "diffusers" and meta["pipeline_tag"] == "text-to-image"
    # the licence follows the base model's parts (Gemma terms for the text encoder) and every training source
    assert meta["license"] == "other" and meta["license_link"] == "LICENSE.md" and "lumina-next" in meta["tags"]
    assert "LICENSE.md" in files and "**Not for commercial use**" in card.text
    terms = (down / "LICENSE.md").read_text()
    assert (
        "| text encoder (Gemma-2B) | gemma | yes |" in terms
        and "training data: airogs (4 rows) | CC-BY-NC-ND-4.0 | no" in terms
    )
    assert meta["datasets"] == ["my-lab/cfp"] and "base_model" not in meta  # tiny:... is not a Hub id
    assert "| fid | 123.4568 |" in card.text and "![gallery/step-000004.png](gallery/step-000004.png)" in card.text
    assert "output_dir:" in card.text  # the recipe is in the card
    assert "## Out-of-scope use" in card.text and "Not for clinical diagnosis" in card.text
    assert "| training data: idrid (8 rows) | CC-BY-4.0 | yes |" in card.text and "## Intended use" in card.text
    for text in (card.text, (down / "training_config.yaml").read_text()):  # the trainer's local paths are not
        assert str(run_dir) not in text and "run (local)" in text

    (snippet,) = python_blocks(card.text)
    assert 'from_pretrained("my-lab/retinalogos-tiny")' in snippet and "clean_caption=False" in snippet
    script = snippet.replace('"my-lab/retinalogos-tiny"', repr(str(down)))
    out = subprocess.run(
        [sys.executable, "-c", script + "\nprint(image.size)"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(32, 32)" in out.stdout and (tmp_path / "fundus.png").is_file()


def test_lora_run_publishes_lora_beside_fused_pipeline(run_dir, tmp_path):
    (run_dir / "lora").mkdir()
    (run_dir / "lora" / "pytorch_lora_weights.safetensors").write_bytes(b"not really weights")
    (run_dir / "lora" / "pytorch_lora_weights_kohya.safetensors").write_bytes(b"kohya keys")
    meta = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**meta, "mode": "lora"}))
    res = push_model(run_dir, "my-lab/lora", local_dir=tmp_path / "repo")
    assert res.url is None and "lora/pytorch_lora_weights.safetensors" in res.files and "model_index.json" in res.files
    assert "lora/pytorch_lora_weights_kohya.safetensors" in res.files
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "fused pipeline" in card and "kohya-ss / ComfyUI key layout" in card


def test_bad_run_dir_and_offline(run_dir, tmp_path):
    with pytest.raises(InputError, match="no run.json"):
        push_model(tmp_path, "my-lab/x", local_dir=tmp_path / "o")
    with pytest.raises(InputError, match="ORG/NAME"):
        push_model(run_dir, "x", local_dir=tmp_path / "o")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        push_model(run_dir, "my-lab/x")  # the test session is offline
    shutil.rmtree(run_dir / "pipeline")
    with pytest.raises(InputError, match="was not exported"):
        push_model(run_dir, "my-lab/x", local_dir=tmp_path / "o")


def test_local_dir_that_is_not_a_staged_repo_is_refused(run_dir, tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("not a repo")
    with pytest.raises(InputError, match="not empty"):
        push_model(run_dir, "my-lab/x", local_dir=keep)
    assert (keep / "notes.txt").is_file()
    with pytest.raises(InputError, match="holds the run directory"):
        push_model(run_dir, "my-lab/x", local_dir=tmp_path)
    assert (run_dir / "run.json").is_file()
    push_model(run_dir, "my-lab/x", local_dir=tmp_path / "repo")
    push_model(run_dir, "my-lab/x", local_dir=tmp_path / "repo")  # its own staging is replaced
