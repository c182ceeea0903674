"""LoRA exports also write a kohya-ss / ComfyUI-keyed copy; it is loaded by LyCORIS' kohya loader (the loader kohya's
sd-scripts use for `lora_unet_*` files; ComfyUI itself is not a pip package) and must merge to the same weights as
PEFT's own merge."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file

from retinalogos_hub.models import resolve
from retinalogos_hub.train import export


@pytest.fixture
def lora_transformer():
    from diffusers import LuminaPipeline
    from peft import LoraConfig, inject_adapter_in_model

    pipe = LuminaPipeline.from_pretrained(resolve("tiny:lumina-next"))
    base = copy.deepcopy(pipe.transformer)
    t = pipe.transformer
    config = LoraConfig(
        r=4, lora_alpha=8, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]
    )
    inject_adapter_in_model(config, t)  # as the trainer does for Lumina-Next (no PeftAdapterMixin)
    t.peft_config = {"default": config}
    torch.manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: B is zero at init, which would make every check trivial
        for name, p in t.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.1)
    return pipe, t, base


def test_save_lora_writes_a_kohya_copy_with_the_same_delta(lora_transformer, tmp_path):
    pipe, t, _ = lora_transformer
    export.save_lora(pipe, t, tmp_path / "lora")
    sd = load_file(tmp_path / "lora" / export.KOHYA_FILE)
    name = "lora_unet_layers_0_attn1_to_q"
    assert {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"} <= set(sd)
    assert all(k.startswith("lora_unet_") for k in sd) and float(sd[f"{name}.alpha"]) == 8.0
    delta = sd[f"{name}.lora_up.weight"] @ sd[f"{name}.lora_down.weight"] * (8.0 / 4)
    peft = t.layers[0].attn1.to_q
    want = peft.lora_B["default"].weight @ peft.lora_A["default"].weight * peft.scaling["default"]
    assert torch.allclose(delta, want)


def test_kohya_copy_loads_in_lycoris_and_merges_like_peft(lora_transformer, tmp_path):
    kohya = pytest.importorskip("lycoris.kohya", reason="lycoris-lora not installed (pip install lycoris-lora)")
    pipe, t, base = lora_transformer
    export.save_lora(pipe, t, tmp_path / "lora")
    weights = load_file(tmp_path / "lora" / export.KOHYA_FILE)
    network, _ = kohya.create_network_from_weights(1.0, None, None, None, base, weights_sd=weights, for_inference=True)
    assert len(network.unet_loras) == 2 * 2 * 4 - 2  # 2 layers x (attn1 q,k,v + attn2 q,k,v,out) = 14 modules
    network.merge_to(None, base, weights, torch.float32, "cpu")
    fused = export.fused(t).state_dict()
    merged = base.state_dict()
    assert set(fused) == set(merged)
    for k in fused:
        assert torch.allclose(fused[k], merged[k], atol=1e-6), k
