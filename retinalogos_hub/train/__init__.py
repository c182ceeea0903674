"""Three-step text-to-fundus training: `run(recipe)` runs a step recipe, or a pipeline recipe chaining 1 -> 2 -> 3.

Stages meet on disk: the input is a caption/purify dataset dir (or a Hub dataset id), the output a RUN_DIR holding
config.yaml, run.json, pipeline/, lora/, validation/ and checkpoints/ (see docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from ..config import load_config
from ..errors import ConfigError
from .config import PipelineConfig, TrainConfig
from .trainer import FlowMatchingRecipe, TrainResult

__all__ = ["run", "load_recipe", "TrainConfig", "PipelineConfig", "TrainResult", "FlowMatchingRecipe"]


def is_pipeline(recipe: Path) -> bool:
    try:
        data = yaml.safe_load(Path(recipe).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False  # load_config reports the problem with the file name
    return isinstance(data, dict) and "steps" in data


def load_recipe(recipe: Path, overrides: Sequence[str] = ()) -> TrainConfig:
    return load_config(TrainConfig, recipe, overrides)


def run(recipe: Path, overrides: Sequence[str] = (), resume: str | None = None) -> TrainResult:
    """Run a step recipe (one training run) or a pipeline recipe (step 1 -> purify -> step 3)."""
    recipe = Path(recipe)
    if not recipe.is_file():
        raise ConfigError(f"recipe not found: {recipe}")
    if is_pipeline(recipe):
        from .chain import run_pipeline

        return run_pipeline(recipe, overrides, resume)
    from .trainer import main

    return main(load_recipe(recipe, overrides), resume)
