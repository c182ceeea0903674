"""Purified rows/s: the step-2 scorers now vs the implementation they replaced, same models, rows and batch sizes.

    .venv/bin/python benchmarks/purify_throughput.py [--clip tiny:clip] [--judge tiny:lm] [--rows 64] [--device cpu]
    .venv/bin/python benchmarks/purify_throughput.py --clip openai/clip-vit-large-patch14 \
        --judge Qwen/Qwen2.5-7B-Instruct --device cuda --dtype bfloat16 --rows 256     # on a GPU

Rows are procedural fundus images with template captions of the recipe's length (80-200 words). Both sides run on
the same rows after one warm-up batch:
- baseline ("before"): CLIP scores the caption truncated to the text window (one text per row, padded to the
  window), the local judge builds right-padded prompt+answer pairs and takes a full-vocabulary log-softmax over every
  position, in float32 (the old code had no dtype or device settings);
- current ("now"): CLIP scores every sentence (the whole caption; one image pass per row, all sentences in one text
  batch), the judge left-pads, projects only the answer positions (`logits_to_keep`) and runs one forward per row
  when both answers are single tokens, in the recipe's dtype on the chosen device.
It prints rows/s for each side and part and the ratios (now / before); the ratio is what to compare across machines.
The judge's log-odds of both sides are compared too (`max_odds_diff`): the speed-up must not change the verdicts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (shared benchmark helpers)


class BaselineLMJudge:
    """The judge as it was: right padding, both answers appended to every prompt, log-softmax over all positions."""

    def __init__(self, judge):
        self.j = judge

    def log_odds(self, rows: list[dict]) -> list[float]:
        import torch

        j = self.j
        seqs, spans = [], []
        for row in rows:
            prompt = j.prompt_ids(row)
            for ans in j.answer_ids:
                seqs.append(prompt + ans)
                spans.append((len(prompt), len(prompt) + len(ans)))
        width = max(map(len, seqs))
        pad = j.tokenizer.pad_token_id if j.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.inference_mode():
            logp = j.model(input_ids=ids.to(j.device), attention_mask=mask.to(j.device)).logits.float().log_softmax(-1)
        scores = [float(sum(logp[i, t - 1, seqs[i][t]] for t in range(a, b))) for i, (a, b) in enumerate(spans)]
        return [scores[2 * k] - scores[2 * k + 1] for k in range(len(rows))]


def _random_judge(vocab: int) -> str:
    """A folder with a random Qwen2 of `vocab` tokens and the tiny chat tokenizer (its ids are all < vocab)."""
    import tempfile

    from transformers import Qwen2Config, Qwen2ForCausalLM

    from retinalogos_hub.tiny.tokenizers import chatml_tokenizer, save

    out = tempfile.mkdtemp(prefix="purify-bench-judge-")
    tok = chatml_tokenizer()
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    save(tok, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="tiny:clip")
    ap.add_argument("--judge", default="tiny:lm")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="the current side's dtype (the baseline is float32)")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--clip-batch", type=int, default=16)
    ap.add_argument("--judge-batch", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--random-judge-vocab",
        type=int,
        default=0,
        help="replace --judge by a random 2-layer Qwen2 with this vocabulary size (e.g. 151936, Qwen2.5's): the cost "
        "of the full log-softmax grows with the vocabulary, which tiny:lm (a few hundred tokens) hides",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from retinalogos_hub.caption.template import TemplateCaptioner
    from retinalogos_hub.config import load_config, shipped_recipe
    from retinalogos_hub.demo.fundus import fundus_image
    from retinalogos_hub.purify import LMJudge, PurifyConfig
    from retinalogos_hub.scorers import ClipScorer

    def cfg(dtype: str) -> PurifyConfig:
        return load_config(
            PurifyConfig,
            shipped_recipe("purify/tiny.yaml"),
            [
                f"clip.model={args.clip}",
                f"judge.model={args.judge}",
                f"judge.device={args.device}",
                f"judge.dtype={dtype}",
            ],
        )

    if args.random_judge_vocab:
        args.judge = _random_judge(args.random_judge_vocab)
    tc = TemplateCaptioner(seed=0)
    rows = []
    for k in range(args.rows):
        r = dict(id=f"bench/{k}", source="bench", dr_grade=k % 5, eye=("left", "right")[k % 2], glaucoma=k % 3 == 0)
        r |= dict(dme=int(k % 5 >= 3), diseases=["diabetic retinopathy"] if k % 5 else [], quality="good")
        r["caption"] = tc.caption(r)[0]
        rows.append(r)
    images = [fundus_image(args.image_size, seed=k, dr_grade=r["dr_grade"]) for k, r in enumerate(rows)]

    clip_old = ClipScorer(args.clip, device=args.device)
    clip_new = ClipScorer(args.clip, device=args.device, dtype=args.dtype)
    judge_new = LMJudge(cfg(args.dtype).judge)
    judge_old = BaselineLMJudge(LMJudge(cfg("float32").judge))

    def batches(fn, n, items):
        return [v for s in range(0, len(items), n) for v in fn(items[s : s + n])]

    def timed(fn):
        return common.timed(fn, args.device)

    b = args.clip_batch
    pairs = list(zip(images, [r["caption"] for r in rows]))
    old_clip = lambda ps: clip_old([p[0] for p in ps], [p[1] for p in ps])  # noqa: E731
    new_clip = lambda ps: clip_new.segment_scores([p[0] for p in ps], [p[1] for p in ps])  # noqa: E731
    for fn in (old_clip, new_clip):  # warm-up
        fn(pairs[:b])
    judge_old.log_odds(rows[: args.judge_batch])
    judge_new.log_odds(rows[: args.judge_batch])
    t_clip_old, _ = timed(lambda: batches(old_clip, b, pairs))
    t_clip_new, segs = timed(lambda: batches(new_clip, b, pairs))
    t_judge_old, odds_old = timed(lambda: batches(judge_old.log_odds, args.judge_batch, rows))
    t_judge_new, odds_new = timed(lambda: batches(judge_new.log_odds, args.judge_batch, rows))
    n = len(rows)
    before, now = t_clip_old + t_judge_old, t_clip_new + t_judge_new
    res = {
        "clip": args.clip,
        "judge": args.judge,
        "device": args.device,
        "dtype_now": args.dtype,
        "rows": n,
        "mean_words": round(sum(len(r["caption"].split()) for r in rows) / n, 1),
        "mean_sentences_scored": round(sum(map(len, segs)) / n, 1),
        "clip_rows_per_s_before": round(n / t_clip_old, 2),
        "clip_rows_per_s_now": round(n / t_clip_new, 2),
        "judge_rows_per_s_before": round(n / t_judge_old, 2),
        "judge_rows_per_s_now": round(n / t_judge_new, 2),
        "rows_per_s_before": round(n / before, 2),
        "rows_per_s_now": round(n / now, 2),
        "clip_ratio": round(t_clip_old / t_clip_new, 2),
        "judge_ratio": round(t_judge_old / t_judge_new, 2),
        "ratio": round(before / now, 2),
        "max_odds_diff": round(max(abs(a - b) for a, b in zip(odds_old, odds_new)), 4),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
