"""Tiny random-weight image classifiers with the downstream experiment's real architectures (ResNet, ViT), saved with
their image processors so `AutoModelForImageClassification` / `AutoImageProcessor` load them like the Hub ids
(microsoft/resnet-50, google/vit-base-patch16-224)."""

from __future__ import annotations

from pathlib import Path

import torch


def build_resnet(out_dir: Path, seed: int = 0) -> None:
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(seed)
    cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=2)
    ResNetForImageClassification(cfg).save_pretrained(out_dir)
    # resnet-50 ships a ConvNext processor (resize shortest edge, ImageNet mean/std); same here at 32 px
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(out_dir)


def build_vit(out_dir: Path, seed: int = 0) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    ViTForImageClassification(cfg).save_pretrained(out_dir)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out_dir)
