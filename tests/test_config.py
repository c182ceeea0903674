"""The recipe loader: unknown keys named with valid keys, overrides type-checked, all errors at once."""

from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from retinalogos_hub.config import dump_config, load_config
from retinalogos_hub.errors import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass(frozen=True)
class Recipe:
    output_dir: str
    optim: Optim
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    max_steps: int = 1
    resume: Optional[str] = None


def write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_yaml_plus_overrides(tmp_path):
    p = write(tmp_path, "output_dir: out\noptim:\n  lr: 1e-4\nmax_steps: 10\n")
    cfg = load_config(Recipe, p, ["optim.lr=0.5", "max_steps=3", "mixed_precision=bf16", "resume=latest"])
    assert cfg == Recipe("out", Optim(0.5), "bf16", 3, "latest")
    assert load_config(Recipe, p, ["optim.lr=3e-3"]).optim.lr == 0.003  # YAML 1.1 reads 3e-3 as a string
    assert isinstance(cfg.optim.lr, float)


def test_unknown_key_is_named_with_suggestion_and_valid_keys(tmp_path):
    p = write(tmp_path, "output_dir: out\noptim: {lr: 1.0, lrr: 2}\nmax_step: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(Recipe, p)
    msg = str(e.value)
    assert "'max_step'" in msg and "did you mean 'max_steps'" in msg
    assert "'optim.lrr'" in msg and "optim.betas" in msg  # both reported at once, valid keys listed


def test_override_type_checked(tmp_path):
    p = write(tmp_path, "output_dir: out\noptim: {lr: 1.0}\n")
    with pytest.raises(ConfigError, match=r"max_steps must be int, got 'many'"):
        load_config(Recipe, p, ["max_steps=many"])
    with pytest.raises(ConfigError, match="mixed_precision must be one of"):
        load_config(Recipe, p, ["mixed_precision=fp8"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(Recipe, p, ["max_steps"])
    with pytest.raises(ConfigError, match=r"override 'output_dir=\[runs': the value is not valid YAML .*quote it"):
        load_config(Recipe, p, ["output_dir=[runs"])


def test_missing_required_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="missing required key 'optim.lr'"):
        load_config(Recipe, write(tmp_path, "output_dir: out\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Recipe, write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="recipe not found"):
        load_config(Recipe, tmp_path / "nope.yaml")


def test_dump_round_trip(tmp_path):
    cfg = load_config(Recipe, write(tmp_path, "output_dir: out\noptim: {lr: 2}\n"))
    dump_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(Recipe, tmp_path / "out" / "config.yaml") == cfg
