"""The distributed engine a training run really uses, what differs per process in a checkpoint, and the checks that
a run really trained.

- `setup`: `accelerate launch` with an FSDP config gets FSDP, whatever the device. accelerate turns FSDP on only for
  accelerator devices (on CPU, `ACCELERATE_USE_CPU=1`, it silently falls back to plain data parallel), while FSDP2
  itself runs on CPU over gloo; so a CPU run that asked for FSDP is switched to it here, and really shards. The wrap
  unit is the backbone's block class (`Backbone.block_cls`), so one FSDP config serves every backbone. A run that asked
  for an engine and got another stops, naming why.
- `save_rank_state` / `load_rank_state`: accelerate saves custom checkpoint objects from the main process only, so
  every rank would resume with rank 0's noise generator and, under FSDP, rank 0's EMA shard. Each rank writes its own.
- `check_*`: a zero gradient after the first step, an EMA that never moved, exported weights equal to the base model.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ..errors import ConfigError, InputError, TrainingError


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def setup(acc, backbone, cfg) -> None:
    """Make `acc` the engine the launcher asked for (see the module docstring), or fail naming what went wrong."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    got = acc.distributed_type
    if _flag("ACCELERATE_USE_FSDP"):
        if cfg.model.mode == "lora":
            raise ConfigError(
                "model.mode lora under an FSDP launch: an adapter has nothing worth sharding and the LoRA export needs "
                "whole layers; launch LoRA runs with recipes/accelerate/ddp-8gpu.yaml (or cpu-2proc.yaml)"
            )
        if got == DistributedType.MULTI_CPU:
            plugin = FullyShardedDataParallelPlugin()  # reads the launcher's FSDP_* settings, as accelerate does
            if acc.state.mixed_precision != "no":
                plugin.set_mixed_precision(acc.state.mixed_precision)
            for state in (PartialState(), acc.state):  # both singletons: prepare/save_state read one or the other
                state.distributed_type = DistributedType.FSDP
            acc.state.fsdp_plugin = plugin
        elif got != DistributedType.FSDP:
            raise TrainingError(
                f"the launch asked for FSDP but accelerate set up {got.value} "
                f"({'one process' if acc.num_processes == 1 else f'{acc.num_processes} processes'}); "
                "launch with `accelerate launch --config_file recipes/accelerate/fsdp.yaml` (GPU) or "
                "`ACCELERATE_USE_CPU=1 accelerate launch --config_file recipes/accelerate/cpu-2proc-fsdp.yaml` (CPU)"
            )
        acc.state.fsdp_plugin.transformer_cls_names_to_wrap = [backbone.block_cls]
    elif _flag("ACCELERATE_USE_DEEPSPEED"):
        if got != DistributedType.DEEPSPEED:
            raise TrainingError(
                f"the launch asked for DeepSpeed but accelerate set up {got.value}; pip install deepspeed"
            )
        check_deepspeed(acc.state.deepspeed_plugin, cfg)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1 and acc.num_processes == 1:
        raise TrainingError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but accelerate set up one process (no GPU here?): "
            "set ACCELERATE_USE_CPU=1 to train on CPU processes over gloo"
        )


def check_deepspeed(plugin, cfg) -> None:
    """DeepSpeed owns accumulation and clipping: its config must say what the recipe says."""
    pairs = (
        ("gradient_accumulation_steps", plugin.gradient_accumulation_steps, "train.grad_accum", cfg.train.grad_accum),
        ("gradient_clipping", plugin.gradient_clipping, "train.max_grad_norm", cfg.train.max_grad_norm),
    )
    wrong = [
        f"{n} {got} (recipe {k}={want})"
        for n, got, k, want in pairs
        if got not in (None, "auto") and float(got) != float(want)
    ]
    if wrong:
        raise ConfigError(f"the DeepSpeed config disagrees with the recipe: {'; '.join(wrong)}")


def describe(acc) -> dict:
    """What `run.json` records about the engine that ran."""
    from accelerate.utils import DistributedType

    info = {"distributed_type": acc.distributed_type.value, "device": acc.device.type}
    if acc.distributed_type == DistributedType.FSDP:
        info["fsdp_version"] = acc.state.fsdp_plugin.fsdp_version
    return info


def _local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's shard on this rank (FSDP2), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def checksum(tensors) -> list[float]:
    """Per-tensor sums in float64 (this rank's shards): equal lists mean nothing changed. Per tensor, because one
    buffer of huge values would swallow every other change in a single sum."""
    return [_local(t).detach().double().sum().item() for t in tensors]


def check_finite(sums: dict[str, float], model: str) -> None:
    """A NaN or inf in the base weights (a corrupt file, or a parameter a model class leaves uninitialised) would
    train silently into NaN EMA weights and unequal runs: refuse it before the first step."""
    bad = [name for name, total in sums.items() if not math.isfinite(total)]
    if bad:
        raise TrainingError(
            f"{model}: transformer weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} hold NaN or inf; "
            "re-save the model with initialised weights"
        )


def check_gradients(norm, acc) -> None:
    value = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
    if value == 0.0:
        raise TrainingError(
            f"after the first optimizer step the trainable parameters have a zero gradient norm "
            f"({acc.distributed_type.value}): the loss does not reach the parameters being stepped"
        )


def check_ema_moved(ema, start: list[float], acc) -> None:
    """Stop if the EMA shadows equal their initial values after training (an EMA of parameters nobody steps)."""
    if ema.optimization_step == 0:
        return
    moved = torch.tensor([float(checksum(ema.shadow_params) != start)], device=acc.device)
    if float(acc.reduce(moved, reduction="sum")) == 0.0:
        raise TrainingError(
            f"the EMA has not moved after {ema.optimization_step} steps ({acc.distributed_type.value}): it tracks "
            "parameters the optimizer does not step"
        )


def check_trained(state: dict, base: list[float], cfg) -> None:
    if checksum(state.values()) == base:
        raise TrainingError(
            f"the exported weights equal the base model after {cfg.train.max_steps} steps (optim.lr={cfg.optim.lr:g}): "
            "nothing was learned"
        )


def save_rank_state(path: Path, acc, noise, ema, sharded: bool) -> None:
    """This rank's noise generator and, when sharded (or on rank 0), its EMA shadows."""
    state: dict = {"world": acc.num_processes, "noise": noise.state_dict()}
    if ema is not None and (sharded or acc.is_main_process):
        shadows = [_local(t).detach().cpu().clone() for t in ema.shadow_params]
        state["ema"] = {"optimization_step": ema.optimization_step, "shadow": shadows}
    torch.save(state, Path(path) / f"rank_state_{acc.process_index}.pt")


def load_rank_state(path: Path, acc, noise, ema, sharded: bool) -> None:
    path = Path(path)
    own = path / f"rank_state_{acc.process_index}.pt"
    if not own.is_file():
        raise InputError(f"{path}: no {own.name}; resume with the number of processes that saved it")
    state = torch.load(own)
    if state["world"] != acc.num_processes:
        raise InputError(
            f"{path}: saved by {state['world']} process(es), resumed on {acc.num_processes}; "
            "resume with the same number of processes"
        )
    noise.load_state_dict(state["noise"])
    if ema is not None:
        saved = state if sharded else torch.load(path / "rank_state_0.pt")
        for shadow, value in zip(ema.shadow_params, saved["ema"]["shadow"]):
            _local(shadow).copy_(value)
        ema.optimization_step = saved["ema"]["optimization_step"]
