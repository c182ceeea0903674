"""Step 2 of RetinaLogos: purify caption-image pairs with a frozen CLIP and a frozen LLM before high-resolution SFT.

Per row, three verdicts:
  1. CLIP alignment of the whole caption: every sentence (a sentence longer than the text window in word windows) is
     scored against the image by any transformers CLIP/SigLIP model (Hub id, path or `tiny:clip`; a long-context port
     such as Long-CLIP widens the window), and the sentence cosines are aggregated by the recipe (`mean` | `min`) into
     `purify_score`; each sentence's score is kept in `purify_sentences`, so a user sees which one failed.
     `clip.segments: truncate` is the old behaviour (the caption cut at the window: 77 tokens, ~55 words for CLIP).
     Keep thresholds: absolute, and per source a percentile or a z-score (generic CLIP cosines on fundus images are
     nearly constant, so ranking within a source is what separates pairs); the summary reports each source's
     distribution.
  2. The caption guard (`retinalogos_hub.caption.guard.check`): label contradictions found by rules (ICDR, laterality,
     glaucoma, DME, AMD), on the prose and on `caption_fields`.
  3. An LLM judge reading the caption against the labels. A local causal LM (`judge.backend: lm`) is constrained to
     the two answers: the log-odds of "KEEP" vs "DROP" after the prompt, computed on the answer positions only
     (left-padded batches, `logits_to_keep`). An OpenAI-compatible endpoint (`judge.backend: openai`: vLLM, SGLang,
     TGI, ...) answers in text, "KEEP" / "DROP: reason" or JSON {"keep": bool, "reason": str}, with
     `judge.concurrency` requests in flight.
Device, dtype and batch size of both models are recipe keys. Every input row is written out with `purify_score`,
`purify_keep`, `purify_reason` (None when kept, else every failed check) and `purify_sentences`. Rows without a
caption (failed captioning) are dropped with the reason "uncaptioned: <why>" and counted (`refuse_uncaptioned` stops
instead).

Resumable: scores are committed every `chunk_rows` rows under `OUT/.work/purify/<fingerprint of the scoring settings
and input>/`; a killed run picks up at the first missing chunk, and the keep rule is applied to all scores at the end.
The result holds `OUT/retinalogos.json` (stage-output contract).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from datasets import Features, List, Value

from . import stage
from .config import load_config
from .errors import HubError, InputError, OfflineError
from .models import resolve, resolve_device
from .schema import CAPTIONED, PURIFIED, PURIFY_COLUMNS, require_columns
from .scorers import ClipScorer

# Beside schema.PURIFY_COLUMNS: every scored segment (sentence or window) with its cosine, so a user sees which failed.
PURIFY_EXTRA = Features({"purify_sentences": List({"text": Value("string"), "score": Value("float32")})})
JUDGE_SYSTEM = "You check captions of colour fundus photographs against the patient's recorded labels."


@dataclass(frozen=True)
class ClipConfig:
    model: str  # any transformers CLIP/SigLIP: Hub id, local path or tiny:clip (required: no random default)
    batch_size: int  # captions (with all their sentences) per forward
    device: Optional[str]  # cpu, cuda, cuda:1; null: cuda when available, else cpu
    dtype: Literal["float32", "float16", "bfloat16"]  # weights and pixels (float16/bfloat16 on a GPU)
    segments: Literal["sentences", "truncate"]  # sentences: score every sentence (windows for long ones); truncate:
    # the whole caption cut at the text window (77 tokens for CLIP: only the first ~55 words are read)
    aggregate: Literal["mean", "min"]  # how sentence scores make the row's purify_score


@dataclass(frozen=True)
class JudgeConfig:
    backend: Literal["lm", "openai", "none"]  # lm: local causal LM, constrained KEEP/DROP; openai: a served model
    model: str  # lm: Hub id / path / tiny:lm; openai: the served model name
    base_url: Optional[str]  # openai backend, e.g. http://localhost:8000/v1 (null for lm)
    api_key_env: str  # name of the variable holding the key (the key itself never goes in a recipe)
    batch_size: int  # lm: rows per forward
    max_new_tokens: int  # openai backend: room for "DROP: reason"
    prompt: str  # the user message; {labels} and {caption} are filled in per row
    device: Optional[str]  # lm: cpu, cuda, cuda:1; null: cuda when available, else cpu
    dtype: Literal["float32", "float16", "bfloat16"]  # lm weights
    concurrency: int  # openai: requests in flight at once


@dataclass(frozen=True)
class KeepRule:
    min_clip_score: Optional[float]  # absolute cosine below which a pair is dropped (null: not applied)
    min_clip_percentile: Optional[float]  # per source: drop below this percentile (0-100) of the source's scores
    min_clip_zscore: Optional[float]  # per source: drop when (score - source mean) / source std is below this
    guard: bool  # drop rows the caption guard flags
    judge: bool  # drop rows the judge rejects
    judge_margin: float  # lm backend: keep when logp(KEEP) - logp(DROP) >= margin


@dataclass(frozen=True)
class PurifyConfig:
    """Step 2's recipe (`recipes/purify/*.yaml`): one recipe serves every backbone, since purification does not depend
    on the generator."""

    clip: ClipConfig
    judge: JudgeConfig
    keep: KeepRule
    chunk_rows: int  # rows per committed chunk (what a kill can lose at most)

    def __post_init__(self):
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        if self.clip.batch_size < 1 or self.judge.batch_size < 1 or self.judge.concurrency < 1:
            raise ValueError("clip.batch_size, judge.batch_size and judge.concurrency must be >= 1")
        if self.judge.backend == "openai" and not self.judge.base_url:
            raise ValueError("judge.backend 'openai' needs judge.base_url (e.g. http://localhost:8000/v1)")
        missing = [k for k in ("{labels}", "{caption}") if k not in self.judge.prompt]
        if missing:
            raise ValueError(f"judge.prompt must contain {' and '.join(missing)}")
        p = self.keep.min_clip_percentile
        if p is not None and not 0 <= p <= 100:
            raise ValueError(f"keep.min_clip_percentile must be in [0, 100] or null, got {p}")

    def scoring(self) -> dict:
        """The settings the committed scores depend on (not the thresholds, nor batch sizes, devices, concurrency)."""
        c, j = self.clip, self.judge
        judged = self.keep.judge and j.backend != "none"
        return {
            "clip": [c.model, c.dtype, c.segments],
            "judge": [j.backend, j.model, j.base_url, j.prompt, j.dtype, j.max_new_tokens] if judged else None,
            "chunk_rows": self.chunk_rows,
        }


@dataclass
class PurifyResult:
    out: Path
    kept: int
    dropped: int
    summary: list[list] = field(default_factory=list)  # [source, kept, reason, rows], for the CLI table
    distribution: dict[str, dict] = field(default_factory=dict)  # per source: alignment stats and thresholds
    uncaptioned: int = 0  # rows without a caption (dropped, reason "uncaptioned: ...")


def label_text(row: dict) -> str:
    """The labels a judge reads, in words (unknown labels are said to be unknown, never guessed)."""

    def known(v, fmt=str):
        return "unknown" if v is None else fmt(v)

    return "; ".join(
        [
            f"eye: {known(row.get('eye'))}",
            f"diabetic retinopathy grade (ICDR 0-4): {known(row.get('dr_grade'))}",
            f"diabetic macular oedema: {known(row.get('dme'), lambda v: 'present' if v else 'absent')}",
            f"glaucoma: {known(row.get('glaucoma'), lambda v: 'yes' if v else 'no')}",
            f"diseases: {', '.join(row.get('diseases') or []) or 'none recorded'}",
            f"image quality: {known(row.get('quality'))}",
        ]
    )


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """(keep, reason) from a judge's text answer: JSON {"keep": ..., "reason": ...}, or KEEP / DROP: reason.
    keep is None when the answer is neither."""
    text = (text or "").strip()
    match = re.search(r"\{.*\}", text, re.S)
    if match:
        try:
            obj = json.loads(match.group(0))
            if isinstance(obj.get("keep"), bool):
                return obj["keep"], str(obj.get("reason") or "")
            if str(obj.get("verdict", "")).upper() in ("KEEP", "DROP"):
                return obj["verdict"].upper() == "KEEP", str(obj.get("reason") or "")
        except (json.JSONDecodeError, AttributeError):
            pass
    match = re.match(r"\W*(KEEP|DROP)\b[\s:.\-]*(.*)", text, re.I | re.S)
    if match:
        return match.group(1).upper() == "KEEP", match.group(2).strip().splitlines()[0] if match.group(
            2
        ).strip() else ""
    return None, text[:120]


class LMJudge:
    """Constrained judge: the log-odds of the answers "KEEP" vs "DROP" after the chat prompt. Prompts are left-padded
    so every row ends at the same position and only the answer positions are projected onto the vocabulary
    (`logits_to_keep`): one forward over the prompts when both answers are single tokens, else one per answer."""

    ANSWERS = ("KEEP", "DROP")

    def __init__(self, cfg: JudgeConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve(cfg.model, option="judge.model")
        self.device = resolve_device(cfg.device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, cfg.dtype)).eval().to(self.device)
        self.cfg, self.torch = cfg, torch
        self.answer_ids = [self.tokenizer(a, add_special_tokens=False)["input_ids"] for a in self.ANSWERS]
        self.single = all(len(a) == 1 for a in self.answer_ids) and self.answer_ids[0] != self.answer_ids[1]

    def prompt_ids(self, row: dict) -> list[int]:
        user = self.cfg.prompt.format(labels=label_text(row), caption=row["caption"])
        if self.tokenizer.chat_template:
            messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(f"{JUDGE_SYSTEM}\n{user}\nAnswer:")["input_ids"]

    def _last_logp(self, seqs: list[list[int]], keep: int):
        """log-softmax of the last `keep` positions of each left-padded sequence: (N, keep, vocab)."""
        torch = self.torch
        width = max(map(len, seqs))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # positions as if unpadded
        ids, mask, pos = ids.to(self.device), mask.to(self.device), pos.to(self.device)
        with torch.inference_mode():
            try:
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            except TypeError:  # a model without logits_to_keep
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        return logits[:, -keep:].float().log_softmax(-1).cpu()

    def log_odds(self, rows: list[dict]) -> list[float]:
        prompts = [self.prompt_ids(r) for r in rows]
        if self.single:
            logp = self._last_logp(prompts, 1)[:, 0]
            (k,), (d,) = self.answer_ids
            return [round(float(logp[i, k] - logp[i, d]), 4) for i in range(len(rows))]
        keep = max(map(len, self.answer_ids)) + 1
        seqs = [p + a for p in prompts for a in self.answer_ids]
        logp = self._last_logp(seqs, keep)
        scores = []
        for i in range(len(seqs)):
            ans = self.answer_ids[i % 2]
            first = keep - len(ans) - 1  # the position that predicts the answer's first token
            scores.append(float(sum(logp[i, first + u, t] for u, t in enumerate(ans))))
        return [round(scores[2 * j] - scores[2 * j + 1], 4) for j in range(len(rows))]

    def __call__(self, rows: list[dict]) -> list[dict]:
        return [{"odds": o} for o in self.log_odds(rows)]


class OpenAIJudge:
    """A served judge: `concurrency` requests in flight (the server batches them), answers parsed by parse_verdict."""

    def __init__(self, cfg: JudgeConfig):
        from openai import OpenAI

        self.cfg = cfg
        self.client = OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "EMPTY", max_retries=2)

    def __call__(self, rows: list[dict]) -> list[dict]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(self._one, rows))

    def _one(self, row: dict) -> dict:
        import openai

        user = self.cfg.prompt.format(labels=label_text(row), caption=row["caption"])
        try:
            reply = self.client.chat.completions.create(
                model=self.cfg.model,
                temperature=0,
                max_tokens=self.cfg.max_new_tokens,
                messages=[{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}],
            )
        except openai.APIConnectionError:
            raise OfflineError(
                f"judge.base_url {self.cfg.base_url} is unreachable",
                hint="start the server (e.g. `vllm serve MODEL`) or use judge.backend=lm with a local model",
            ) from None
        except openai.AuthenticationError as e:  # its text can echo part of the key: not printed
            raise HubError(
                f"judge.base_url {self.cfg.base_url} refused the API key (HTTP {e.status_code})",
                hint=f"set {self.cfg.api_key_env} to a key this server accepts",
            ) from None
        keep, reason = parse_verdict(reply.choices[0].message.content or "")
        if keep is None:
            return {"keep": False, "reason": f"judge answer not KEEP/DROP: {reason!r}"}
        return {"keep": keep, "reason": "" if keep else f"judge: {reason or 'DROP'}"}


def _captioned(caption) -> bool:
    return bool(caption and str(caption).strip())


def _chunk(ds, start: int, end: int, cfg: PurifyConfig, clip: ClipScorer, judge) -> list[dict]:
    """Scores of rows start..end: per-sentence CLIP cosines and the judge's answer (rows without a caption: none).
    The keep decision is made later, over all rows, so per-source thresholds see every score."""
    part = ds.select(range(start, end))
    todo = [i for i, c in enumerate(part["caption"]) if _captioned(c)]
    scores: dict[int, dict] = {}
    for b in range(0, len(todo), cfg.clip.batch_size):
        idx = todo[b : b + cfg.clip.batch_size]
        rows = part.select(idx)
        images = list(rows["image"])
        if any(im is None for im in images):
            bad = rows[[im is None for im in images].index(True)]["id"]
            raise InputError(
                f"row {bad} has no image (a licence-stripped export?); re-attach images with `retinalogos attach-images` first"
            )
        captions = list(rows["caption"])
        if cfg.clip.segments == "sentences":
            segs = clip.segment_scores(images, captions)
        else:
            segs = [[(c, s)] for c, s in zip(captions, clip(images, captions))]
        plain = rows.remove_columns("image").to_list()
        judged: list[dict | None] = [None] * len(plain)
        if judge is not None:
            step = cfg.judge.batch_size if cfg.judge.backend == "lm" else len(plain)
            judged = [v for j in range(0, len(plain), step) for v in judge(plain[j : j + step])]
        for i, seg, jv in zip(idx, segs, judged):
            scores[i] = {"sentences": [[t, s] for t, s in seg], "judge": jv}
    return [scores.get(i, {"sentences": None, "judge": None}) for i in range(len(part))]


def purify(
    in_dir: Path, recipe: Path, out_dir: Path, overrides: Sequence[str] = (), *, refuse_uncaptioned: bool = False
) -> PurifyResult:
    """Score every row of caption stage `in_dir` and write all rows, with verdicts, to `out_dir`. Rows without a
    caption (failed captioning) are dropped with the reason "uncaptioned: ..." and counted, or refused with
    `refuse_uncaptioned`."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    cfg = load_config(PurifyConfig, recipe, overrides)
    if not (in_dir / "dataset_info.json").is_file():
        raise InputError(
            f"{in_dir}: not a stage directory (no dataset_info.json); pass the output of `retinalogos caption`"
        )
    if out_dir.resolve() == in_dir.resolve():
        raise InputError(f"--out {out_dir} is the input directory; choose a new folder")
    from datasets import load_from_disk

    run = stage.start("purify", out_dir, cfg, captioned=in_dir)
    ds = load_from_disk(str(in_dir))
    require_columns(ds.column_names, list(CAPTIONED), str(in_dir))
    ours = [*PURIFIED, *PURIFY_EXTRA]
    ds = ds.remove_columns([c for c in ours if c in ds.column_names and c not in CAPTIONED])  # re-purify
    missing = [i for i, c in enumerate(ds["caption"]) if not _captioned(c)]
    if missing and refuse_uncaptioned:
        raise InputError(
            f"{in_dir}: {len(missing)} row(s) without a caption (e.g. {ds[missing[0]]['id']}); retry them with "
            "`retinalogos caption run ... --retry-failed`, or purify without --refuse-uncaptioned to drop them"
        )
    if len(missing) == len(ds):
        raise InputError(f"{in_dir}: no row has a caption; run `retinalogos caption run` on it first")

    # 1. Resume: committed chunks of these scoring settings + input are reused (thresholds may change between runs).
    work = stage.WorkDir(out_dir, "purify", stage.fingerprint(cfg.scoring(), stage.folder_fingerprint(in_dir)))
    with work.lock("purify run"):
        n_chunks = math.ceil(len(ds) / cfg.chunk_rows)
        todo = [k for k in range(n_chunks) if not work.path(f"chunk-{k:06d}.json").is_file()]

        # 2. Score the missing chunks (models load only when there is work).
        if todo:
            clip = ClipScorer(cfg.clip.model, device=resolve_device(cfg.clip.device), dtype=cfg.clip.dtype)
            judge = None  # not loaded (nor asked) when its verdict would be ignored
            if cfg.keep.judge and cfg.judge.backend != "none":
                judge = LMJudge(cfg.judge) if cfg.judge.backend == "lm" else OpenAIJudge(cfg.judge)
            for k in todo:
                scores = _chunk(ds, k * cfg.chunk_rows, min((k + 1) * cfg.chunk_rows, len(ds)), cfg, clip, judge)
                work.commit(f"chunk-{k:06d}.json", json.dumps(scores))

        # 3. Decide every row over all scores (per-source thresholds), then write the stage directory.
        scores = [v for k in range(n_chunks) for v in json.loads(work.path(f"chunk-{k:06d}.json").read_text())]
    plain = ds.select_columns([c for c in ds.column_names if c != "image"]).to_list()
    verdicts, distribution = decide(plain, scores, cfg)
    for col in (*PURIFY_COLUMNS, *PURIFY_EXTRA):
        ds = ds.add_column(col, [v[col] for v in verdicts])
    # extra input columns (e.g. synthetic ones) are kept; the new ones are typed as in the schema
    ds = ds.cast(Features({**ds.features, **PURIFY_COLUMNS, **PURIFY_EXTRA}))
    stage.save_dataset(ds, out_dir)
    stage.WorkDir(out_dir, "purify").remove()  # this recipe's work and any other recipe's left here

    summary = Counter(
        (s, k, reason_category(r)) for s, k, r in zip(ds["source"], ds["purify_keep"], ds["purify_reason"])
    )
    rows = [[s, k, r, n] for (s, k, r), n in sorted(summary.items(), key=lambda x: (x[0][0], not x[0][1], x[0][2]))]
    kept = sum(ds["purify_keep"])
    run.finish(
        rows=len(ds),
        kept=kept,
        dropped=len(ds) - kept,
        uncaptioned=len(missing),
        by_reason={f"{s}/{'kept' if k else 'dropped'}/{r}": n for (s, k, r), n in sorted(summary.items(), key=str)},
        alignment=distribution,
    )
    return PurifyResult(out_dir, kept, len(ds) - kept, rows, distribution, len(missing))


def _stats(values: list[float]) -> dict:
    import numpy as np

    a = np.asarray(values, dtype=float)
    q = np.percentile(a, [5, 25, 50, 75, 95])
    return {
        "rows": len(a),
        "mean": round(float(a.mean()), 4),
        "std": round(float(a.std()), 4),
        "min": round(float(a.min()), 4),
        **{f"p{p}": round(float(v), 4) for p, v in zip((5, 25, 50, 75, 95), q)},
        "max": round(float(a.max()), 4),
    }


def decide(rows: list[dict], scores: list[dict], cfg: PurifyConfig) -> tuple[list[dict], dict[str, dict]]:
    """The verdict of every row from its scores: absolute, per-source percentile and z-score CLIP thresholds, the
    guard and the judge. Returns (verdicts, per-source alignment distribution with the thresholds applied)."""
    import numpy as np

    from .caption.guard import check

    keep = cfg.keep
    agg = min if cfg.clip.aggregate == "min" else (lambda v: sum(v) / len(v))
    row_score = [round(float(agg([x[1] for x in s["sentences"]])), 6) if s["sentences"] else None for s in scores]
    by_source: dict[str, list[float]] = {}
    for r, sc in zip(rows, row_score):
        if sc is not None:
            by_source.setdefault(r["source"], []).append(sc)
    distribution: dict[str, dict] = {}
    for source, values in sorted(by_source.items()):
        d = _stats(values)
        if keep.min_clip_percentile is not None:
            d["percentile_threshold"] = round(float(np.percentile(values, keep.min_clip_percentile)), 6)
        if keep.min_clip_zscore is not None:
            d["zscore_threshold"] = round(d["mean"] + keep.min_clip_zscore * d["std"], 6)
        distribution[source] = d
    verdicts = []
    for r, s, sc in zip(rows, scores, row_score):
        reasons: list[str] = []
        if sc is None:
            why = (r.get("caption_issues") or ["empty caption"])[0]
            reasons.append(f"uncaptioned: {why}")
        else:
            d = distribution[r["source"]]
            if keep.min_clip_score is not None and sc < keep.min_clip_score:
                reasons.append(f"clip: alignment {sc:.3f} < {keep.min_clip_score:g}")
            if keep.min_clip_percentile is not None and sc < d["percentile_threshold"]:
                reasons.append(
                    f"clip: alignment {sc:.3f} < p{keep.min_clip_percentile:g} of {r['source']} "
                    f"({d['percentile_threshold']:.3f})"
                )
            if keep.min_clip_zscore is not None and d["std"] > 0:
                z = (sc - d["mean"]) / d["std"]
                if z < keep.min_clip_zscore:
                    reasons.append(f"clip: alignment z-score {z:.2f} < {keep.min_clip_zscore:g} within {r['source']}")
            if reasons and len(s["sentences"]) > 1:
                k, (text, low) = min(enumerate(s["sentences"]), key=lambda x: x[1][1])
                reasons[-1] += f"; weakest sentence {k + 1} ({low:.3f}): {text[:60]!r}"
            if keep.guard:
                reasons += [f"guard: {issue}" for issue in check(r["caption"], r)]
            jv = s["judge"]
            if keep.judge and jv is not None:
                if "odds" in jv and jv["odds"] < keep.judge_margin:
                    reasons.append(f"judge prefers DROP (log-odds KEEP-DROP {jv['odds']:.2f} < {keep.judge_margin:g})")
                elif "keep" in jv and not jv["keep"]:
                    reasons.append(jv["reason"] if jv["reason"].startswith("judge") else f"judge: {jv['reason']}")
        verdicts.append(
            {
                "purify_score": sc,
                "purify_keep": not reasons,
                "purify_reason": "; ".join(reasons) or None,
                "purify_sentences": [{"text": t, "score": v} for t, v in (s["sentences"] or [])],
            }
        )
    return verdicts, distribution


def reason_category(reason: str | None) -> str:
    """A summary key for a reason: which checks failed (clip / guard / judge / uncaptioned), without the details."""
    if not reason:
        return "-"
    return "+".join(sorted({part.split(":")[0].split(" ")[0] for part in reason.split("; ") if ":" in part}))
