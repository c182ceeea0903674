"""Dataset and model cards: stats computed from the data, rendered with jinja2 from `dataset_cards/` and `model_cards/`.

The YAML header is built with huggingface_hub's `DatasetCardData` / `ModelCardData`; `configs` and `dataset_info`
come from datasets' own `MetadataConfigs` / `DatasetInfosDict`, so `load_dataset(dir, config)` reads the export offline.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from datasets import Dataset, DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from .. import SHIPPED
from ..licenses import FIELDS, TIER_NAMES, license_for
from .export import DEFAULT_CONFIG, SPLITS, Export, data_files

DATASET_TEMPLATE = SHIPPED / "dataset_cards" / "dataset_card.md.j2"
CHART = "assets/label_distribution.png"
GATING_TEXT = (
    "These are medical images with clinical labels. Although the sources are de-identified public datasets, by "
    "accessing them you agree to use the data for research only, not for clinical diagnosis or treatment decisions, not to "
    "attempt to re-identify any person, and to respect the licence of every source listed below (several forbid "
    "commercial use or re-distribution of the images)."
)
GATED_FIELDS = {
    "Name": "text",
    "Affiliation": "text",
    "Intended use": "text",
    "I will not use this data for clinical decisions or to re-identify anyone": "checkbox",
}


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _feature_type(feature) -> str:
    if hasattr(feature, "dtype") and type(feature).__name__ == "Value":
        return feature.dtype
    if isinstance(feature, dict):
        return "struct{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feature.items()) + "}"
    inner = getattr(feature, "feature", None)
    return f"list<{_feature_type(inner)}>" if inner is not None else type(feature).__name__


def _counts(values, order=None) -> dict[str, int]:
    c = Counter("unknown" if v is None else str(v) for v in values)
    keys = [str(k) for k in order if str(k) in c] if order else sorted(k for k in c if k != "unknown")
    return {**{k: c[k] for k in keys}, **({"unknown": c["unknown"]} if "unknown" in c else {})}


def label_stats(ds: Dataset) -> dict[str, dict[str, int]]:
    diseases = Counter(d for ds_ in ds["diseases"] for d in (ds_ or []))
    return {
        "dr_grade": _counts(ds["dr_grade"], range(5)),
        "dme": _counts(ds["dme"], range(3)),
        "glaucoma": _counts(ds["glaucoma"], (False, True)),
        "quality": _counts(ds["quality"], ("good", "usable", "reject")),
        "eye": _counts(ds["eye"], ("left", "right")),
        "diseases": dict(diseases.most_common(12)),
    }


def caption_stats(ds: Dataset) -> dict[str, dict]:
    lengths: dict[str, list[int]] = {}
    for source, caption in zip(ds["source"], ds["caption"]):
        if caption is None:  # a tier that withholds captions
            continue
        n = len(caption.split())
        lengths.setdefault(source, []).append(n)
        lengths.setdefault(DEFAULT_CONFIG, []).append(n)

    def stats(v: list[int]) -> dict:
        a = np.asarray(v)
        return {
            "rows": len(a),
            "min": int(a.min()),
            "mean": round(float(a.mean()), 1),
            "median": round(float(np.median(a)), 1),
            "p95": round(float(np.percentile(a, 95)), 1),
            "max": int(a.max()),
        }

    return {
        k: stats(lengths[k])
        for k in [DEFAULT_CONFIG, *sorted(k for k in lengths if k != DEFAULT_CONFIG)]
        if k in lengths
    }


def label_chart(labels: dict[str, dict[str, int]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [k for k in labels if labels[k]]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.2), squeeze=False)
    for ax, name in zip(axes[0], shown):
        keys, values = list(labels[name]), list(labels[name].values())
        ax.bar(range(len(keys)), values, color="#c8602d")
        ax.set_xticks(
            range(len(keys)),
            keys,
            rotation=45 if name == "diseases" else 0,
            ha="right" if name == "diseases" else "center",
            fontsize=7,
        )
        ax.set_title(name)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})  # no text chunks: published images carry no metadata
    plt.close(fig)
    return path


def dataset_card_data(export: Export, *, pretty_name: str, gated: bool) -> DatasetCardData:
    data = DatasetCardData(
        pretty_name=pretty_name,
        license="other",
        license_name="per-source (see the licence table)",
        language=["en"],
        task_categories=["text-to-image", "image-to-text"],
        tags=["medical", "ophthalmology", "fundus", "retina", "retinalogos"],
        size_categories=[_size_category(export.rows)],
        **({"extra_gated_prompt": GATING_TEXT, "extra_gated_fields": GATED_FIELDS} if gated else {}),
    )
    configs = {}
    infos = {}
    for config, splits in export.configs.items():
        configs[config] = {
            "data_files": data_files(config, splits),
            **({"default": True} if config == DEFAULT_CONFIG else {}),
        }
        split_dict = SplitDict()
        for split, n in splits.items():
            split_dict.add(SplitInfo(name=split, num_bytes=export.nbytes[config][split], num_examples=n))
        folder = export.dir / "data"
        files = folder.glob("*/*.parquet") if config == DEFAULT_CONFIG else (folder / config).glob("*.parquet")
        size = sum(p.stat().st_size for p in files)
        infos[config] = DatasetInfo(
            features=export.features,
            splits=split_dict,
            download_size=size,
            dataset_size=sum(export.nbytes[config].values()),
        )
    DatasetInfosDict(infos).to_dataset_card_data(data)
    MetadataConfigs(configs).to_dataset_card_data(data)
    return data


def loading_snippet(repo_id: str, split: str) -> str:
    return (
        "from datasets import load_dataset\n\n"
        f'ds = load_dataset("{repo_id}", "{DEFAULT_CONFIG}", split="{split}")\n'
        'row = next(r for r in ds if r["caption"])  # a source\'s tier may withhold captions (None)\n'
        'print(row["id"], row["dr_grade"], row["caption"][:80])\n'
        'with_pixels = ds.filter(lambda r: r["image_origin"] is None)  # rows whose image is re-hosted here'
    )


def render_dataset_card(export: Export, repo_id: str, *, gated: bool) -> DatasetCard:
    """Compute the stats from the exported rows, draw the chart into the export and return the card."""
    files = sorted(str(p) for p in (export.dir / "data").glob("*/*.parquet"))
    columns = [c for c in export.features if c != "image"]  # stats never read pixels
    ds = Dataset(pq.ParquetDataset(files).read(columns=columns))
    labels = label_stats(ds)
    label_chart(labels, export.dir / CHART)
    rows_by_source = Counter(ds["source"])
    licences, private = [], []
    for source in sorted(rows_by_source):
        lic = license_for(source)
        licences.append(
            {
                "source": source,
                "rows": rows_by_source[source],
                "license": lic.license,
                "tier": lic.tier,
                "published": ", ".join(f for f in FIELDS if f in lic.publish) or "ids only",
                "commercial": lic.commercial,
                "url": lic.url,
                "citation": lic.citation,
            }
        )
        if lic.private:
            # findings of a private source survive curation only through the PII scrubber (privacy.free_text)
            texts = sum(f is not None for s, f in zip(ds["source"], ds["findings"]) if s == source)
            private.append({"source": source, "scrubbed_texts": texts})
    purify = None
    if "purify_keep" in ds.column_names:
        keep = ds["purify_keep"]
        from ..purify import reason_category  # per-row reasons carry scores: group them by the checks that failed

        reasons = Counter(reason_category(r) for k, r in zip(keep, ds["purify_reason"]) if not k)
        purify = {
            "kept": sum(bool(k) for k in keep),
            "dropped": sum(not k for k in keep),
            "reasons": dict(reasons.most_common()),
        }
    pretty_name = f"RetinaLogos fundus captions ({repo_id.split('/')[-1]})"
    data = dataset_card_data(export, pretty_name=pretty_name, gated=gated)
    first_split = next(iter(export.configs[DEFAULT_CONFIG]))
    return DatasetCard.from_template(
        data,
        template_path=DATASET_TEMPLATE,
        pretty_name=pretty_name,
        repo_name=repo_id.split("/")[-1],
        total_rows=export.rows,
        with_image=export.with_image,
        without_image=export.without_image,
        gating_text=GATING_TEXT,
        loading_snippet=loading_snippet(repo_id, first_split),
        configs=export.configs,
        split_names=[s for s in SPLITS if any(s in v for v in export.configs.values())],
        labels=labels,
        purify=purify,
        caption_stats=caption_stats(ds),
        caption_models=dict(Counter(ds["caption_model"]).most_common()),
        template_captions=sum(m == "template" for m in ds["caption_model"]),
        uncaptioned=export.uncaptioned,
        licences=licences,
        private=private,
        tiers={name: ", ".join(f for f in FIELDS if f in tier) or "ids only" for tier, name in TIER_NAMES.items()},
        schema=[(name, _feature_type(f)) for name, f in export.features.items()],
    )


def python_blocks(card_text: str) -> list[str]:
    """The ```python blocks of a card (tests run them)."""
    return re.findall(r"```python\n(.*?)```", card_text, re.S)
