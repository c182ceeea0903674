"""Captioning: label-grounded captions for fundus rows (template, transformers VLM, or an OpenAI-compatible server).

`caption_dataset(in_dir, out_dir, backend=...)` reads a curated dataset directory and writes `schema.CAPTIONED`.
Modules: `template` (TemplateCaptioner, no model), `guard` (label-consistency check), `prompt` (versioned Jinja
prompts in `prompts/`, JSON schema, answer parsing), `backends` (template / transformers / openai), `shards`
(append-only resumable shard files), `run` (the job: shard -> caption -> commit -> merge).
"""

from .run import CaptionResult, caption_dataset, merge_shards

__all__ = ["CaptionResult", "caption_dataset", "merge_shards"]
