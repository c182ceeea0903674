"""Curation: public fundus layouts -> FOV-cropped, quality-scored, deduplicated, patient-split HF dataset directory.

`curate(sources, out)` for one machine (or `shard=(i, N)` per machine, then `merge(shard_outs, out)`); the output is
`datasets.load_from_disk(out)` with `schema.CURATED` features, plus `out/manifest.parquet` accounting for every input.
"""

from .pipeline import CurateResult, curate, merge, parse_shard, parse_sources, shard_of
from .settings import CurateConfig

__all__ = ["CurateConfig", "CurateResult", "curate", "merge", "parse_shard", "parse_sources", "shard_of"]
