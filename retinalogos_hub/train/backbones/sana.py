"""Sana: SanaPipeline + SanaTransformer2DModel + AutoencoderDC (32x), Gemma-2 last hidden state.

Sampling (SanaPipeline.__call__): the model sees the scheduler timestep (sigma * 1000) times `timestep_scale` and its
output goes to the scheduler unchanged, so it learns noise - x0 directly.
"""

from __future__ import annotations

import torch

from .base import Backbone


class Sana(Backbone):
    name = "sana"
    pipeline_cls = "SanaPipeline"
    transformer_cls = "SanaTransformer2DModel"
    block_cls = "SanaTransformerBlock"
    loads_lora = True
    prompt_kwargs = {"complex_human_instruction": None, "clean_caption": False}

    def multiple(self, pipe) -> int:
        return max(32, super().multiple(pipe))  # SanaPipeline.check_inputs wants sides divisible by 32

    @torch.no_grad()
    def encode_images(self, pipe, pixels):
        vae = pipe.vae
        return (vae.encode(pixels.to(vae.device, vae.dtype)).latent * vae.config.scaling_factor).float()

    def predict(self, transformer, x, sigma, emb, mask):
        model = getattr(transformer, "module", transformer)
        out = transformer(
            hidden_states=x,
            encoder_hidden_states=emb,
            timestep=sigma * 1000 * model.config.timestep_scale,
            encoder_attention_mask=mask,
            return_dict=False,
        )[0]
        return out.chunk(2, dim=1)[0] if out.shape[1] != x.shape[1] else out


BACKBONE = Sana()
