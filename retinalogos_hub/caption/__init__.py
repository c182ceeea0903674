"""Captioning: label-grounded captions for fundus rows (template, transformers VLM, or an OpenAI-compatible server).

`caption_dataset(in_dir, out_dir, cfg)` reads a curated dataset directory and writes `schema.CAPTIONED`; `cfg` is a
`CaptionConfig` read from a recipe in `recipes/caption/` (`load(path, overrides)`, or `shipped("template")`).
Modules: `config` (CaptionConfig), `template` (TemplateCaptioner, no model), `guard` (label-consistency check),
`prompt` (versioned Jinja prompts in `prompts/`, JSON schema, answer parsing), `backends` (template / transformers /
openai), `shards` (append-only resumable part files), `run` (the job: shard -> caption -> commit -> merge).
"""

from .config import CaptionConfig, load, shipped
from .run import CaptionResult, caption_dataset, merge_shards

__all__ = ["CaptionConfig", "CaptionResult", "caption_dataset", "load", "merge_shards", "shipped"]
