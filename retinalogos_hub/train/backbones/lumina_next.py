"""Lumina-Next (the paper's NextDiT-2B): LuminaPipeline + LuminaNextDiT2DModel, Gemma hidden_states[-2], SDXL VAE.

Sampling (diffusers LuminaPipeline.__call__): the model sees t = 1 - sigma (t=0 noise, t=1 image), its output is
split in two along channels (learn_sigma; the first half is the velocity) and negated before the Euler step, so the
model learns x0 - noise (the paper's x1 - x0 with x1 the image) and we return its negation.
"""

from __future__ import annotations

import functools
import math

from .base import Backbone, checkpoint_layers


class LuminaNext(Backbone):
    name = "lumina-next"
    pipeline_cls = "LuminaPipeline"
    transformer_cls = "LuminaNextDiT2DModel"
    block_cls = "LuminaNextDiTBlock"
    loads_lora = False  # LuminaPipeline has no LoRA loader: LoRA runs export a fused pipeline
    prompt_kwargs = {"clean_caption": False}
    unused_params = ("pad_token",)  # LuminaNextDiT2DModel.forward never reads it; DDP fails on gradient-less params

    def predict(self, transformer, x, sigma, emb, mask):
        model = getattr(transformer, "module", transformer)
        # exactly what LuminaPipeline feeds at this size: RoPE scaled by sqrt(area / default area) (its default
        # scaling_watershed=1.0 means the linear factor at every t) and proportional attention on the default length
        default = model.config.sample_size  # the default image size in latent pixels
        factor = math.sqrt(x.shape[-2] * x.shape[-1]) / default
        rope = _rope(model.head_dim, factor, str(x.device))
        attn = {"base_sequence_length": (default * 8 // 16) ** 2}
        out = transformer(
            hidden_states=x,
            timestep=1 - sigma,
            encoder_hidden_states=emb,
            encoder_mask=mask,
            image_rotary_emb=rope,
            cross_attention_kwargs=attn,
            return_dict=False,
        )[0]
        return -out.chunk(2, dim=1)[0] if model.config.learn_sigma else -out

    def enable_gradient_checkpointing(self, transformer) -> None:
        checkpoint_layers(transformer.layers)  # LuminaNextDiT2DModel has no built-in support


@functools.lru_cache(maxsize=8)
def _rope(head_dim: int, linear_factor: float, device: str):
    """Built once per size and kept on the device: the table is 384x384 complex, too big to copy every step."""
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    return get_2d_rotary_pos_embed_lumina(head_dim, 384, 384, linear_factor=linear_factor, ntk_factor=1.0).to(device)


BACKBONE = LuminaNext()
