"""`CaptionConfig`: every setting of a captioning run, read from a recipe in `recipes/caption/` (no defaults here).

Load one with `load(recipe, overrides)` (or `config.load_config(CaptionConfig, path, overrides)`); `shipped(name)`
reads `recipes/caption/<name>.yaml` from the package. The backend's own settings sit in its section
(`transformers:` or `openai:`); the sections of the other backends are null.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

BACKENDS = ("template", "transformers", "openai")

# Keys that may change between a run and its resume: they change how fast captions are made, not what they say.
# Every other key is bound to the work folder (`WorkDir.bind`); a new key is bound unless it is added here.
RESUMABLE = frozenset(
    {
        "commit_every",
        "transformers.batch_size",
        "transformers.device",
        "openai.base_url",
        "openai.api_key_env",
        "openai.concurrency",
        "openai.timeout_s",
        "openai.max_retries",
    }
)


@dataclass(frozen=True)
class TransformersSection:
    """A local VLM: any `AutoModelForImageTextToText` + `AutoProcessor`, batched generation with left padding."""

    model: str  # Hub id, local directory or tiny:<name>
    batch_size: int  # rows per generate() call (per process under `accelerate launch`)
    max_new_tokens: int  # generation budget per caption
    max_pixels: Optional[int]  # downscale images to at most this many pixels first (null: as stored)
    device: Optional[str]  # cpu, cuda, cuda:1; null: this process's accelerate device (cuda:<local rank> or cpu)

    def __post_init__(self):
        _positive(self, "batch_size", "max_new_tokens")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1 or null, got {self.max_pixels}")


@dataclass(frozen=True)
class OpenAISection:
    """An OpenAI-compatible server (vLLM, SGLang, TGI): bounded concurrent requests, images as data URLs."""

    base_url: str  # the server's /v1 endpoint, e.g. http://127.0.0.1:8000/v1
    model: Optional[str]  # a served model id; null: the first one the server lists
    api_key_env: str  # NAME of the environment variable holding the API key (never the key itself)
    concurrency: int  # requests in flight at once
    max_new_tokens: int  # `max_tokens` per request
    max_pixels: Optional[int]  # downscale images to at most this many pixels before sending (null: as stored)
    timeout_s: float  # per request
    max_retries: int  # the client's retries (connection errors, 408/429/5xx, exponential backoff)
    guided_json: bool  # JSON-schema guided decoding via `response_format` (vLLM structured outputs)

    def __post_init__(self):
        if not re.match(r"https?://\S+$", self.base_url or ""):
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {self.base_url!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env or ""):
            # not quoted: a pasted key must not end up in logs
            raise ValueError("api_key_env must be the name of an environment variable (e.g. OPENAI_API_KEY), not a key")
        _positive(self, "concurrency", "max_new_tokens")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1 or null, got {self.max_pixels}")
        if self.timeout_s <= 0 or self.max_retries < 0:
            raise ValueError(f"timeout_s must be > 0 and max_retries >= 0, got {self.timeout_s} and {self.max_retries}")


@dataclass(frozen=True)
class CaptionConfig:
    """One captioning run. Recipes: `recipes/caption/{template,transformers,openai}.yaml`."""

    backend: Literal["template", "transformers", "openai"]  # template: no model, prose written from the labels
    prompt_version: str  # caption/prompts/<version>.j2, stored with every caption (VLM backends)
    min_words: int  # shortest caption asked for
    max_words: int  # longest caption asked for (also bounds the guided-JSON string lengths)
    seed: int  # template wording per row; sampling on VLM retries
    regenerate_inconsistent: int  # retry a caption that contradicts the labels up to N times (then it is flagged)
    commit_every: int  # rows per fsync of a part file: the most a killed job has to redo
    transformers: Optional[TransformersSection]  # backend transformers only (else null)
    openai: Optional[OpenAISection]  # backend openai only (else null)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend != "template" and getattr(self, self.backend) is None:
            raise ValueError(f"backend {self.backend!r} needs a valid `{self.backend}:` section")
        if not 1 <= self.min_words <= self.max_words:
            raise ValueError(f"words: need 1 <= min_words <= max_words, got {self.min_words} and {self.max_words}")
        if self.commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {self.commit_every}")
        if self.regenerate_inconsistent < 0:
            raise ValueError(f"regenerate_inconsistent must be >= 0, got {self.regenerate_inconsistent}")
        from .prompt import versions

        if self.prompt_version not in versions():
            raise ValueError(f"prompt_version {self.prompt_version!r} is unknown; available: {', '.join(versions())}")

    @property
    def model(self) -> str | None:
        """The configured model of the backend in use (None: template, or the server's first model)."""
        section = getattr(self, self.backend, None) if self.backend != "template" else None
        return section.model if section else None

    def settings(self) -> dict:
        """The keys that decide what a caption says, flattened (`openai.model`): bound to the work folder."""
        flat: dict = {}
        for key, value in dataclasses.asdict(self).items():
            if key in BACKENDS and key != self.backend:
                continue  # another backend's section does not change these captions
            for k, v in value.items() if isinstance(value, dict) else [(None, value)]:
                full = f"{key}.{k}" if k else key
                if full not in RESUMABLE:
                    flat[full] = v
        return flat


def load(recipe: str | Path, overrides: Sequence[str] = ()) -> CaptionConfig:
    """A `CaptionConfig` from a recipe file plus `key=value` overrides (ConfigError naming every bad key)."""
    from ..config import load_config

    return load_config(CaptionConfig, recipe, overrides)


def shipped(name: str, *overrides: str) -> CaptionConfig:
    """The shipped recipe `recipes/caption/<name>.yaml` (template, transformers, openai) plus overrides."""
    from ..config import shipped_recipe

    return load(shipped_recipe(f"caption/{name}.yaml"), overrides)


def _positive(section, *names: str) -> None:
    for name in names:
        if getattr(section, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(section, name)}")
