"""The shipped accelerate configs, read the way `accelerate launch` reads them (its own parser and env export), turn
into the plugins the trainer gets; a DeepSpeed config that disagrees with its recipe is refused."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from retinalogos_hub.config import load_config
from retinalogos_hub.errors import ConfigError
from retinalogos_hub.train.config import TrainConfig
from retinalogos_hub.train.engines import check_deepspeed

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = ROOT / "recipes" / "accelerate"


def launch_env(config: Path) -> dict[str, str]:
    """The environment `accelerate launch --config_file CONFIG` gives the training processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config), "-m", "retinalogos_hub.cli", "train"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch_command does
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return {k: v for k, v in env.items() if k.startswith(("ACCELERATE", "FSDP"))}


def test_deepspeed_zero2_config_is_valid_for_accelerate_and_agrees_with_its_recipe():
    from accelerate.utils import DeepSpeedPlugin

    with mock.patch.dict(os.environ, launch_env(ACCELERATE / "deepspeed-zero2.yaml")):
        plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == 2 and plugin.deepspeed_config["zero_optimization"]["stage"] == 2
    recipe = load_config(TrainConfig, ROOT / "recipes/lumina2/step1_pretrain_full.yaml")  # its launch line's recipe
    check_deepspeed(plugin, recipe)
    with pytest.raises(ConfigError, match=r"gradient_accumulation_steps 1 \(recipe train.grad_accum=4\)"):
        check_deepspeed(
            plugin, load_config(TrainConfig, ROOT / "recipes/lumina2/step1_pretrain_full.yaml", ["train.grad_accum=4"])
        )


@pytest.mark.parametrize("name", ["fsdp.yaml", "cpu-2proc-fsdp.yaml"])
def test_fsdp_configs_give_fsdp2_with_the_wrap_unit_left_to_the_backbone(name):
    from accelerate.utils import FullyShardedDataParallelPlugin

    env = launch_env(ACCELERATE / name)
    assert env["ACCELERATE_USE_FSDP"] == "true"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap is None  # filled from Backbone.block_cls


@pytest.mark.slow  # over 5 s: keeps `make test-fast` under 3 minutes
def test_every_backbone_names_a_block_class_its_transformer_has():
    import diffusers

    from retinalogos_hub.train import backbones

    for name in ("lumina-next", "lumina2", "sana"):
        bb = backbones.get(name)
        module = __import__(getattr(diffusers, bb.transformer_cls).__module__, fromlist=[bb.block_cls])
        assert hasattr(module, bb.block_cls), (name, bb.block_cls)
