"""Step 2 of RetinaLogos: purify caption-image pairs with a frozen CLIP and a frozen LLM before high-resolution SFT.

Per row, three verdicts:
  1. CLIP alignment: cosine similarity of the image and caption embeddings of any CLIP-family model (Hub id, path or
     `tiny:clip`), computed directly (torchmetrics' CLIPScore breaks on transformers 5). Captions longer than the
     text tower's window (77 tokens for CLIP) are truncated: the score covers their beginning.
  2. The caption guard (`retinalogos_hub.caption.guard.check`): label contradictions found by rules.
  3. An LLM judge reading the caption against the labels. A local causal LM (`judge.backend: lm`) is constrained to
     the two answers: we compare the log-likelihoods of "KEEP" and "DROP" after the prompt, which is robust even for
     small models. An OpenAI-compatible endpoint (`judge.backend: openai`: vLLM, SGLang, TGI, ...) answers in text,
     "KEEP" / "DROP: reason" or JSON {"keep": bool, "reason": str}.
The keep rule and its thresholds live in the recipe (`PurifyConfig`). Every input row is written out with
`purify_score` (the CLIP alignment), `purify_keep` and `purify_reason` (None when kept, else every failed check).

Resumable: verdicts are committed every `chunk_rows` rows under `OUT/.work/purify/<fingerprint of recipe and input>/`;
a killed run picks up at the first missing chunk. The result holds `OUT/retinalogos.json` (stage-output contract).
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

from . import stage
from .config import load_config
from .errors import HubError, InputError, OfflineError
from .models import resolve
from .schema import CAPTIONED, PURIFIED, require_columns
from .scorers import ClipScorer

JUDGE_SYSTEM = "You check captions of colour fundus photographs against the patient's recorded labels."


@dataclass(frozen=True)
class ClipConfig:
    model: str  # any transformers CLIP/SigLIP: Hub id, local path or tiny:clip (required: no random default)
    batch_size: int  # image-caption pairs per forward


@dataclass(frozen=True)
class JudgeConfig:
    backend: Literal["lm", "openai", "none"]  # lm: local causal LM, constrained KEEP/DROP; openai: a served model
    model: str  # lm: Hub id / path / tiny:lm; openai: the served model name
    base_url: Optional[str]  # openai backend, e.g. http://localhost:8000/v1 (null for lm)
    api_key_env: str  # name of the variable holding the key (the key itself never goes in a recipe)
    batch_size: int  # rows per judge call
    max_new_tokens: int  # openai backend: room for "DROP: reason"
    prompt: str  # the user message; {labels} and {caption} are filled in per row


@dataclass(frozen=True)
class KeepRule:
    min_clip_score: float  # cosine similarity below which a pair is dropped
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
        if self.clip.batch_size < 1 or self.judge.batch_size < 1:
            raise ValueError("clip.batch_size and judge.batch_size must be >= 1")
        if self.judge.backend == "openai" and not self.judge.base_url:
            raise ValueError("judge.backend 'openai' needs judge.base_url (e.g. http://localhost:8000/v1)")
        missing = [k for k in ("{labels}", "{caption}") if k not in self.judge.prompt]
        if missing:
            raise ValueError(f"judge.prompt must contain {' and '.join(missing)}")


@dataclass
class PurifyResult:
    out: Path
    kept: int
    dropped: int
    summary: list[list] = field(default_factory=list)  # [source, kept, reason, rows], for the CLI table


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
    """Constrained judge: log-likelihood of each answer after the chat prompt."""

    ANSWERS = ("KEEP", "DROP")

    def __init__(self, cfg: JudgeConfig, margin: float):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve(cfg.model, option="judge.model")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path).eval()
        self.cfg, self.margin, self.torch = cfg, margin, torch
        self.answer_ids = [self.tokenizer(a, add_special_tokens=False)["input_ids"] for a in self.ANSWERS]

    def _prompt_ids(self, row: dict) -> list[int]:
        user = self.cfg.prompt.format(labels=label_text(row), caption=row["caption"])
        if self.tokenizer.chat_template:
            messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(f"{JUDGE_SYSTEM}\n{user}\nAnswer:")["input_ids"]

    def __call__(self, rows: list[dict]) -> list[tuple[bool, str]]:
        torch = self.torch
        seqs, spans = [], []
        for row in rows:
            prompt = self._prompt_ids(row)
            for ans in self.answer_ids:
                seqs.append(prompt + ans)
                spans.append((len(prompt), len(prompt) + len(ans)))
        width = max(map(len, seqs))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):  # right padding: answer positions stay where the prompt put them
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.inference_mode():
            logp = self.model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
        scores = [float(sum(logp[i, t - 1, seqs[i][t]] for t in range(a, b))) for i, (a, b) in enumerate(spans)]
        out = []
        for j in range(len(rows)):
            odds = scores[2 * j] - scores[2 * j + 1]
            keep = odds >= self.margin
            out.append((keep, "" if keep else f"judge prefers DROP (log-odds KEEP-DROP {odds:.2f} < {self.margin:g})"))
        return out


class OpenAIJudge:
    def __init__(self, cfg: JudgeConfig):
        from openai import OpenAI

        self.cfg = cfg
        self.client = OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "EMPTY", max_retries=2)

    def __call__(self, rows: list[dict]) -> list[tuple[bool, str]]:
        import openai

        out = []
        for row in rows:
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
                out.append((False, f"judge answer not KEEP/DROP: {reason!r}"))
            else:
                out.append((keep, "" if keep else f"judge: {reason or 'DROP'}"))
        return out


def _chunk(ds, start: int, end: int, cfg: PurifyConfig, clip: ClipScorer, judge) -> list[dict]:
    from .caption.guard import check

    part = ds.select(range(start, end))
    verdicts = []
    for b in range(0, len(part), cfg.clip.batch_size):
        rows = part.select(range(b, min(b + cfg.clip.batch_size, len(part))))
        images = list(rows["image"])
        if any(im is None for im in images):
            bad = rows[[im is None for im in images].index(True)]["id"]
            raise InputError(
                f"row {bad} has no image (a licence-stripped export?); re-attach images with `retinalogos attach-images` first"
            )
        scores = clip(images, list(rows["caption"]))
        plain = rows.remove_columns("image").to_list()
        judged: list[tuple[bool, str]] = []
        if judge is not None:
            for j in range(0, len(plain), cfg.judge.batch_size):
                judged += judge(plain[j : j + cfg.judge.batch_size])
        for i, row in enumerate(plain):
            reasons = []
            if scores[i] < cfg.keep.min_clip_score:
                reasons.append(f"clip: alignment {scores[i]:.3f} < {cfg.keep.min_clip_score:g}")
            if cfg.keep.guard:
                reasons += [f"guard: {issue}" for issue in check(row["caption"], row)]
            if judge is not None and not judged[i][0]:
                reasons.append(judged[i][1] if judged[i][1].startswith("judge") else f"judge: {judged[i][1]}")
            verdicts.append(
                {"purify_score": scores[i], "purify_keep": not reasons, "purify_reason": "; ".join(reasons) or None}
            )
    return verdicts


def purify(in_dir: Path, recipe: Path, out_dir: Path, overrides: Sequence[str] = ()) -> PurifyResult:
    """Score every row of caption stage `in_dir` and write all rows, with verdicts, to `out_dir`."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    cfg = load_config(PurifyConfig, recipe, overrides)
    if not (in_dir / "dataset_info.json").is_file():
        raise InputError(
            f"{in_dir}: not a stage directory (no dataset_info.json); pass the output of `retinalogos caption`"
        )
    if out_dir.resolve() == in_dir.resolve():
        raise InputError(f"--out {out_dir} is the input directory; choose a new folder")
    from datasets import Features, load_from_disk

    run = stage.start("purify", out_dir, cfg, captioned=in_dir)
    ds = load_from_disk(str(in_dir))
    require_columns(ds.column_names, list(CAPTIONED), str(in_dir))
    ds = ds.remove_columns([c for c in PURIFIED if c in ds.column_names and c not in CAPTIONED])  # re-purify
    missing = [i for i, c in enumerate(ds["caption"]) if not c or not str(c).strip()]
    if missing:
        raise InputError(
            f"{in_dir}: {len(missing)} row(s) without a caption (e.g. {ds[missing[0]]['id']}); run `retinalogos caption` first"
        )

    # 1. Resume: committed chunks of this recipe + input are reused as they are (another recipe works elsewhere).
    work = stage.WorkDir(out_dir, "purify", stage.fingerprint(cfg, stage.folder_fingerprint(in_dir)))
    with work.lock("purify run"):
        n_chunks = math.ceil(len(ds) / cfg.chunk_rows)
        todo = [k for k in range(n_chunks) if not work.path(f"chunk-{k:06d}.json").is_file()]

        # 2. Score the missing chunks (models load only when there is work).
        if todo:
            clip = ClipScorer(cfg.clip.model)
            judge = None  # not loaded (nor asked) when its verdict would be ignored
            if cfg.keep.judge and cfg.judge.backend != "none":
                judge = (
                    LMJudge(cfg.judge, cfg.keep.judge_margin) if cfg.judge.backend == "lm" else OpenAIJudge(cfg.judge)
                )
            for k in todo:
                verdicts = _chunk(ds, k * cfg.chunk_rows, min((k + 1) * cfg.chunk_rows, len(ds)), cfg, clip, judge)
                work.commit(f"chunk-{k:06d}.json", json.dumps(verdicts))

        # 3. Assemble every row with its verdict and write the stage directory.
        verdicts = [v for k in range(n_chunks) for v in json.loads(work.path(f"chunk-{k:06d}.json").read_text())]
    for col in ("purify_score", "purify_keep", "purify_reason"):
        ds = ds.add_column(col, [v[col] for v in verdicts])
    # extra input columns (e.g. synthetic ones) are kept; the new ones are typed as in the schema
    ds = ds.cast(
        Features({**ds.features, **{c: PURIFIED[c] for c in ("purify_score", "purify_keep", "purify_reason")}})
    )
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
        by_reason={f"{s}/{'kept' if k else 'dropped'}/{r}": n for (s, k, r), n in sorted(summary.items(), key=str)},
    )
    return PurifyResult(out_dir, kept, len(ds) - kept, rows)


def reason_category(reason: str | None) -> str:
    """A summary key for a reason: which checks failed (clip / guard / judge), without the per-row details."""
    if not reason:
        return "-"
    return "+".join(sorted({part.split(":")[0].split(" ")[0] for part in reason.split("; ")}))
