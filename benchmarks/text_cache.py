"""The text-embedding cache at scale: bytes per row with cached caption embeddings (`data.cache_text: true`) against
cached captions encoded every step (`false`), and what on-the-fly encoding costs per step, for each backbone.

Measured on the tiny backbones (real captions from the template captioner, so real token counts), side by side in one
process with interleaved rounds; the full-size figures scale the measured token counts by each real text encoder's
width (Gemma-2B 2048, Gemma-2-2B 2304) in float16.

    OMP_NUM_THREADS=1 python benchmarks/text_cache.py --steps 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import ours  # noqa: E402  (the same set-up-once runner the step benchmark times)

ROOT = Path(__file__).resolve().parents[1]
REAL_WIDTH = {"lumina-next": 2048, "lumina2": 2304, "sana": 2304}  # text encoder hidden size of the real model


def captioned(out: Path, n: int) -> Path:
    import datasets

    from retinalogos_hub.caption.template import TemplateCaptioner
    from retinalogos_hub.demo.fundus import fundus_image

    cap, rows = TemplateCaptioner(seed=0), []
    for i in range(n):
        labels = {
            "id": f"x/{i}",
            "eye": ("left", "right")[i % 2],
            "dr_grade": i % 5,
            "dme": None,
            "glaucoma": None,
            "diseases": [],
            "findings": None,
            "quality": None,
        }
        caption, _ = cap.caption(labels)
        rows.append({"image": fundus_image(32, seed=i, dr_grade=i % 5), "caption": caption})
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    return out


def bytes_per_row(recipe) -> dict:
    cache = recipe.batches.cache
    text = sum(len(b) for b in cache["text"]) if "text" in cache.column_names else 0
    caption = sum(len(c.encode()) for c in cache["caption"]) if "caption" in cache.column_names else 0
    tokens = sum(s[0] for s in cache["text_shape"]) / len(cache) if "text_shape" in cache.column_names else None
    return {"text_bytes": text / len(cache), "caption_bytes": caption / len(cache), "tokens": tokens}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import logging

    logging.disable(logging.INFO)
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = captioned(Path(tmp) / "data", args.rows)
        for bb in REAL_WIDTH:
            recipe = ROOT / f"recipes/tiny/{bb}/step1_pretrain_full.yaml"
            runs = {}
            for cached in (True, False):
                r, step = ours(recipe, data, Path(tmp) / f"{bb}-{cached}", args.steps, 2, [f"data.cache_text={cached}"])
                step(3)  # warm-up
                runs[cached] = (r, step)
            times = {True: [], False: []}
            for _ in range(args.rounds):  # interleaved: machine load hits both alike
                for cached in (True, False):
                    times[cached].append(runs[cached][1](args.steps))
            with_text, without = bytes_per_row(runs[True][0]), bytes_per_row(runs[False][0])
            tokens = with_text["tokens"]
            results[bb] = {
                "tokens_per_caption": tokens,
                "tiny_text_bytes_per_row_cached": round(with_text["text_bytes"]),
                "caption_bytes_per_row_uncached": round(without["caption_bytes"]),
                "full_size_text_bytes_per_row_cached_fp16": round(tokens * REAL_WIDTH[bb] * 2),
                "s_per_step_cached": round(statistics.median(times[True]), 5),
                "s_per_step_encoding": round(statistics.median(times[False]), 5),
                "encoding_cost_ratio": round(statistics.median(b / a for a, b in zip(times[True], times[False])), 3),
            }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
