"""Training recipes as frozen dataclasses. Every number lives in `recipes/`; fields here carry no defaults that matter.

A step recipe (`TrainConfig`) runs one training step of the paper (step 1 pretrain or step 3 hi-res SFT, full or
LoRA); a pipeline recipe (`PipelineConfig`) chains step 1 -> step 2 (purify) -> step 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

Backbone = Literal["lumina-next", "lumina2", "sana"]


@dataclass(frozen=True)
class ModelSection:
    backbone: Backbone
    base_model: str  # Hub id, local diffusers folder, or tiny:<name>
    mode: Literal["full", "lora"]
    gradient_checkpointing: bool
    max_sequence_length: int  # caption tokens (Gemma: 256 as in the paper)


@dataclass(frozen=True)
class LoraSection:
    rank: int
    alpha: int
    dropout: float
    target_modules: list[str]
    init: Literal[
        "gaussian", "pissa", "olora", "orthogonal"
    ]  # peft `init_lora_weights`: "gaussian" so an untrained adapter is not a no-op
    fuse_export: bool  # also write pipeline/ with the adapter merged (always on for lumina-next: no LoRA loader)


@dataclass(frozen=True)
class DataSection:
    dataset: str  # caption/purify output dir, a Hub-layout dir, or a Hub dataset id
    split: str
    require_purify_keep: bool  # train only on rows purify kept (step 3)
    resolution: int  # an AREA budget: buckets hold about resolution**2 pixels (the paper's "512")
    max_aspect: float  # widest bucket aspect ratio allowed (both orientations)
    caption_dropout: float  # probability of the empty caption, for classifier-free guidance
    max_upscaled: float  # share of rows allowed to be smaller than their bucket (upsampled); past it training refuses
    # rows whose caption is empty (a failed caption): "exclude" them (counted in run.json) or "error"; an empty
    # caption is never trained except through caption dropout
    on_missing_caption: Literal["exclude", "error"]
    cache_dtype: Literal["float32", "float16"]  # cached latents and text embeddings (float16 halves the cache)
    # cache caption embeddings (unpadded, cache_dtype) beside the latents; false: keep captions and run the frozen
    # text encoder every step (Gemma-2B at 256 tokens is ~1 MB a row in float16: ~1.4 TB for 1.4M rows)
    cache_text: bool
    cache_dir: Optional[str] = None  # latents + text embeddings; default OUTPUT_DIR/cache
    limit: Optional[int] = None  # use only the first N rows (smoke runs)


@dataclass(frozen=True)
class TrainSection:
    seed: int
    max_steps: int  # optimizer steps
    batch_size: int  # per process, per micro-step
    grad_accum: int
    mixed_precision: Literal["no", "fp16", "bf16"]
    timestep_sampling: Literal["uniform", "logit_normal", "shifted"]
    logit_mean: float
    logit_std: float
    shift: float  # for "shifted": sigma' = shift*sigma / (1 + (shift-1)*sigma)
    max_grad_norm: float
    log_every: int
    log_with: Optional[str] = None  # accelerate tracker: tensorboard, wandb, ...


@dataclass(frozen=True)
class OptimSection:
    name: Literal["adamw", "adamw8bit"]
    lr: float
    betas: list[float]
    weight_decay: float
    eps: float


@dataclass(frozen=True)
class SchedulerSection:
    name: str  # diffusers.optimization.get_scheduler name: constant, constant_with_warmup, cosine, linear, ...
    warmup_steps: int


@dataclass(frozen=True)
class EmaSection:
    decay: float
    update_after_step: int


@dataclass(frozen=True)
class CheckpointSection:
    every: int
    total_limit: int
    # each checkpoint also holds its publishable weights (EMA transformer / adapter) for `push-model --checkpoints`:
    # one more transformer on disk per kept checkpoint and, under FSDP, a full-state gather; false: resumable state only
    weights: bool


@dataclass(frozen=True)
class ValidationSection:
    every: int  # 0 = only at the end
    prompts: list[str]
    seeds: list[int]
    num_inference_steps: int
    guidance_scale: float
    height: int
    width: int


@dataclass(frozen=True)
class TrainConfig:
    stage: Literal["step1", "step3"]
    output_dir: str
    model: ModelSection
    data: DataSection
    train: TrainSection
    optim: OptimSection
    lr_scheduler: SchedulerSection
    checkpoint: CheckpointSection
    validation: ValidationSection
    lora: Optional[LoraSection] = None  # required when model.mode is lora
    ema: Optional[EmaSection] = None  # full fine-tunes only


@dataclass(frozen=True)
class StepsSection:
    step1: str  # recipe paths, relative to the pipeline recipe
    step2: str
    step3: str


@dataclass(frozen=True)
class PipelineConfig:
    steps: StepsSection
    dataset: str  # captioned dataset for step 1 and step 2
    output_dir: str  # OUTPUT_DIR/{step1,step2,step3}
    step1: list[str] = field(default_factory=list)  # extra overrides per step (CLI: step1.train.max_steps=2)
    step2: list[str] = field(default_factory=list)
    step3: list[str] = field(default_factory=list)
