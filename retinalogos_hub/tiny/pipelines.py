"""Tiny random-weight diffusers pipelines with the real architectures (CPU demo and tests).

Shapes follow the real checkpoints scaled down: Lumina-Next (NextDiT, Gemma text encoder read at hidden_states[-2],
SDXL-style AutoencoderKL with an 8x downsample, which LuminaPipeline hard-codes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .tokenizers import gemma_tokenizer


def _tiny_vae(**extra):
    from diffusers import AutoencoderKL

    # 4 blocks = 3 downsamples = the 8x factor the Lumina pipelines assume
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.13025,  # the SDXL VAE's, as in the paper
        **extra,
    )


def tiny_vae(**extra):
    """The tiny pipelines' VAE architecture (random weights), e.g. to train `tiny:lumina-next-fundus`'s VAE."""
    return _tiny_vae(**extra)


def _tiny_gemma(vocab_size: int, version: int = 1):
    """A 2-layer Gemma (Lumina-Next) or Gemma-2 (Lumina2, Sana) text encoder."""
    import transformers

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
    )
    if version == 1:
        return transformers.GemmaModel(transformers.GemmaConfig(**common))
    return transformers.Gemma2Model(transformers.Gemma2Config(**common, sliding_window=512))


def build_lumina_next(out_dir: Path, seed: int = 0) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, LuminaNextDiT2DModel, LuminaPipeline

    torch.manual_seed(seed)
    tokenizer = gemma_tokenizer()
    text_encoder = _tiny_gemma(len(tokenizer))
    transformer = LuminaNextDiT2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        multiple_of=16,
        norm_eps=1e-5,
        learn_sigma=True,
        qk_norm=True,
        cross_attention_dim=32,  # = the Gemma hidden size
        scaling_factor=1.0,
    )
    # diffusers leaves pad_token as torch.empty (uninitialised memory, at times NaN, which makes every weight
    # comparison and the EMA of that parameter fail at random); NextDiT's reference code draws it from N(0, 0.02)
    torch.nn.init.normal_(transformer.pad_token, std=0.02)
    pipe = LuminaPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_tiny_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )
    pipe.save_pretrained(out_dir)


def build_lumina2(out_dir: Path, seed: int = 0) -> None:
    """Lumina-Image-2.0 family: Lumina2Transformer2DModel + Gemma-2 + AutoencoderKL (shift_factor is required)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    torch.manual_seed(seed)
    tokenizer = gemma_tokenizer()
    transformer = Lumina2Transformer2DModel(
        sample_size=4,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_layers=2,
        num_refiner_layers=1,
        num_attention_heads=4,
        num_kv_heads=2,
        multiple_of=16,
        norm_eps=1e-5,
        scaling_factor=1.0,
        axes_dim_rope=(4, 2, 2),  # sums to the head dim 32 / 4
        axes_lens=(300, 64, 64),
        cap_feat_dim=32,  # = the Gemma-2 hidden size
    )
    pipe = Lumina2Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_tiny_vae(shift_factor=0.0),
        text_encoder=_tiny_gemma(len(tokenizer), version=2),
        tokenizer=tokenizer,
    )
    pipe.save_pretrained(out_dir)


def build_sana(out_dir: Path, seed: int = 0) -> None:
    """Sana family: SanaTransformer2DModel (linear attention) + Gemma-2 + a 3-block (4x) AutoencoderDC."""
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel

    torch.manual_seed(seed)
    tokenizer = gemma_tokenizer()
    transformer = SanaTransformer2DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        num_cross_attention_heads=2,
        cross_attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=32,  # = the Gemma-2 hidden size
        sample_size=8,
        patch_size=1,
    )
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8, 16),
        decoder_block_out_channels=(8, 8, 16),
        encoder_qkv_multiscales=((), (), (5,)),
        decoder_qkv_multiscales=((), (), (5,)),
        encoder_layers_per_block=(1, 1, 1),
        decoder_layers_per_block=(1, 1, 1),
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,  # the real DC-AE f32c32's
    )
    pipe = SanaPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=_tiny_gemma(len(tokenizer), version=2),
        tokenizer=tokenizer,
    )
    pipe.save_pretrained(out_dir)


FUNDUS_VAE = Path(__file__).with_name("weights") / "fundus_vae.safetensors"


def build_lumina_next_fundus(out_dir: Path, seed: int = 0) -> None:
    """`tiny:lumina-next` with a VAE trained on procedural fundus images instead of a random one (the demo's default,
    so its samples show a fundus): `retinalogos_hub/demo/fundus_vae.py` trained the shipped weights."""
    from safetensors.torch import load_file

    from ..errors import InputError

    if not FUNDUS_VAE.is_file():
        raise InputError(f"{FUNDUS_VAE}: missing; rebuild it with `python -m retinalogos_hub.demo.fundus_vae`")
    build_lumina_next(out_dir, seed=seed)
    vae = tiny_vae()
    vae.load_state_dict({k: v.float() for k, v in load_file(str(FUNDUS_VAE)).items()})
    shutil.rmtree(Path(out_dir) / "vae")
    vae.save_pretrained(Path(out_dir) / "vae")
