"""What every backbone provides to the trainer: load, encode captions, encode images, predict the flow velocity.

One convention inside the trainer, whatever the family: sigma in [0, 1] is the noise level,
`x_sigma = (1 - sigma) * x0 + sigma * noise`, and `predict` returns the velocity d x / d sigma = noise - x0, which is
exactly what each pipeline hands to `FlowMatchEulerDiscreteScheduler.step` (the scheduler integrates sigma 1 -> 0).
Each backbone file maps that to its own model timestep and output sign, read from its pipeline's sampling loop.
"""

from __future__ import annotations

import abc
import functools

import torch

from ...errors import ConfigError
from ...models import resolve


class Backbone(abc.ABC):
    name: str
    pipeline_cls: str  # diffusers class name, also what model_index.json names
    transformer_cls: str  # the transformer class `load` checks the checkpoint holds
    block_cls: str  # the repeated transformer block: the unit FSDP wraps (shards and gathers) one at a time
    loads_lora: bool  # pipe.load_lora_weights exists for this family
    prompt_kwargs: dict = {}  # extra encode_prompt arguments
    unused_params: tuple[str, ...] = ()  # declared by the model but never used in forward: kept frozen for DDP

    def load(self, ref: str, option: str = "model.base_model"):
        import diffusers

        path = resolve(ref, option=option)
        pipe = getattr(diffusers, self.pipeline_cls).from_pretrained(path)
        if type(pipe.transformer).__name__ != self.transformer_cls:
            raise ConfigError(
                f"{option}: {ref!r} holds a {type(pipe.transformer).__name__}, not a {self.transformer_cls} "
                f"(model.backbone is {self.name!r})"
            )
        return pipe

    @torch.no_grad()
    def encode_prompts(self, pipe, captions: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeds [B, L, D], mask [B, L]) exactly as the pipeline computes them for generation."""
        emb, mask, *_ = pipe.encode_prompt(
            captions,
            do_classifier_free_guidance=False,
            device=pipe.text_encoder.device,
            max_sequence_length=max_length,
            **self.prompt_kwargs,
        )
        return emb.float(), mask

    @torch.no_grad()
    def encode_images(self, pipe, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> scaled latents, the inverse of the pipeline's decode."""
        vae = pipe.vae
        dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        # the mean, not a sample: cached latents are reused for every epoch, so a frozen sample would be a bias
        return ((dist.mean - shift) * vae.config.scaling_factor).float()

    def multiple(self, pipe) -> int:
        """Image sides must be multiples of this: the VAE downsample times the transformer patch size."""
        return int(pipe.vae_scale_factor * pipe.transformer.config.patch_size)

    @abc.abstractmethod
    def predict(self, transformer, x: torch.Tensor, sigma: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor):
        """The velocity noise - x0 at noise level sigma, in this family's own timestep and sign convention."""

    def enable_gradient_checkpointing(self, transformer) -> None:
        transformer.enable_gradient_checkpointing()


def checkpoint_layers(layers) -> None:
    """Activation checkpointing for models without diffusers' built-in support (wraps each block's forward)."""
    from torch.utils.checkpoint import checkpoint

    for layer in layers:
        forward = layer.forward

        @functools.wraps(forward)
        def wrapped(*args, _f=forward, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_f, *args, use_reentrant=False, **kwargs)
            return _f(*args, **kwargs)

        layer.forward = wrapped
