"""Export a trained transformer: a diffusers pipeline folder and/or a LoRA file. Never optimizer state.

`pipeline/` loads with `DiffusionPipeline.from_pretrained(dir)` and no custom code; `lora/pytorch_lora_weights.safetensors`
is the format `pipe.load_lora_weights(dir)` reads (keys `transformer.*`, adapter config in the safetensors metadata).
`lora/pytorch_lora_weights_kohya.safetensors` is the same LoRA in the kohya-ss / ComfyUI key layout (`lora_unet_<module
path with _>.lora_down.weight`, `.lora_up.weight`, `.alpha`), for tools that read that layout.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch


def save_pipeline(pipe, transformer, out: Path) -> Path:
    """The base pipeline's components with `transformer` swapped in, as safetensors."""
    new = type(pipe)(**{**pipe.components, "transformer": transformer})
    new.save_pretrained(out, safe_serialization=True)
    return out


def lora_config_dict(transformer) -> dict:
    meta = transformer.peft_config["default"].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in meta.items()}


def save_lora(pipe, transformer, out: Path) -> Path:
    from peft.utils import get_peft_model_state_dict

    layers = get_peft_model_state_dict(transformer)
    meta = lora_config_dict(transformer)
    out.mkdir(parents=True, exist_ok=True)
    saver = getattr(type(pipe), "save_lora_weights", None)
    if saver is not None:
        saver(out, transformer_lora_layers=layers, transformer_lora_adapter_metadata=meta)
    else:  # LuminaPipeline has no LoRA mixin: same file layout, written directly
        from safetensors.torch import save_file

        weights = {f"transformer.{k}": v.detach().contiguous().cpu() for k, v in layers.items()}
        packed = {f"transformer.{k}": v for k, v in meta.items()}
        save_file(
            weights,
            out / "pytorch_lora_weights.safetensors",
            metadata={"format": "pt", "lora_adapter_metadata": json.dumps(packed, indent=2, sort_keys=True)},
        )
    save_kohya_lora(layers, meta, out / KOHYA_FILE)
    return out / "pytorch_lora_weights.safetensors"


KOHYA_FILE = "pytorch_lora_weights_kohya.safetensors"


def kohya_state_dict(layers: dict, meta: dict) -> dict:
    """PEFT LoRA tensors (`<module>.lora_A.weight` / `.lora_B.weight`) in kohya-ss keys: down = A, up = B, and a
    per-module `alpha` so that up @ down * alpha / rank is the delta PEFT applies (lora_alpha / r)."""
    if meta.get("use_rslora") or meta.get("use_dora"):
        raise ValueError("kohya LoRA files carry plain LoRA only (no rsLoRA / DoRA)")
    out = {}
    for key, value in layers.items():
        module, _, kind = key.rpartition(".lora_")
        name = "lora_unet_" + module.replace(".", "_")
        rank = (meta.get("rank_pattern") or {}).get(module, meta["r"])
        alpha = (meta.get("alpha_pattern") or {}).get(module, meta["lora_alpha"])
        part = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}[kind]
        out[f"{name}.{part}"] = value.detach().contiguous().cpu()
        out[f"{name}.alpha"] = torch.tensor(float(alpha) if rank else 0.0)
    return out


def save_kohya_lora(layers: dict, meta: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file(kohya_state_dict(layers, meta), path, metadata={"format": "pt", "ss_network_module": "networks.lora",
              "ss_network_dim": str(meta["r"]), "ss_network_alpha": str(meta["lora_alpha"])})  # fmt: skip
    return path


def fused(transformer):
    """A plain transformer (base class, no peft layers) with the LoRA deltas merged into its weights."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = copy.deepcopy(transformer)
    for module in merged.modules():
        if isinstance(module, BaseTunerLayer):
            module.merge()
    state = {k.replace(".base_layer.", "."): v for k, v in merged.state_dict().items() if "lora_" not in k}
    with torch.device("meta"):
        plain = type(transformer).from_config(transformer.config)
    plain.load_state_dict(state, strict=True, assign=True)
    return plain
