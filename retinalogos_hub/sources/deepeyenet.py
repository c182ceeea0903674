"""DeepEyeNet (Huang et al., WACV 2021): retinal images with clinical keywords and a one-line clinical description.

Layout: `DeepEyeNet_{train,valid,test}.json`, each a list of `{"<image path>": {"keywords": "...",
"clinical-description": "..."}}`, the paths relative to the JSON's folder (e.g. `eyenet0420/train_set/xxx.jpg`).
The set mixes colour fundus photos with angiograms: curation's FOV check rejects what has no colour fundus field, and
the keywords say which is which. The images unpack as `eyenet0420/{train_set,val_set,test_set}/` beside the JSON
files; the paths in the JSON are tried first, then the bare file name. Cleaned re-releases name the validation file
`DeepEyeNet_val.json` or spell the key `Keywords` (sometimes a list): both are accepted.
Layout facts: FLAIR (github.com/jusiro/FLAIR `local_data/prepare_partitions.py`, `adequate_06_eyenet`: the three JSON
names, `keywords`, `clinical-description`) and public DeepEyeNet loaders found with `find_string` (`eyenet0420/
DeepEyeNet_train.json`, `eyenet0420/{train_set,val_set,test_set}/`, `DeepEyeNet_val.json`, `"Keywords": [...]`); the
path lookup and the two spellings were added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import (
    Record,
    SourceConfig,
    SourceInfo,
    image_index,
    iter_images,
    locate,
    matched,
    read_text,
    require_dir,
)
from .vocab import from_keywords

PARTS = (
    ("train", ("DeepEyeNet_train.json",)),
    ("validation", ("DeepEyeNet_valid.json", "DeepEyeNet_val.json")),
    ("test", ("DeepEyeNet_test.json",)),
)


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
    for split, names in PARTS:
        labels = locate(root, "deepeyenet", *names, required=split == "train")
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
                keywords = meta.get("keywords", meta.get("Keywords", ""))
                keywords = ", ".join(map(str, keywords)) if isinstance(keywords, list) else keywords
                rows.append({"image": image, "keywords": keywords, "text": meta.get("clinical-description", "")})
        index = _index(labels.parent)
        for row, path in matched(cfg, labels, rows, index, _image_key(index), first_line=1):
            keywords, text = str(row["keywords"]).strip(), str(row["text"]).strip()
            yield {
                "path": str(path),
                "source_id": f"{split}-{path.stem}",
                "diseases": [d for d in from_keywords(keywords) if d != "other"],
                "findings": "; ".join(x for x in (keywords, text) if x) or None,
                "split": split,
            }


def _index(folder: Path) -> dict[str, Path]:
    """The images below the JSON's folder, by name and stem and by their path relative to it (names repeat across
    train_set/, val_set/ and test_set/)."""
    index = image_index(folder, recursive=True)
    for p in iter_images(folder):
        index.setdefault(p.relative_to(folder).as_posix(), p)
    return index


def _image_key(index: dict[str, Path]):
    def key(row: dict) -> str:
        rel = str(row["image"]).replace("\\", "/").lstrip("./")
        return rel if rel in index else Path(rel).name

    return key
