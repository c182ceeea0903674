"""Tiny random-weight causal LM (Qwen2 architecture, ChatML template) for the purification judge in tests and the demo.

Saved like a Hub chat model: `AutoModelForCausalLM` + `AutoTokenizer.from_pretrained(dir)` with a chat template.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tokenizers import chatml_tokenizer, save


def build(out_dir: Path, seed: int = 0) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tokenizer = chatml_tokenizer()
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    save(tokenizer, out_dir)
