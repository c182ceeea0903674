"""Train, once, the tiny fundus VAE that `tiny:lumina-next-fundus` ships with (`tiny/weights/fundus_vae.safetensors`).

The embedded tiny pipelines have random VAEs: whatever their transformer learns, the decoder turns it into noise. This
VAE has the tiny pipelines' architecture (`tiny.pipelines.tiny_vae`) and learns to reconstruct procedural fundus
images (dark surround, round orange field, bright optic disc, vessels), so a transformer trained for a CPU-minute on
its latents decodes to something a person recognises. Run it again to rebuild the weights (about two minutes):

    OMP_NUM_THREADS=1 python -m retinalogos_hub.demo.fundus_vae
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .fundus import fundus_image

WEIGHTS = Path(__file__).resolve().parents[1] / "tiny" / "weights" / "fundus_vae.safetensors"


def images(n: int, size: int, seed: int) -> torch.Tensor:
    """n procedural fundus images in [-1, 1], NCHW: both eyes, every grade, some glaucomatous, some truncated."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = fundus_image(
            size,
            seed=seed * 100_000 + i,
            eye="left" if i % 2 else "right",
            dr_grade=int(rng.integers(5)),
            glaucoma=bool(rng.random() < 0.2),
            notch=bool(rng.random() < 0.5),
        )
        out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1))
    return torch.stack(out)


def train(out: Path = WEIGHTS, *, steps: int = 1500, batch: int = 16, size: int = 64, lr: float = 2e-3, seed: int = 0):
    from safetensors.torch import save_file

    from ..tiny.pipelines import tiny_vae

    torch.manual_seed(seed)
    vae = tiny_vae()
    data = images(512, size, seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(steps):
        x = data[torch.randint(len(data), (batch,))]
        if step % 2:
            x = x.flip(-1)  # mirrored fundus photos are still fundus photos
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
        loss = torch.nn.functional.mse_loss(recon, x) + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in vae.state_dict().items()}, str(out))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--out", type=Path, default=WEIGHTS)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(train(args.out, steps=args.steps))
