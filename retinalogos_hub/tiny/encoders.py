"""Tiny random-weight image encoders for feature-space metrics (FD / PRDC / memorisation): a DINOv2 with its image
processor, loaded by `AutoModel` / `AutoImageProcessor` like the Hub's facebook/dinov2-* ids."""

from __future__ import annotations

from pathlib import Path

import torch


def build_dinov2(out_dir: Path, seed: int = 0) -> None:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    cfg = Dinov2Config(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    Dinov2Model(cfg).save_pretrained(out_dir)
    # the dinov2 ids ship a BitImageProcessor (resize shortest edge, centre crop, ImageNet mean/std); same at 32 px
    BitImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        do_convert_rgb=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(out_dir)
