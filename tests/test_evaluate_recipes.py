"""The evaluate recipes under recipes/eval/: each loads with its class, says how to run it, is the default of its
command, and a missing key is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retinalogos_hub.config import load_config
from retinalogos_hub.errors import ConfigError
from retinalogos_hub.evaluate.clip import ClipScoreConfig
from retinalogos_hub.evaluate.downstream import DownstreamRecipe
from retinalogos_hub.evaluate.fid import FidConfig
from retinalogos_hub.evaluate.fidelity import FidelityConfig
from retinalogos_hub.evaluate.memorization import MemorizationConfig
from retinalogos_hub.evaluate.turing import TuringConfig

RECIPES = Path(__file__).parents[1] / "recipes" / "eval"
DEFAULTS = {  # one command each
    "fid": FidConfig,
    "clip_score": ClipScoreConfig,
    "turing": TuringConfig,
    "memorization": MemorizationConfig,
    "fidelity": FidelityConfig,
}
COMMANDS = {
    FidConfig: "fid",
    ClipScoreConfig: "clip-score",
    TuringConfig: "turing-kit",
    DownstreamRecipe: "downstream",
    MemorizationConfig: "memorization",
    FidelityConfig: "fidelity",
}


def recipe_class(path: Path) -> type:
    """The class a shipped recipes/eval/ YAML is read with (every other file there is a downstream task)."""
    return DEFAULTS.get(path.stem, DownstreamRecipe)


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_eval_recipe_loads_and_says_how_to_run_it(path):
    cls = recipe_class(path)
    assert load_config(cls, path) is not None
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# retinalogos evaluate {COMMANDS[cls]} "), first
    assert "=" in first.split()[-1], "the launch command ends with one override"


@pytest.mark.parametrize("cls", list(DEFAULTS.values()), ids=lambda c: c.__name__)
def test_each_command_defaults_to_its_shipped_recipe(cls):
    assert load_config(cls) == load_config(cls, RECIPES / cls.DEFAULT_RECIPE.split("/")[-1])


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: p.name)
def test_a_missing_key_is_one_line_naming_it(path, tmp_path):
    data = yaml.safe_load(path.read_text())
    last = next(reversed(data))  # drop the last top-level key (a section drops all its keys)
    del data[last]
    broken = tmp_path / path.name
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_config(recipe_class(path), broken)
    assert f"missing required key '{last}" in str(e.value) and "\n" not in str(e.value)


def test_unknown_keys_are_named_and_overrides_win():
    with pytest.raises(ConfigError, match=r"unknown key 'kid_subset_sise'.*did you mean 'kid_subset_size'"):
        load_config(FidConfig, None, ["kid_subset_sise=3"])
    cfg = load_config(FidConfig, None, ["batch_size.cuda=128", "weights=/w.pt"])
    assert cfg.batch_size.cuda == 128 and cfg.batch_size.cpu == 4 and cfg.weights == "/w.pt"
    assert cfg.batch_size_for("cuda:1") == 128 and cfg.batch_size_for("cpu") == 4
    with pytest.raises(ConfigError, match="must be int"):
        load_config(TuringConfig, None, ["n_real=many"])
