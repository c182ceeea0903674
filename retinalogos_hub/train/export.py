"""Export a trained transformer: a diffusers pipeline folder and/or a LoRA file. Never optimizer state.

`pipeline/` loads with `DiffusionPipeline.from_pretrained(dir)` and no custom code; `lora/pytorch_lora_weights.safetensors`
is the format `pipe.load_lora_weights(dir)` reads (keys `transformer.*`, adapter config in the safetensors metadata).
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
    return out / "pytorch_lora_weights.safetensors"


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
