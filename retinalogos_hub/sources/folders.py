"""Shared by the adapters of datasets whose labels are their folder names (or a code in the file name): one walk,
one mapping, one error when nothing matched. Not an adapter itself (it is not registered)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import SourceError
from .base import Record, SourceConfig, iter_images, require_dir, split_of

SKIP = re.compile(r"mask|markup|annotation|groundtruth|ground truth|attention|label|manual|vessel|segment", re.I)


def class_folders(
    cfg: SourceConfig,
    source: str,
    classes: dict[str, dict],
    expects: str,
    *,
    split: bool = True,
    skip: re.Pattern = SKIP,
    name_of: Callable[[Path], str] = lambda p: p.parent.name,
) -> Iterator[Record]:
    """One record per image whose class key (`name_of(path)`, lower-cased, default its folder's name) is in `classes`;
    the class's labels go into the record. Split words in the path (train/val/test) give the official split; folders
    matching `skip` (masks, markups, attention maps) are never listed. Source ids carry the split and the class so
    names that restart per folder stay unique."""
    root = require_dir(cfg.root, source)
    n = 0
    for path in iter_images(root):
        rel = path.relative_to(root).parts[:-1]
        if any(skip.search(p) for p in rel):
            continue
        key = name_of(path).strip().lower()
        if key not in classes:
            continue
        # the innermost split word wins: `Fundus_Train_Val_Data/.../Validation/` is validation
        part = next((s for p in reversed(rel) for s in [split_of(_split_word(p))] if s), None) if split else None
        n += 1
        labels = classes[key]
        stem = path.stem.replace(" ", "_")
        yield {
            "path": str(path),
            "source_id": "-".join(x for x in (part, key.replace(" ", "_") if labels.get("_tag") else "", stem) if x),
            "split": part,
            **{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in labels.items() if not k.startswith("_")},
        }
    if not n:
        raise SourceError(f"{source}: {root} does not look like the {source} layout: expected {expects}")


def _split_word(part: str) -> str:
    """'training_set', 'Train', 'REFUGE-Validation400', 'c. Testing Set' -> 'training', 'train', 'validation', ..."""
    for word in re.split(r"[^a-z]+", part.lower()):
        if split_of(word):
            return word
    return ""
