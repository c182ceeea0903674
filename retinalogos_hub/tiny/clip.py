"""Tiny random-weight CLIP (text + vision towers, projection 16) for purification tests and the offline demo.

Saved like a Hub CLIP checkpoint: `CLIPModel` weights, a CLIP-style tokenizer, and a `CLIPImageProcessor` at 32 px,
so `AutoModel` / `AutoProcessor.from_pretrained(dir)` load it exactly as they load openai/clip-vit-base-patch32.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tokenizers import clip_tokenizer, save

SIZE = 32


def build(out_dir: Path, seed: int = 0) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=SIZE,
            patch_size=8,
        ),
        projection_dim=16,
    )
    model = CLIPModel(cfg).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    save(tokenizer, out_dir)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
