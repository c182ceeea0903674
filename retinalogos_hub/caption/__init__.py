"""Captioning: label-grounded captions for fundus rows (template, transformers VLM, or an OpenAI-compatible server).

`caption_dataset(in_dir, out_dir, backend=...)` reads a curated dataset directory and writes `schema.CAPTIONED`.
"""

from .run import CaptionResult, caption_dataset, merge_shards

__all__ = ["CaptionResult", "caption_dataset", "merge_shards"]
