"""`CurateConfig`: every knob of a curation run, loadable from YAML (`recipes/curate/default.yaml`) with overrides."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from .dedup import DedupConfig
from .fov import FovConfig
from .splits import SplitConfig

WORK_VERSION = 3  # bump when a work row's content changes, so stale work is not reused (2: orientation, 3: disc side)


@dataclass
class CurateConfig:
    size: int = 512  # side in pixels of the stored FOV square
    format: str = "jpeg"  # "jpeg" | "png": how curated images are stored
    jpeg_quality: int = 95
    commit_every: int = 64  # work rows per committed part file (what a kill can lose at most, per run)
    fov: FovConfig = field(default_factory=FovConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    sources: dict = field(default_factory=dict)  # per-source adapter options, e.g. {eyepacs: {on_bad_files: warn}}
    # sources whose cameras mark upright photos with a rim notch: a photo without one may have been taken through a
    # condensing lens (rotated 180 degrees) and is turned back when its optic disc is clearly on the wrong side for
    # the labelled eye (`process.orient`). Other cameras have no such mark: leave their sources out.
    rotate_unnotched: list[str] = field(default_factory=lambda: ["eyepacs"])

    def __post_init__(self):
        if self.format not in ("jpeg", "png"):
            raise ValueError(f"format must be 'jpeg' or 'png', got {self.format!r}")
        if not 16 <= self.size <= 8192:
            raise ValueError(f"size must be in 16..8192, got {self.size}")
        if self.commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {self.commit_every}")

    def fingerprint(self) -> str:
        """Hash of what decides a work row's content: finished work is reused only when it matches."""
        keys = {"v": WORK_VERSION, "size": self.size, "format": self.format, "q": self.jpeg_quality, "fov": asdict(self.fov),
                "rotate": sorted(self.rotate_unnotched)}
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
