"""Text-to-fundus training: `run_step(cfg)` runs one step recipe (step 1 pretrain or step 3 hi-res SFT, full or LoRA).

Stages meet on disk: the input is a caption/purify dataset dir (or a Hub dataset id), the output a RUN_DIR holding
config.yaml, run.json, retinalogos.json, pipeline/, lora/, validation/ and checkpoints/ (see docs/architecture.md).
The three-step chain (step 1 -> purify -> step 3) is `retinalogos_hub.chain`: it composes training with purification.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import load_config
from ..errors import ConfigError
from .config import PipelineConfig, TrainConfig

if TYPE_CHECKING:
    from .trainer import FlowMatchingRecipe, TrainResult
    from .trainer import main as run_step

__all__ = ["run", "run_step", "load_recipe", "TrainConfig", "PipelineConfig", "TrainResult", "FlowMatchingRecipe"]
_TRAINER = {"FlowMatchingRecipe": "FlowMatchingRecipe", "TrainResult": "TrainResult", "run_step": "main"}


def __getattr__(name: str):
    """The trainer (and torch) load on first use, so a recipe and a --resume hf://... are checked before them."""
    if name in _TRAINER:
        from . import trainer

        return getattr(trainer, _TRAINER[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_recipe(recipe: Path, overrides: Sequence[str] = ()) -> TrainConfig:
    return load_config(TrainConfig, recipe, overrides)


def run(recipe: Path, overrides: Sequence[str] = (), resume: str | None = None) -> TrainResult:
    """Run one step recipe (a pipeline recipe runs through `retinalogos_hub.chain.run`)."""
    recipe = Path(recipe)
    if not recipe.is_file():
        raise ConfigError(f"recipe not found: {recipe}")
    from .trainer import main as run_step

    return run_step(load_recipe(recipe, overrides), resume)
