"""Lumina-Next (the paper's NextDiT-2B): LuminaPipeline + LuminaNextDiT2DModel, Gemma hidden_states[-2], SDXL VAE.

Sampling (diffusers LuminaPipeline.__call__): the model sees t = 1 - sigma (t=0 noise, t=1 image), its output is
split in two along channels (learn_sigma; the first half is the velocity) and negated before the Euler step, so the
model learns x0 - noise (the paper's x1 - x0 with x1 the image) and we return its negation.
"""

from __future__ import annotations

import torch

from .base import Backbone, checkpoint_layers


class LuminaNext(Backbone):
    name = "lumina-next"
    pipeline_cls = "LuminaPipeline"
    transformer_cls = "LuminaNextDiT2DModel"
    multiple = 16  # 8x VAE x patch 2
    loads_lora = False  # LuminaPipeline has no LoRA loader: LoRA runs export a fused pipeline
    sample_kwargs = {"clean_caption": False}
    prompt_kwargs = {"clean_caption": False}

    def predict(self, transformer, x, sigma, emb, mask):
        from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

        model = getattr(transformer, "module", transformer)
        # the pipeline's RoPE at the trained resolution (linear and NTK factors are 1 there)
        rope = get_2d_rotary_pos_embed_lumina(model.head_dim, 384, 384, linear_factor=1.0, ntk_factor=1.0)
        out = transformer(
            hidden_states=x, timestep=1 - sigma, encoder_hidden_states=emb, encoder_mask=mask,
            image_rotary_emb=rope, return_dict=False,
        )[0]
        return -out.chunk(2, dim=1)[0] if model.config.learn_sigma else -out

    def enable_gradient_checkpointing(self, transformer) -> None:
        checkpoint_layers(transformer.layers)  # LuminaNextDiT2DModel has no built-in support


BACKBONE = LuminaNext()
