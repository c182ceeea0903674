"""Captioned rows/s: batched (left-padded) vs unbatched transformers generation, same model, rows and settings.

    .venv/bin/python benchmarks/caption_throughput.py [--model tiny:qwen2.5-vl] [--device cpu] [--rows 16] \
        [--batch-size 8]
    .venv/bin/python benchmarks/caption_throughput.py --model Qwen/Qwen2.5-VL-7B-Instruct --device cuda --rows 64 \
        --batch-size 16 --max-new-tokens 256 --image-size 768     # on a GPU (bf16)

Rows are procedural fundus images with varied labels; each row's prompt is the real caption prompt. Both modes call
`TransformersBackend.answer` (processor -> chat template -> generate, greedy) on the same rows, after one warm-up
batch; the backend is built from the shipped `recipes/caption/transformers.yaml` (prompt version and caption length
included) with the options above on top. Greedy outputs are identical, so the ratio is the speed-up of batching
alone. The ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (shared benchmark helpers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny:qwen2.5-vl")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from retinalogos_hub.caption import shipped
    from retinalogos_hub.caption.backends import Item, TransformersBackend
    from retinalogos_hub.caption.prompt import build_prompt
    from retinalogos_hub.demo.fundus import fundus_image

    # the shipped transformers recipe, with this run's model, device and budget on top
    cfg = shipped(
        "transformers",
        f"transformers.model={args.model}",
        f"transformers.device={args.device}",
        f"transformers.max_new_tokens={args.max_new_tokens}",
        f"transformers.batch_size={args.batch_size}",
    )
    be = TransformersBackend(cfg)
    rows = [
        dict(
            id=f"bench/{k}",
            dr_grade=k % 5,
            eye=("left", "right")[k % 2],
            glaucoma=k % 3 == 0,
            dme=int(k % 5 >= 3),
            diseases=["diabetic retinopathy"] if k % 5 else [],
            quality="good",
            age=40.0 + k,
            sex="FM"[k % 2],
        )
        for k in range(args.rows)
    ]
    items = [
        Item(
            r,
            fundus_image(args.image_size, seed=k, dr_grade=r["dr_grade"], eye=r["eye"]),
            build_prompt(r, version=cfg.prompt_version, min_words=cfg.min_words, max_words=cfg.max_words),
        )
        for k, r in enumerate(rows)
    ]
    be.answer(items[: args.batch_size])  # warm-up (allocator, kernels)

    def timed(fn):
        return common.timed(fn, args.device)

    t1, single = timed(lambda: [be.answer([it])[0] for it in items])
    bs = args.batch_size
    tb, batched = timed(lambda: [a for s in range(0, len(items), bs) for a in be.answer(items[s : s + bs])])
    res = {
        "model": args.model,
        "device": args.device,
        "rows": len(items),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "image_size": args.image_size,
        "unbatched_rows_per_s": round(len(items) / t1, 3),
        "batched_rows_per_s": round(len(items) / tb, 3),
        "speedup": round(t1 / tb, 2),
        "same_outputs": single == batched,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
