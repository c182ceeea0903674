"""Curation: public fundus layouts -> FOV-cropped, quality-scored, deduplicated, patient-split HF dataset directory.

`curate(sources, out, cfg=load_config(CurateConfig))` for one machine (or `shard=(i, N)` per machine, then
`merge(shard_outs, out)`); the output is `datasets.load_from_disk(out)` with `schema.CURATED` features, plus
`out/manifest.parquet` accounting for every input and `out/retinalogos.json` (the provenance: resolved config, source
fingerprints, counts). Resumable work lives under `out/.work/curate/shard-<i>-of-<N>/`.
"""

from .settings import CurateConfig

__all__ = ["CurateConfig", "CurateResult", "curate", "merge", "parse_shard", "parse_sources", "shard_of"]


def __getattr__(name: str):
    # the pipeline is imported on first use: worker processes only need `curate.process`, and the pipeline pulls in
    # `datasets` (~0.75 s and ~100 MB per worker, before its first image)
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
