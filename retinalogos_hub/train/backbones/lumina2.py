"""Lumina-Image-2.0: Lumina2Pipeline + Lumina2Transformer2DModel, Gemma-2 hidden_states[-2] with a system prompt.

Sampling (Lumina2Pipeline.__call__): the model sees t = 1 - sigma and its output is negated before the Euler step,
so it learns x0 - noise; the VAE latents are (z - shift_factor) * scaling_factor.
"""

from __future__ import annotations

from .base import Backbone


class Lumina2(Backbone):
    name = "lumina2"
    pipeline_cls = "Lumina2Pipeline"
    transformer_cls = "Lumina2Transformer2DModel"
    block_cls = "Lumina2TransformerBlock"
    loads_lora = True

    def predict(self, transformer, x, sigma, emb, mask):
        out = transformer(
            hidden_states=x,
            timestep=1 - sigma,
            encoder_hidden_states=emb,
            encoder_attention_mask=mask,
            return_dict=False,
        )[0]
        return -out


BACKBONE = Lumina2()
