"""`CurateConfig`: every knob of a curation run. The values live in `recipes/curate/default.yaml` (the single source of
truth: `load_config(CurateConfig)` reads it; `key=value` overrides go on top); the class only types and checks them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from ..privacy import PrivacyConfig
from ..stage import fingerprint
from .dedup import DedupConfig
from .fov import FovConfig
from .splits import SplitConfig

WORK_VERSION = 5  # bump when a work row's content changes, so stale work is not reused (2: orientation, 3: disc side,
# 4: mirror and 180-degree pHashes, 5: age bands and private-source protection)


@dataclass(frozen=True)
class CurateConfig:
    DEFAULT_RECIPE: ClassVar[str] = "curate/default.yaml"

    size: int  # side in pixels of the stored FOV square (16..8192)
    format: Literal["jpeg", "png"]  # how curated images are stored
    jpeg_quality: int  # JPEG quality (1..100) when `format` is jpeg
    commit_every: int  # work rows per committed part file (the most a killed run has to redo)
    # sources whose cameras mark upright photos with a rim notch: a photo without one may have been taken through a
    # condensing lens (rotated 180 degrees) and is turned back when its optic disc is clearly on the wrong side for
    # the labelled eye (`process.orient`). Other cameras have no such mark: leave their sources out.
    rotate_unnotched: tuple[str, ...]
    fov: FovConfig  # how the circular fundus field is found (and non-fundus pictures rejected)
    dedup: DedupConfig  # when two images count as one
    splits: SplitConfig  # patient-level train/validation/test fractions
    privacy: PrivacyConfig  # how private sources' ids, ages and free text are protected (retinalogos_hub/privacy.py)
    sources: dict[str, dict[str, Any]]  # per-source adapter options, e.g. {eyepacs: {on_bad_files: warn}}

    def __post_init__(self):
        if self.format not in ("jpeg", "png"):
            raise ValueError(f"format must be 'jpeg' or 'png', got {self.format!r}")
        if not 16 <= self.size <= 8192:
            raise ValueError(f"size must be in 16..8192, got {self.size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {self.commit_every}")
        object.__setattr__(self, "rotate_unnotched", tuple(self.rotate_unnotched))  # a list given in code is fine

    def work_settings(self) -> dict:
        """What decides a work row's content: finished work is reused only when these match."""
        return {
            "version": WORK_VERSION,
            "size": self.size,
            "format": self.format,
            "jpeg_quality": self.jpeg_quality,
            "fov": asdict(self.fov),
            "rotate_unnotched": sorted(self.rotate_unnotched),
            "privacy": {k: v for k, v in asdict(self.privacy).items() if k != "nlp_model"},
        }

    def fingerprint(self) -> str:
        return fingerprint(self.work_settings())
