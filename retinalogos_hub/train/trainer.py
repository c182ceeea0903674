"""The flow-matching training recipe (full or LoRA, any backbone): one readable runner, torchtune-shaped.

`FlowMatchingRecipe(cfg, resume)` validates, `setup()` loads the model and the cached data, `train()` is the loop,
`save_checkpoint(step)` writes resumable state, `export()` writes the publishable folders, `cleanup()` ends trackers.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import stage
from ..config import dump_config
from ..errors import ConfigError, InputError
from ..licenses import training_sources
from ..pipelines import call_kwargs
from . import backbones, engines, remote
from .config import TrainConfig
from .data import Batches, buckets, build_cache, cache_key, check_upscaling, load_rows, pad_texts

log = logging.getLogger("retinalogos.train")


@dataclass
class TrainResult:
    output_dir: Path
    pipeline_dir: Path | None
    lora_dir: Path | None
    global_step: int
    final_loss: float | None = None
    steps: dict[str, TrainResult] = field(default_factory=dict)


class NoiseRng:
    """The generator behind noise, timesteps and caption dropout, checkpointed so a resume replays them exactly."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["state"])


class FlowMatchingRecipe:
    def __init__(self, cfg: TrainConfig, resume: str | None = None):
        errors = []
        if cfg.model.mode == "lora" and cfg.lora is None:
            errors.append("model.mode is 'lora' but the recipe has no lora: section")
        if cfg.model.mode == "lora" and cfg.ema is not None:
            errors.append("ema: is for full fine-tunes; remove it from a LoRA recipe")
        if len(cfg.validation.seeds) == 0 or len(cfg.validation.prompts) == 0:
            errors.append("validation.prompts and validation.seeds must not be empty")
        if not 0.0 <= cfg.data.caption_dropout < 1.0:
            errors.append(f"data.caption_dropout must be in [0, 1), got {cfg.data.caption_dropout}")
        for key in ("max_steps", "batch_size", "grad_accum", "log_every"):
            if getattr(cfg.train, key) < 1:
                errors.append(f"train.{key} must be >= 1, got {getattr(cfg.train, key)}")
        if len(cfg.optim.betas) != 2:
            errors.append(f"optim.betas must be two numbers, got {cfg.optim.betas}")
        if cfg.checkpoint.every < 1 or cfg.checkpoint.total_limit < 1:
            errors.append("checkpoint.every and checkpoint.total_limit must be >= 1")
        if errors:
            raise ConfigError("; ".join(errors))
        if cfg.optim.name == "adamw8bit":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "optim.name=adamw8bit needs bitsandbytes: pip install bitsandbytes (or optim.name=adamw)"
                ) from None
        self.cfg, self.out = cfg, Path(cfg.output_dir)
        self.backbone = backbones.get(cfg.model.backbone)
        self.resume_dir = self._find_resume(resume) if resume else None
        self.step, self.last_loss = 0, None
        self.max_steps = cfg.train.max_steps  # train() runs until here (a benchmark may extend a set-up run)

    def _find_resume(self, resume: str) -> Path:
        ckpts = self.out / "checkpoints"
        if resume.startswith(remote.PREFIX):  # a state pushed with `retinalogos push-state`
            return remote.fetch_state(resume, self.cfg)
        if resume == "latest":
            # trainer_state.json is written last: a checkpoint killed mid-save has none and is skipped
            found = sorted(p.parent for p in ckpts.glob("checkpoint-*/trainer_state.json")) if ckpts.is_dir() else []
            if not found:
                raise InputError(f"--resume latest: no checkpoint under {ckpts}; start without --resume")
            return found[-1]
        path = Path(resume)
        if not (path / "trainer_state.json").is_file():
            raise InputError(
                f"--resume {resume}: not a checkpoint directory (no trainer_state.json); use --resume latest, a {ckpts}/checkpoint-NNNNNN path or hf://ORG/NAME-state[@REVISION]"
            )
        return path

    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, ProjectConfiguration, set_seed

        cfg = self.cfg
        # 1. Accelerator (mixed precision, accumulation, trackers) and the resolved config. accelerate keeps both
        # settings in process-wide singletons that refuse or silently keep a previous run's values, so a second run in
        # one process (the pipeline chain, the demo, tests) starts from clean ones; the process group is untouched.
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state()
        GradientState._reset_state()
        self.acc = Accelerator(
            mixed_precision=cfg.train.mixed_precision,
            gradient_accumulation_steps=cfg.train.grad_accum,
            log_with=cfg.train.log_with,
            project_config=ProjectConfiguration(str(self.out), logging_dir=str(self.out / "logs")),
        )
        engines.setup(self.acc, self.backbone, cfg)  # FSDP on CPU too, the backbone's blocks wrapped, asked == got
        set_seed(cfg.train.seed)
        self.provenance = stage.start("train", self.out, cfg, dataset=cfg.data.dataset, base_model=cfg.model.base_model)
        if self.acc.is_main_process:
            dump_config(cfg, self.out / "config.yaml")
            log.info("resolved recipe written to %s", self.out / "config.yaml")
        # 2. Data rows first (a bad dataset fails before a 2B model loads), then the model components; the text
        # encoder and the VAE are frozen and only fill the cache
        rows, self.no_caption_rows = load_rows(cfg.data)
        # rows per source: the model card's licence follows every source the model learnt from
        self.sources = None
        if "source" in rows.column_names:
            counts = rows.with_format("arrow")["source"].value_counts().to_pylist()
            self.sources = {c["values"]: c["counts"] for c in counts}
        if self.no_caption_rows:
            log.warning("%d rows without a caption left out (data.on_missing_caption)", self.no_caption_rows)
        self.pipe = self.backbone.load(cfg.model.base_model)
        self.pipe.set_progress_bar_config(disable=True)
        for module in (self.pipe.vae, self.pipe.text_encoder):
            module.requires_grad_(False).eval()
        # encoders on the accelerator; Gemma in bf16 when training in bf16 (as it was trained), the VAE in fp32
        # (the SDXL VAE overflows in fp16)
        te_dtype = torch.bfloat16 if cfg.train.mixed_precision == "bf16" else torch.float32
        self.te_load_dtype = self.pipe.text_encoder.dtype  # restored for export (see `export`)
        self.pipe.text_encoder.to(self.acc.device, te_dtype)
        self.pipe.vae.to(self.acc.device)
        table = buckets(cfg.data.resolution, self.backbone.multiple(self.pipe), cfg.data.max_aspect)
        self.upscaled_rows = check_upscaling(rows, table, cfg.data)
        if self.upscaled_rows:
            log.warning("%d of %d rows are smaller than their bucket and are upsampled", self.upscaled_rows, len(rows))
        # 3. Cache: latents + caption embeddings, each process encoding its share of the parts
        key = cache_key(
            rows._fingerprint,
            {
                "base": str(cfg.model.base_model),
                "backbone": cfg.model.backbone,
                "res": cfg.data.resolution,
                "aspect": cfg.data.max_aspect,
                "len": cfg.model.max_sequence_length,
                "dtype": cfg.data.cache_dtype,
                "text": cfg.data.cache_text,
            },
        )
        cache_dir = Path(cfg.data.cache_dir or self.out / "cache") / key
        cache = build_cache(
            rows,
            self.pipe,
            self.backbone,
            cfg.data,
            cfg.model.max_sequence_length,
            cache_dir,
            rank=self.acc.process_index,
            world=self.acc.num_processes,
            barrier=self.acc.wait_for_everyone,
            log=log.info,
        )
        uncond = torch.load(cache_dir / "uncond.pt")["text"]
        self.train_rows = len(cache)
        self.batches = Batches(
            cache,
            uncond,
            cfg.train.batch_size,
            cfg.train.seed,
            self.acc.process_index,
            self.acc.num_processes,
            cfg.data.cache_dtype,
        )
        # 4. Trainable parameters: the whole transformer, or LoRA adapters on it
        transformer = self.pipe.transformer
        if cfg.model.mode == "lora":
            self._add_lora(transformer)
        else:
            transformer.requires_grad_(True)
            for name in self.backbone.unused_params:
                transformer.get_parameter(name).requires_grad_(False)
        transformer.train()
        if cfg.model.gradient_checkpointing:
            self.backbone.enable_gradient_checkpointing(transformer)
        state = transformer.state_dict()
        self.base_checksum = engines.checksum(state.values())  # "did anything train?" at export
        engines.check_finite(dict(zip(state, self.base_checksum)), cfg.model.base_model)
        # 5. Optimizer, LR schedule; then `prepare`, and only then the parameters the optimizer really steps (FSDP2
        # replaces them with sharded ones), on which the EMA and clipping work
        from diffusers.optimization import get_scheduler

        opt_cls = torch.optim.AdamW
        if cfg.optim.name == "adamw8bit":
            import bitsandbytes as bnb

            opt_cls = bnb.optim.AdamW8bit
        beta1, beta2 = cfg.optim.betas
        optimizer = opt_cls(
            [p for p in transformer.parameters() if p.requires_grad],
            lr=cfg.optim.lr,
            betas=(beta1, beta2),
            weight_decay=cfg.optim.weight_decay,
            eps=cfg.optim.eps,
        )
        # accelerate steps a prepared scheduler once per process, so its horizon is scaled the same way
        scheduler = get_scheduler(
            cfg.lr_scheduler.name,
            optimizer,
            num_warmup_steps=cfg.lr_scheduler.warmup_steps * self.acc.num_processes,
            num_training_steps=cfg.train.max_steps * self.acc.num_processes,
        )
        self.transformer, self.optimizer, self.lr_scheduler = self.acc.prepare(transformer, optimizer, scheduler)
        self._sharded = self.acc.distributed_type == DistributedType.FSDP
        self.params = [p for p in self.transformer.parameters() if p.requires_grad]
        self.ema = None
        if cfg.ema is not None:  # shadows of the (sharded) parameters: no full copy on any rank under FSDP
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(self.params, decay=cfg.ema.decay, update_after_step=cfg.ema.update_after_step)
            self.ema.to(self.acc.device)
            self.ema_checksum = engines.checksum(self.ema.shadow_params)
        self.noise = NoiseRng(cfg.train.seed + self.acc.process_index)  # per process: saved per process (`_ranks`)
        self.acc.register_for_checkpointing(self.batches.pos)  # the same on every process
        # 6. Resume: model, optimizer, scheduler, RNGs and data position (accelerate), EMA shard and noise (ours)
        if self.resume_dir is not None:
            self.acc.load_state(str(self.resume_dir))
            engines.load_rank_state(self.resume_dir, self.acc, self.noise, self.ema, self._sharded)
            self.step = json.loads((self.resume_dir / "trainer_state.json").read_text())["global_step"]
            log.info("resumed from %s at step %d", self.resume_dir, self.step)
        self.first_step = self.step  # the gradient check runs on this run's first optimizer step
        if cfg.train.log_with:
            self.acc.init_trackers("retinalogos", config={"stage": cfg.stage, "backbone": cfg.model.backbone})

    def _add_lora(self, transformer) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        lc = self.cfg.lora
        assert lc is not None  # checked in __init__: a LoRA recipe has a lora: section
        transformer.requires_grad_(False)
        config = LoraConfig(
            r=lc.rank,
            lora_alpha=lc.alpha,
            lora_dropout=lc.dropout,
            target_modules=list(lc.target_modules),
            init_lora_weights=lc.init,
        )
        if hasattr(transformer, "add_adapter"):
            transformer.add_adapter(config)
        else:  # LuminaNextDiT2DModel has no PeftAdapterMixin: inject with peft directly
            inject_adapter_in_model(config, transformer)
            transformer.peft_config = {"default": config}

    def _sigmas(self, n: int) -> torch.Tensor:
        t = self.cfg.train
        if t.timestep_sampling == "logit_normal":
            return torch.sigmoid(t.logit_mean + t.logit_std * torch.randn(n, generator=self.noise.gen))
        sigma = torch.rand(n, generator=self.noise.gen)
        if t.timestep_sampling == "shifted":  # more steps at high noise, as SD3/Flux do for large images
            sigma = t.shift * sigma / (1 + (t.shift - 1) * sigma)
        return sigma

    def _loss(self, latents: torch.Tensor, texts: list) -> torch.Tensor:
        n, dev, g = latents.shape[0], self.acc.device, self.noise.gen
        if texts and isinstance(texts[0], str):  # data.cache_text false: the frozen encoder runs here
            emb, mask = self.backbone.encode_prompts(self.pipe, texts, self.cfg.model.max_sequence_length)
            texts = [e[m.bool()].float().cpu() for e, m in zip(emb, mask)]
        drop = torch.rand(n, generator=g) < self.cfg.data.caption_dropout
        emb, mask = pad_texts([self.batches.uncond if d else t for d, t in zip(drop.tolist(), texts)])
        noise = torch.randn(latents.shape, generator=g)
        sigma = self._sigmas(n)
        s = sigma.view(-1, 1, 1, 1)
        x = (1 - s) * latents + s * noise
        pred = self.backbone.predict(self.transformer, x.to(dev), sigma.to(dev), emb.to(dev), mask.to(dev))
        return F.mse_loss(pred.float(), (noise - latents).to(dev))

    def train(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        cfg, acc = self.cfg, self.acc
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            refresh_per_second=2,
            disable=not acc.is_main_process,
        )
        task = progress.add_task(
            f"{cfg.stage} {cfg.model.backbone} {cfg.model.mode}", total=self.max_steps, completed=self.step, loss="-"
        )
        with progress:
            while self.step < self.max_steps:
                # 1. One optimizer step = grad_accum micro-batches (accelerate syncs DDP on the last one only)
                total = torch.zeros((), device=acc.device)
                for _ in range(cfg.train.grad_accum):
                    latents, texts = self.batches.next()
                    with acc.accumulate(self.transformer):
                        loss = self._loss(latents, texts)
                        acc.backward(loss)
                        if acc.sync_gradients and (cfg.train.max_grad_norm > 0 or self.step == self.first_step):
                            norm = acc.clip_grad_norm_(self.params, cfg.train.max_grad_norm or float("inf"))
                            if self.step == self.first_step:
                                engines.check_gradients(norm, acc)
                        self.optimizer.step()
                        self.lr_scheduler.step()
                        self.optimizer.zero_grad(set_to_none=True)
                    total += loss.detach() / cfg.train.grad_accum
                self.step += 1
                # 2. EMA; the loss leaves the device only when logged (a per-step .item() stalls a GPU)
                if self.ema is not None:
                    self.ema.step(self.params)
                # (also at each checkpoint: its trainer_state.json records the loss of its step, for the model card)
                if (
                    self.step % cfg.train.log_every == 0
                    or self.step % cfg.checkpoint.every == 0
                    or self.step == self.max_steps
                ):
                    self.last_loss = acc.gather(total).mean().item()  # mean over processes
                    lr = self.lr_scheduler.get_last_lr()[0]
                    acc.log({"loss": self.last_loss, "lr": lr}, step=self.step)
                    log.info("step %d loss %.5f lr %.3g", self.step, self.last_loss, lr)
                    progress.update(task, loss=f"{self.last_loss:.4f}")
                progress.update(task, completed=self.step)
                # 3. Checkpoint and validation grid
                if self.step % cfg.checkpoint.every == 0:
                    self.save_checkpoint(self.step)
                if cfg.validation.every and self.step % cfg.validation.every == 0:
                    self.validate(self.step)
        acc.wait_for_everyone()

    def save_checkpoint(self, step: int) -> Path:
        """Resumable state (model, optimizer, scheduler, EMA, RNGs, data position, step; `push-state` uploads it to a
        private repo) and beside it the publishable weights of this step (`push-model --checkpoints`): transformer/
        with the EMA weights (full runs) or the fused adapter (LoRA runs with a fused export), lora/ for LoRA runs."""
        ckpts = self.out / "checkpoints"
        path = ckpts / f"checkpoint-{step:06d}"
        self.acc.wait_for_everyone()
        self.acc.save_state(str(path))
        engines.save_rank_state(path, self.acc, self.noise, self.ema, self._sharded)
        if self.cfg.checkpoint.weights:
            self._save_weights(path)
        self.acc.wait_for_everyone()  # trainer_state.json (the "complete" mark) only once every rank has saved
        if self.acc.is_main_process:
            state = {
                "global_step": step,
                "last_logged_loss": self.last_loss,
                "recipe": remote.recipe_identity(self.cfg),
            }
            (path / remote.STATE_FILE).write_text(json.dumps(state))
            for old in sorted(ckpts.glob("checkpoint-*"))[: -self.cfg.checkpoint.total_limit]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return path

    def _ema_weights(self):
        """Context: the transformer holds the EMA weights inside, its own weights again after."""
        from contextlib import contextmanager

        @contextmanager
        def swap():
            if self.ema is None:
                yield
                return
            self.ema.store(self.params)
            self.ema.copy_to(self.params)
            try:
                yield
            finally:
                self.ema.restore(self.params)

        return swap()

    def _full_state(self) -> dict:
        """The full transformer state dict with the EMA weights, on CPU (collective: every rank calls it)."""
        with self._ema_weights():  # every rank: the full state dict is gathered from FSDP shards collectively
            state = self.acc.get_state_dict(self.transformer)
            # a copy: these may share storage with the parameters the EMA swap restores on exit
            return {k: v.detach().to("cpu", copy=True) for k, v in (state or {}).items()}

    def _save_weights(self, path: Path) -> None:
        """What a checkpoint publishes, in the layout of `export` (no optimizer state)."""
        from . import export

        state = self._full_state() if self.cfg.model.mode == "full" else None
        if not self.acc.is_main_process:
            return
        transformer = self.acc.unwrap_model(self.transformer)
        if state is not None:
            plain = type(transformer).from_config(transformer.config)
            plain.load_state_dict(state)
            plain.save_pretrained(path / "transformer", safe_serialization=True)
            return
        export.save_lora(self.pipe, transformer, path / "lora")
        if self._fused_export:
            export.fused(transformer).save_pretrained(path / "transformer", safe_serialization=True)

    @torch.no_grad()
    def validate(self, step: int) -> Path | None:
        """A grid (rows = prompts, columns = seeds) with fixed prompts and seeds, from the EMA weights when on.

        Under FSDP every rank must take part in each forward (the shards are gathered per layer), elsewhere only the
        main process generates; the main process writes the PNG."""
        if not (self.acc.is_main_process or self._sharded):
            return None
        from PIL import Image

        v = self.cfg.validation
        transformer = self.acc.unwrap_model(self.transformer)
        transformer.eval()
        with self._ema_weights():
            pipe = type(self.pipe)(**{**self.pipe.components, "transformer": transformer})
            pipe.set_progress_bar_config(disable=True)
            images = [
                pipe(
                    prompt=p,
                    num_inference_steps=v.num_inference_steps,
                    guidance_scale=v.guidance_scale,
                    height=v.height,
                    width=v.width,
                    generator=torch.Generator().manual_seed(s),
                    **call_kwargs(pipe),
                ).images[0]
                for p in v.prompts
                for s in v.seeds
            ]
        transformer.train()
        grid = Image.new("RGB", (v.width * len(v.seeds), v.height * len(v.prompts)))
        for i, img in enumerate(images):
            grid.paste(img, ((i % len(v.seeds)) * v.width, (i // len(v.seeds)) * v.height))
        if not self.acc.is_main_process:
            return None
        path = self.out / "validation" / f"step-{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
        return path

    def export(self) -> TrainResult:
        """pipeline/ (EMA weights for full runs; LoRA merged where asked or needed) and lora/ for LoRA runs."""
        from . import export

        cfg = self.cfg
        if self.ema is not None:
            engines.check_ema_moved(self.ema, self.ema_checksum, self.acc)
        if cfg.model.mode == "full":
            state = self._full_state()
            if self.acc.is_main_process:
                engines.check_trained(state, self.base_checksum, cfg)
        if cfg.validation.every == 0 or self.step % cfg.validation.every:
            self.validate(self.step)
        if self.acc.is_main_process:
            # the text encoder as it was loaded: a bf16 one beside the fp32 transformer makes the exported pipeline
            # fail to sample in its default dtypes (the prompt embeddings set the latents' dtype)
            self.pipe.text_encoder.to("cpu", self.te_load_dtype)
            transformer = self.acc.unwrap_model(self.transformer)
            if cfg.model.mode == "full":
                plain = type(transformer).from_config(transformer.config)
                plain.load_state_dict(state)
                export.save_pipeline(self.pipe, plain, self.out / "pipeline")
            else:
                export.save_lora(self.pipe, transformer, self.out / "lora")
                if self._fused_export:
                    export.save_pipeline(self.pipe, export.fused(transformer), self.out / "pipeline")
            run = {
                "backbone": cfg.model.backbone,
                "base_model": cfg.model.base_model,
                "dataset": cfg.data.dataset,
                "recipe": str(self.out / "config.yaml"),
                "stage": cfg.stage,
                "mode": cfg.model.mode,
                "global_step": self.step,
                "final_loss": self.last_loss,
                "train_rows": self.train_rows,
                "sources": self.sources,
                "base_sources": _base_sources(cfg.model.base_model),
                "upscaled_rows": self.upscaled_rows,
                "no_caption_rows": self.no_caption_rows,
                "resolution": cfg.data.resolution,
                "processes": self.acc.num_processes,
                **engines.describe(self.acc),  # which engine really ran (distributed_type, device, fsdp_version)
                # what a model card needs, so publishing never imports the training code
                "pipeline_class": type(self.pipe).__name__,
                "loads_lora": self.backbone.loads_lora,
                "call_kwargs": call_kwargs(self.pipe),
            }
            stage.atomic_write(self.out / "run.json", json.dumps(run, indent=2))
            self.provenance.finish(
                **{k: run[k] for k in ("global_step", "final_loss", "train_rows", "processes", "distributed_type")}
            )
        self.acc.wait_for_everyone()
        # every rank learns where the outputs are (the chain's next step runs on every rank)
        pipeline_dir = self.out / "pipeline" if cfg.model.mode == "full" or self._fused_export else None
        lora_dir = self.out / "lora" if cfg.model.mode == "lora" else None
        return TrainResult(self.out, pipeline_dir, lora_dir, self.step, self.last_loss)

    @property
    def _fused_export(self) -> bool:
        lora = self.cfg.lora
        return self.cfg.model.mode == "lora" and (
            (lora is not None and lora.fuse_export) or not self.backbone.loads_lora
        )

    def cleanup(self) -> None:
        """End the trackers. The process group stays: the chain's next step (and its purify barrier) needs it."""
        for tracker in self.acc.trackers:
            tracker.finish()


def main(cfg: TrainConfig, resume: str | None = None) -> TrainResult:
    """Run one step recipe end to end."""
    recipe = FlowMatchingRecipe(cfg, resume)
    recipe.setup()
    recipe.train()
    if recipe.step % cfg.checkpoint.every:  # the final state too, so a finished run can be extended with --resume
        recipe.save_checkpoint(recipe.step)
    result = recipe.export()
    recipe.cleanup()
    return result


def _base_sources(base_model: str) -> dict[str, int] | None:
    """The training sources behind a base model that an earlier step exported (RUN_DIR/pipeline beside its
    run.json), merged down the chain: step 3's card must carry step 1's data terms too."""
    run = Path(base_model).expanduser().parent / "run.json"
    if not run.is_file():
        return None
    return training_sources(json.loads(run.read_text()))
