"""Backbone registry: model.backbone -> module under retinalogos_hub.train.backbones (one file per family)."""

from __future__ import annotations

import importlib

from .base import Backbone

REGISTRY: dict[str, str] = {
    "lumina-next": "lumina_next",
    "lumina2": "lumina2",
    "sana": "sana",
}


def get(name: str) -> Backbone:
    from ...errors import ConfigError

    if name not in REGISTRY:
        raise ConfigError(f"model.backbone: unknown backbone {name!r}; known: {', '.join(REGISTRY)}")
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}").BACKBONE
