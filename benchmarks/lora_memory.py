"""Peak GPU memory of a step-3 LoRA step at 1024 px on the paper's NextDiT-2B (random weights, real sizes).

bf16 autocast, fp32 frozen base, LoRA r=16 on the attention projections (as recipes/lumina-next/step3_hires_sft_lora.yaml),
activation checkpointing per block; cached latents and Gemma-2B-sized embeddings (256 tokens). GPU only.

    python benchmarks/lora_memory.py --json lora_memory.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import nextdit_2b  # noqa: E402  (one definition of the paper's generator for the GPU benchmarks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from peft import LoraConfig, inject_adapter_in_model

    from retinalogos_hub.train import backbones

    dev = torch.device("cuda")
    backbone = backbones.get("lumina-next")
    model = nextdit_2b(args.resolution // 8).to(dev)
    model.requires_grad_(False)
    inject_adapter_in_model(
        LoraConfig(
            r=args.rank,
            lora_alpha=args.rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        ),
        model,
    )
    backbone.enable_gradient_checkpointing(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    side = args.resolution // 8
    lat = torch.randn(args.batch, 4, side, side, device=dev)
    emb = torch.randn(args.batch, 256, 2048, device=dev)
    mask = torch.ones(args.batch, 256, dtype=torch.long, device=dev)
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(args.steps):
        noise, sigma = torch.randn_like(lat), torch.rand(args.batch, device=dev)
        s = sigma.view(-1, 1, 1, 1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            pred = backbone.predict(model, (1 - s) * lat + s * noise, sigma, emb, mask)
        F.mse_loss(pred.float(), noise - lat).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    res = {
        "resolution": args.resolution,
        "batch": args.batch,
        "lora_rank": args.rank,
        "trainable_params": sum(p.numel() for p in params),
        "s_per_step": round((time.perf_counter() - t) / args.steps, 3),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "device": torch.cuda.get_device_name(),
    }
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
