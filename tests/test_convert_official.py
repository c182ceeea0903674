"""convert-official: a tiny checkpoint in the authors' key layout -> LuminaPipeline, checked against an independent
re-implementation of their NextDiT forward (tests/official_nextdit.py), plus the inverse map and error paths."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from official_nextdit import NextDiT, precompute_freqs_cis

from retinalogos_hub.convert_official import (
    convert_official,
    diffusers_to_official,
    official_to_diffusers,
    transformer_config,
)
from retinalogos_hub.errors import InputError

TINY = dict(patch_size=2, in_channels=4, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, multiple_of=16, cap_feat_dim=32)


def official_model(seed: int) -> NextDiT:
    torch.manual_seed(seed)
    model = NextDiT(**TINY)
    with torch.no_grad():  # every parameter non-trivial (theirs zero-init the gates and adaLN): all paths are exercised
        for name, p in model.named_parameters():
            norm_weight = "norm" in name and name.endswith("weight")
            p.copy_(1 + 0.1 * torch.randn_like(p) if norm_weight else 0.3 * torch.randn_like(p))
    return model.eval()


def write_checkpoint(folder: Path, seed: int = 0, ema_seed: int = 1) -> tuple[NextDiT, NextDiT]:
    """The authors' layout: consolidated.00-of-01.pth, consolidated_ema.00-of-01.safetensors, model_args.pth."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    plain, ema = official_model(seed), official_model(ema_seed)
    torch.save(plain.state_dict(), folder / "consolidated.00-of-01.pth")
    save_file(
        {k: v.contiguous() for k, v in ema.state_dict().items()}, folder / "consolidated_ema.00-of-01.safetensors"
    )
    args = argparse.Namespace(model="NextDiT_2B_GQA_patch2", image_size=512, vae="sdxl", precision="bf16", qk_norm=True)
    torch.save(args, folder / "model_args.pth")
    return plain, ema


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 12, generator=g)  # non-square: rows and columns of the RoPE table are both exercised
    t = torch.tensor([0.3, 0.8])
    cap = torch.randn(2, 7, 32, generator=g)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])  # a padded caption: masked pooling and masked cross-attention
    return x, t, cap, mask


def diffusers_forward(transformer, x, t, cap, mask):
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    head_dim = transformer.config.hidden_size // transformer.config.num_attention_heads
    rope = get_2d_rotary_pos_embed_lumina(head_dim, 384, 384)
    with torch.no_grad():
        return transformer(x, t, cap, mask, rope, cross_attention_kwargs={}, return_dict=False)[0]


def test_rope_tables_agree():
    """diffusers' RoPE helper equals the reference's table, so the forward comparison feeds both the same positions."""
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    assert torch.allclose(get_2d_rotary_pos_embed_lumina(8, 384, 384), precompute_freqs_cis(8, 384))


@pytest.mark.slow  # the fast suite keeps the same forward check in test_non_ema_pth_and_overrides
def test_converted_tiny_checkpoint_matches_the_reference_forward(tmp_path):
    from diffusers import LuminaNextDiT2DModel, LuminaPipeline

    plain, ema = write_checkpoint(tmp_path / "ckpt")
    res = convert_official(
        tmp_path / "ckpt", tmp_path / "out", text_encoder="tiny:lumina-next", vae="tiny:lumina-next", repo_id="me/rl"
    )
    assert res.checkpoint.name == "consolidated_ema.00-of-01.safetensors"  # EMA preferred, safetensors read
    assert res.transformer_config["num_kv_heads"] == 2 and res.transformer_config["cross_attention_dim"] == 32
    transformer = LuminaNextDiT2DModel.from_pretrained(tmp_path / "out" / "transformer").eval()
    x, t, cap, mask = inputs()
    with torch.no_grad():
        want = ema(x, t, cap, mask)
    got = diffusers_forward(transformer, x, t, cap, mask)
    assert got.shape == want.shape == (2, 8, 8, 12)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), (got - want).abs().max()
    assert not torch.allclose(diffusers_forward(transformer, x, t, cap, mask), plain(x, t, cap, mask).detach())

    pipe = LuminaPipeline.from_pretrained(tmp_path / "out")
    assert pipe.scheduler.config.shift == 1.0
    facts = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert facts["train_args"]["model"] == "NextDiT_2B_GQA_patch2" and facts["ema"] is True
    card = (tmp_path / "out" / "README.md").read_text()
    assert "license: apache-2.0" in card and "base_model: junzhin/RetinaLogo" in card
    assert "Not for clinical diagnosis" in card and 'from_pretrained("me/rl")' in card
    assert "num_inference_steps=50" in card and "guidance_scale=4.0" in card
    assert (tmp_path / "out" / "retinalogos.json").is_file()


def test_non_ema_pth_and_overrides(tmp_path):
    from diffusers import LuminaNextDiT2DModel

    plain, _ = write_checkpoint(tmp_path / "ckpt")
    res = convert_official(
        tmp_path / "ckpt",
        tmp_path / "out",
        text_encoder="tiny:lumina-next",
        vae="tiny:lumina-next",
        overrides=["ema=false", "sampler.time_shift=6.0"],
    )
    assert res.checkpoint.name == "consolidated.00-of-01.pth"
    transformer = LuminaNextDiT2DModel.from_pretrained(tmp_path / "out" / "transformer").eval()
    x, t, cap, mask = inputs(1)
    with torch.no_grad():
        assert torch.allclose(diffusers_forward(transformer, x, t, cap, mask), plain(x, t, cap, mask), atol=1e-5)
    assert json.loads((tmp_path / "out" / "scheduler" / "scheduler_config.json").read_text())["shift"] == 6.0


def test_inverse_map_round_trips_a_random_diffusers_model():
    """diffusers -> official layout -> back is exact (attn2 shares wq and q_norm with attn1 in their model)."""
    from diffusers import LuminaNextDiT2DModel

    torch.manual_seed(0)
    m = LuminaNextDiT2DModel(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=32, num_layers=2, num_attention_heads=4,
        num_kv_heads=2, multiple_of=16, cross_attention_dim=24,
    )  # fmt: skip
    sd = m.state_dict()
    for i in range(2):  # tie what their model shares
        for name in ("to_q.weight", "norm_q.weight", "norm_q.bias"):
            sd[f"layers.{i}.attn2.{name}"] = sd[f"layers.{i}.attn1.{name}"]
    official = diffusers_to_official(sd)
    assert set(official) == set(NextDiT(**{**TINY, "cap_feat_dim": 24}).state_dict())  # the reference's exact keys
    back = official_to_diffusers(official)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
    assert transformer_config(official, 8)["multiple_of"] in (16, 32)  # any multiple giving the same width


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(InputError, match="no consolidated"):
        convert_official(tmp_path, tmp_path / "out", text_encoder="tiny:lumina-next", vae="tiny:lumina-next")
    (tmp_path / "mp").mkdir()
    (tmp_path / "mp" / "consolidated.00-of-02.pth").write_bytes(b"")
    with pytest.raises(InputError, match="model-parallel shards"):
        convert_official(tmp_path / "mp", tmp_path / "out", text_encoder="tiny:lumina-next", vae="tiny:lumina-next")
    sd = official_model(0).state_dict()
    del sd["layers.1.attention.wk_y.weight"]
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(InputError, match=r"missing layers\.1\.attention\.wk_y\.weight; unexpected extra\.weight"):
        official_to_diffusers(sd)
    torch.save(NextDiT(**{**TINY, "cap_feat_dim": 24}).state_dict(), tmp_path / "consolidated.00-of-01.pth")
    with pytest.raises(InputError, match="hidden size 32, but the checkpoint's cross-attention expects 24"):
        convert_official(tmp_path, tmp_path / "out", text_encoder="tiny:lumina-next", vae="tiny:lumina-next")


@pytest.mark.slow
def test_converted_pipeline_loads_and_generates_in_a_fresh_process(tmp_path):
    write_checkpoint(tmp_path / "ckpt")
    convert_official(tmp_path / "ckpt", tmp_path / "out", text_encoder="tiny:lumina-next", vae="tiny:lumina-next")
    from retinalogos_hub.hub.card import python_blocks

    (snippet,) = python_blocks((tmp_path / "out" / "README.md").read_text())
    script = (
        snippet.replace("height=1024", "height=32")
        .replace("width=1024", "width=32")
        .replace("num_inference_steps=50", "num_inference_steps=2")
    )
    out = subprocess.run(
        [sys.executable, "-c", script + "\nprint(image.size)"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(32, 32)" in out.stdout


def test_nextdit_2b_shapes_map_onto_diffusers_2b_config():
    """At the real size (on the meta device: no memory): the authors' NextDiT_2B_GQA_patch2 with a Gemma-2B caption
    width gives the config of diffusers' own Lumina-Next 2B conversion, and every tensor fits it (strict load)."""
    from diffusers import LuminaNextDiT2DModel

    with torch.device("meta"):
        official = NextDiT(2, 4, 2304, 24, 32, 8, 256, 2048).state_dict()
        cfg = transformer_config(official, 128)
        assert cfg == dict(
            sample_size=128, patch_size=2, in_channels=4, hidden_size=2304, num_layers=24, num_attention_heads=32,
            num_kv_heads=8, multiple_of=256, ffn_dim_multiplier=None, norm_eps=1e-5, learn_sigma=True, qk_norm=True,
            cross_attention_dim=2048, scaling_factor=1.0,
        )  # fmt: skip
        model = LuminaNextDiT2DModel(**cfg)
    model.load_state_dict(official_to_diffusers(official), strict=True, assign=True)
    assert official["layers.0.feed_forward.w1.weight"].shape == (6144, 2304)


def test_cli_convert_official(tmp_path):
    from typer.testing import CliRunner

    from retinalogos_hub.cli import app

    write_checkpoint(tmp_path / "ckpt")
    args = ["convert-official", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(app, [*args, "--text-encoder", "tiny:lumina-next", "--vae", "tiny:lumina-next"])
    assert res.exit_code == 0, res.output
    assert "consolidated_ema.00-of-01.safetensors" in res.output and (tmp_path / "out" / "model_index.json").is_file()
