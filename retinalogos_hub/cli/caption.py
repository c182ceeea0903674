"""CLI command `caption` (registered on the shared app): label-grounded captions, sharded and resumable."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._app import app, result
from ._options import InDir, OutDir, Seed, Shard

Backend = Annotated[str, typer.Option("--backend", "-b", help="template (no model) | transformers (local VLM) | openai (OpenAI-compatible server).")]
Model = Annotated[Optional[str], typer.Option("--model", "-m", help="VLM: Hub id, local path or tiny:<name> (transformers, default Qwen/Qwen2.5-VL-7B-Instruct); served model id (openai).", show_default=False)]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Rows per generate() call (transformers).")]
CommitEvery = Annotated[int, typer.Option("--commit-every", help="Commit results to the shard file every K rows (a killed job redoes at most about K rows).")]
Regenerate = Annotated[int, typer.Option("--regenerate-inconsistent", help="Retry captions that contradict the labels up to N times.")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (openai; default OPENAI_BASE_URL).", show_default=False)]
Concurrency = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once (openai).")]
MinWords = Annotated[int, typer.Option("--min-words", help="Shortest caption asked for.")]
MaxWords = Annotated[int, typer.Option("--max-words", help="Longest caption asked for.")]
MaxPixels = Annotated[Optional[int], typer.Option("--max-pixels", help="Downscale images to at most this many pixels before the VLM (e.g. 602112 = 776x776).", show_default=False)]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", help="Generation budget per caption (VLM backends).")]
PromptVersion = Annotated[str, typer.Option("--prompt-version", help="Prompt template caption/prompts/<version>.j2 (stored per row).")]


@app.command("caption")
def caption_run(in_dir: InDir, out: OutDir, backend: Backend = "template", model: Model = None, batch_size: BatchSize = 8,
                shard: Shard = None, commit_every: CommitEvery = 64, regenerate_inconsistent: Regenerate = 0,
                base_url: BaseUrl = None, concurrency: Concurrency = 8, min_words: MinWords = 80, max_words: MaxWords = 200,
                seed: Seed = 0, max_pixels: MaxPixels = None, max_new_tokens: MaxNewTokens = 512,
                prompt_version: PromptVersion = "v1") -> None:
    """Caption every row of a curated dataset (caption, caption_fields, consistency verdict); `merge` as DIR joins shards.

    Reruns resume from the shard files in OUT/shards. With --shard i/N only that share is captioned; the last shard
    to finish merges (or run `retinalogos caption merge --out OUT`). Under `accelerate launch` each process takes its
    part of the rows.

    Examples: retinalogos caption curated --out captioned ;
    retinalogos caption curated --out captioned --backend openai --base-url http://127.0.0.1:8000/v1 --concurrency 32 ;
    accelerate launch --multi_gpu -m retinalogos_hub.cli caption curated --out captioned --backend transformers --shard 0/2
    """
    from ..caption import caption_dataset, merge_shards

    if str(in_dir) == "merge":
        r = merge_shards(out)
    else:
        r = caption_dataset(in_dir, out, backend=backend, model=model, shard=shard, batch_size=batch_size,
                            commit_every=commit_every, regenerate_inconsistent=regenerate_inconsistent, base_url=base_url,
                            concurrency=concurrency, min_words=min_words, max_words=max_words, seed=seed,
                            max_pixels=max_pixels, max_new_tokens=max_new_tokens, prompt_version=prompt_version)
    part = f"shard {shard}" if shard else "this process's share"
    what = "Captioned" if r.merged else f"Captioned {part} (merge with `retinalogos caption merge --out {out}`)"
    result(what, out=r.out, rows=r.rows, flagged=r.flagged)
