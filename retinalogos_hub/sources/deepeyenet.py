"""DeepEyeNet (Huang et al., WACV 2021): retinal images with clinical keywords and a one-line clinical description.

Layout: `DeepEyeNet_{train,valid,test}.json`, each a list of `{"<image path>": {"keywords": "...",
"clinical-description": "..."}}`, the paths relative to the JSON's folder (e.g. `eyenet0420/train_set/xxx.jpg`).
The set mixes colour fundus photos with angiograms: curation's FOV check rejects what has no colour fundus field, and
the keywords say which is which.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import Record, SourceConfig, SourceInfo, image_index, locate, matched, read_text, require_dir
from .vocab import from_keywords

PARTS = (("train", "DeepEyeNet_train.json"), ("validation", "DeepEyeNet_valid.json"), ("test", "DeepEyeNet_test.json"))


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="deepeyenet",
    title="DeepEyeNet (keywords + clinical descriptions)",
    expects="DeepEyeNet_{train,valid,test}.json ([{path: {keywords, clinical-description}}]) + the images they name",
    labels=("diseases", "findings", "split"),
    homepage="https://github.com/Jhhuangkay/DeepOpht-Medical-Report-Generation-for-Retinal-Images-via-Deep-Models-and-Visual-Explanation",
    patient_key="none published",
    notes=("keywords -> diseases (free-text vocabulary); keywords + description -> findings",),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "deepeyenet")
    for split, name in PARTS:
        labels = locate(root, "deepeyenet", name, required=split == "train")
        if labels is None:
            continue
        try:
            data = json.loads(read_text(labels))
        except json.JSONDecodeError as e:
            raise InputError(f"{labels} line {e.lineno}: not valid JSON ({e.msg})") from None
        rows = []
        for entry in data if isinstance(data, list) else [data]:
            for image, meta in entry.items() if isinstance(entry, dict) else []:
                meta = meta if isinstance(meta, dict) else {}
                rows.append(
                    {"image": image, "keywords": meta.get("keywords", ""), "text": meta.get("clinical-description", "")}
                )
        index = image_index(labels.parent, recursive=True)
        for row, path in matched(cfg, labels, rows, index, lambda r: Path(r["image"]).name, first_line=1):
            keywords, text = str(row["keywords"]).strip(), str(row["text"]).strip()
            yield {
                "path": str(path),
                "source_id": f"{split}-{path.stem}",
                "diseases": [d for d in from_keywords(keywords) if d != "other"],
                "findings": "; ".join(x for x in (keywords, text) if x) or None,
                "split": split,
            }
