"""Training step cost: our recipe runner against a plain diffusers-style loop, side by side in one process.

CPU mode (default): the tiny Lumina-Next recipe (FlowMatchingRecipe: cached latents/embeddings read from the on-disk
cache, caption dropout, EMA, rich progress bar, step accounting) against the loop of diffusers' example training
scripts (accelerate, AdamW, clipping, EMA) on the same model and batch, already in memory. Reports seconds/step and
the ratio (goal <= 1.1).

GPU mode (`--gpu`): a randomly initialised full-size NextDiT-2B (the paper's: dim 2304, 24 layers, 32 heads / 8 KV
heads, Gemma-2B features) at 512x512 in bf16, samples/s and MFU with cached latents + embeddings against encoding
every batch with a random full-size Gemma-2B and SDXL VAE. Sized to finish in well under 5 minutes on one H100.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py --steps 60 --rounds 3
    python benchmarks/train_step.py --gpu --steps 20            # add --grad-ckpt --batch 8 for the paper's batch
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def tiny_dataset(out: Path, n: int) -> Path:
    import datasets

    from retinalogos_hub.demo.fundus import fundus_image

    rows = [
        {
            "image": fundus_image(32, seed=i, dr_grade=i % 5),
            "caption": f"A colour fundus photograph of the {'left' if i % 2 else 'right'} eye. Diabetic retinopathy grade {i % 5}.",
        }
        for i in range(n)
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    return out


def ours(recipe_path: Path, data: Path, out: Path, steps: int, batch: int, extra: tuple[str, ...] | list[str] = ()):
    """Our runner, set up once; returns a function timing `n` more optimizer steps of its real train()."""
    from retinalogos_hub.config import load_config
    from retinalogos_hub.train import FlowMatchingRecipe, TrainConfig

    cfg = load_config(
        TrainConfig,
        recipe_path,
        [
            f"data.dataset={data}",
            f"output_dir={out}",
            f"train.batch_size={batch}",
            "train.max_steps=1",
            "checkpoint.every=100000000",
            "train.log_every=100000000",
            "data.caption_dropout=0.0",
            *extra,
        ],
    )
    recipe = FlowMatchingRecipe(cfg)
    recipe.setup()

    def timed(n: int) -> float:
        recipe.max_steps = recipe.step + n  # extend the set-up run in place
        t = time.perf_counter()
        recipe.train()
        return (time.perf_counter() - t) / n

    return recipe, timed


def baseline(recipe):
    """The loop of diffusers' example training scripts (accelerate accumulate/backward/clip, AdamW, constant LR, EMA,
    tqdm with the loss) on a copy of the same transformer, with one batch already in memory: the floor we compare to."""
    import copy

    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    from retinalogos_hub.train.data import pad_texts

    cfg, backbone, acc = recipe.cfg, recipe.backbone, recipe.acc
    model = copy.deepcopy(acc.unwrap_model(recipe.transformer)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay, eps=cfg.optim.eps
    )
    sched = get_scheduler("constant", opt)
    model, opt, sched = acc.prepare(model, opt, sched)
    ema = EMAModel(params, decay=cfg.ema.decay) if cfg.ema else None
    latents, texts = recipe.batches.next()
    emb, mask = pad_texts(texts)

    def timed(n: int) -> float:
        bar = tqdm(range(n), disable=True)
        t = time.perf_counter()
        for _ in range(n):
            with acc.accumulate(model):
                noise = torch.randn_like(latents)
                sigma = torch.rand(latents.shape[0])
                s = sigma.view(-1, 1, 1, 1)
                pred = backbone.predict(model, (1 - s) * latents + s * noise, sigma, emb, mask)
                loss = F.mse_loss(pred.float(), noise - latents)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(params, cfg.train.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            if acc.sync_gradients and ema:
                ema.step(params)
            bar.update(1)
            bar.set_postfix(loss=loss.detach().item())
        return (time.perf_counter() - t) / n

    return timed


def cpu(args) -> dict:
    import logging

    logging.disable(logging.INFO)
    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_dataset(Path(tmp) / "data", 16)
        recipe, ours_step = ours(
            root / "recipes/tiny/lumina-next/step1_pretrain_full.yaml", data, Path(tmp) / "run", args.steps, args.batch
        )
        base_step = baseline(recipe)
        ours_step(5), base_step(5)  # warm-up
        ours_t, base_t = [], []
        for _ in range(args.rounds):  # interleaved, so load on a shared machine hits both alike
            ours_t.append(ours_step(args.steps))
            base_t.append(base_step(args.steps))
    o, b = statistics.median(ours_t), statistics.median(base_t)
    ratio = statistics.median(x / y for x, y in zip(ours_t, base_t))  # per round: both saw the same machine load
    return {
        "mode": "cpu",
        "model": "tiny:lumina-next",
        "batch": args.batch,
        "steps": args.steps,
        "rounds": args.rounds,
        "ours_s_per_step": round(o, 5),
        "baseline_s_per_step": round(b, 5),
        "ratio": round(ratio, 3),
    }


def nextdit_2b(sample_size: int):
    """The paper's generator with random weights: NextDiT-2B, dim 2304, 24 layers, 32 heads / 8 KV heads, patch 2,
    Gemma-2B-width cross-attention (FIELD-NOTES section 1)."""
    from diffusers import LuminaNextDiT2DModel

    return LuminaNextDiT2DModel(
        sample_size=sample_size,
        patch_size=2,
        in_channels=4,
        hidden_size=2304,
        num_layers=24,
        num_attention_heads=32,
        num_kv_heads=8,
        multiple_of=256,
        learn_sigma=True,
        qk_norm=True,
        cross_attention_dim=2048,
    )


def gpu(args) -> dict:
    """Full-size NextDiT-2B at 512 (64x64 latents, 1024 tokens), bf16 autocast, fp32 master weights + AdamW."""
    from diffusers import AutoencoderKL
    from transformers import GemmaConfig, GemmaModel

    from retinalogos_hub.train import backbones

    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    backbone = backbones.get("lumina-next")
    model = nextdit_2b(128).to(dev)
    model.requires_grad_(True)
    model.get_parameter("pad_token").requires_grad_(False)
    if args.grad_ckpt:
        backbone.enable_gradient_checkpointing(model)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-6, fused=True)
    # the encoders only matter for the uncached path: random weights, real sizes (Gemma-2B, SDXL VAE)
    gemma = (
        GemmaModel(
            GemmaConfig(
                vocab_size=256000,
                hidden_size=2048,
                intermediate_size=16384,
                num_hidden_layers=18,
                num_attention_heads=8,
                num_key_value_heads=1,
                head_dim=256,
            )
        )
        .to(dev, torch.bfloat16)
        .eval()
    )
    vae = (
        AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            scaling_factor=0.13025,
        )
        .to(dev, torch.bfloat16)
        .eval()
    )
    b, text_len, side = args.batch, args.text_tokens, 512
    pixels = torch.randn(b, 3, side, side, device=dev, dtype=torch.bfloat16)
    ids = torch.randint(0, 256000, (b, text_len), device=dev)
    mask = torch.ones(b, text_len, dtype=torch.long, device=dev)
    with torch.no_grad():
        cached = (
            (vae.encode(pixels).latent_dist.mean * 0.13025).float(),
            gemma(ids, attention_mask=mask, output_hidden_states=True).hidden_states[-2].float(),
        )

    def step(encode: bool):
        if encode:
            with torch.no_grad():
                lat = (vae.encode(pixels).latent_dist.mean * 0.13025).float()
                emb = gemma(ids, attention_mask=mask, output_hidden_states=True).hidden_states[-2].float()
        else:
            lat, emb = cached
        noise = torch.randn_like(lat)
        sigma = torch.rand(b, device=dev)
        s = sigma.view(-1, 1, 1, 1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            pred = backbone.predict(model, (1 - s) * lat + s * noise, sigma, emb, mask)
        loss = F.mse_loss(pred.float(), noise - lat)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    tokens = (side // 8 // 2) ** 2
    d, layers = 2304, 24
    # 6*N*T for the dense layers + attention scores/values (self: T^2, cross: T*text) forward x3 for fwd+bwd
    flops = 6 * n_params * tokens + 3 * layers * 4 * d * (tokens * tokens + tokens * text_len)
    if args.grad_ckpt:
        flops *= 4 / 3  # the recomputed forward
    out = {
        "mode": "gpu",
        "device": torch.cuda.get_device_name(),
        "params": n_params,
        "batch": b,
        "resolution": side,
        "grad_ckpt": args.grad_ckpt,
        "peak_tflops": args.peak_tflops,
    }
    for name, encode in (("cached", False), ("uncached", True)):
        for _ in range(3):
            step(encode)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            step(encode)
        torch.cuda.synchronize()
        sec = (time.perf_counter() - t) / args.steps
        out[name] = {
            "s_per_step": round(sec, 4),
            "samples_per_s": round(b / sec, 2),
            "mfu": round(flops * b / sec / (args.peak_tflops * 1e12), 4),
        }
    out["max_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="full-size NextDiT-2B on CUDA instead of the CPU comparison")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round (GPU: per path)")
    parser.add_argument("--rounds", type=int, default=3, help="CPU: interleaved rounds, the median is reported")
    parser.add_argument("--batch", type=int, default=None, help="batch size (CPU default 2, GPU default 4)")
    parser.add_argument("--text-tokens", type=int, default=192, help="GPU: caption length in Gemma tokens")
    parser.add_argument("--grad-ckpt", action="store_true", help="GPU: activation checkpointing per block")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="GPU: dense bf16 peak (H100 SXM: 989)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    args.batch = args.batch or (4 if args.gpu else 2)  # GPU: 4 fits 80 GB without --grad-ckpt (fp32 master + AdamW)
    res = gpu(args) if args.gpu else cpu(args)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
