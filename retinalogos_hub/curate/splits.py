"""Patient-level, deterministic splits.

Every image of a patient lands in the same split: the split is a function of the patient key only (a salted SHA-256
of `source/patient_id`, or of the image id when the source publishes no patients), so it does not depend on row order,
worker count or which other rows exist. A source's official splits are kept: its official test and validation images
stay where they were published, and its official train images stay in train (or, with `carve_official_train`, give
up the validation fraction of their patients to validation, never to test), so protocols on official splits can be
run on the curated set (the `official_split` column says which split each row came with). Only rows without an
official split are drawn into train/validation/test by hash. When one patient has images in several official splits
the strictest (test > validation > train) is used for all of them. Keys can be linked (an image found
in two sources joins both patients into one group) so a duplicate cannot leak a patient across splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

SPLITS = ("train", "validation", "test")
_RANK = {"train": 1, "validation": 2, "test": 3}  # official splits, strictest wins within a patient group


@dataclass(frozen=True)
class SplitConfig:
    """Patient-level split fractions (values: `splits:` in recipes/curate/default.yaml)."""

    validation: float  # fraction of patients (those without an official split) drawn into validation
    test: float  # fraction drawn into test; the rest is train
    salt: str  # mixed into the patient hash: change it to draw a different, still deterministic, assignment
    carve_official_train: bool  # draw `validation` of a source's official-train patients into validation (never test)

    def __post_init__(self):
        if not (0 <= self.validation and 0 <= self.test and self.validation + self.test < 1):
            raise ValueError(f"validation ({self.validation}) and test ({self.test}) must be >= 0 and sum below 1")


def patient_key(source: str, patient_id: str | None, row_id: str) -> str:
    return f"{source}/{patient_id}" if patient_id else row_id


def hashed_split(key: str, cfg: SplitConfig) -> str:
    u = int.from_bytes(hashlib.sha256(f"{cfg.salt}:{key}".encode()).digest()[:8], "big") / 2**64
    return "test" if u < cfg.test else "validation" if u < cfg.test + cfg.validation else "train"


def assign(
    rows: Iterable[tuple[str, str | None]], links: Iterable[tuple[str, str]], cfg: SplitConfig
) -> dict[str, str]:
    """{patient key: split} for `rows` of (key, official split or None) and `links` of keys that are one patient.

    One pass over the rows and one over their distinct keys: only linked keys enter the union-find (the smallest
    key names a group, so the result is stable across runs and orders), and each group's split is drawn once."""
    parent: dict[str, str] = {}  # linked keys only; any other key is its own group

    def find(k: str) -> str:
        while (p := parent.get(k, k)) != k:
            parent[k] = k = parent.get(p, p)  # path halving
        return k

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    official: dict[str, str] = {}
    root_of: dict[str, str] = {}
    for key, split in rows:
        root = root_of.get(key)
        if root is None:
            root = root_of[key] = find(key) if key in parent else key
        if split in _RANK and _RANK[split] > _RANK.get(official.get(root, ""), 0):
            official[root] = split
    carve = SplitConfig(cfg.validation, 0.0, cfg.salt, False)
    split_of: dict[str, str] = {}
    out = {}
    for key, root in root_of.items():
        split = split_of.get(root)
        if split is None:
            published = official.get(root)
            if published == "train":
                split = "train"
                if cfg.carve_official_train and hashed_split(root, carve) != "train":
                    split = "validation"
            else:
                split = published or hashed_split(root, cfg)
            split_of[root] = split
        out[key] = split
    return out
