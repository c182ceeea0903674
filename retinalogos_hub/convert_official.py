"""`convert-official`: the RetinaLogos authors' raw Lumina-Next checkpoint -> a diffusers `LuminaPipeline` folder.

The authors (uni-medical/retina-text2cfp, weights `junzhin/RetinaLogo`) train a fork of Alpha-VLLM's Lumina-Next
trainer and save `consolidated[_ema].00-of-01.{pth,safetensors}` (the full state dict of `NextDiT`, one model-parallel
rank) beside `model_args.pth` (the training argparse Namespace). `NextDiT` keys (their `models/model.py`):

    x_embedder                      Linear(p*p*C, dim)              -> patch_embedder.proj
    t_embedder.mlp.{0,2}            timestep MLP                    -> time_caption_embed.timestep_embedder.linear_{1,2}
    cap_embedder.{0,1}              LayerNorm + Linear              -> time_caption_embed.caption_embedder.{0,1}
    layers.i.attention.{wq,wk,wv}   self-attention projections      -> layers.i.attn1.to_{q,k,v} (wq also attn2.to_q)
    layers.i.attention.{wk_y,wv_y}  cross-attention to the caption  -> layers.i.attn2.to_{k,v}
    layers.i.attention.wo           one output projection           -> layers.i.attn2.to_out.0
    layers.i.attention.gate         tanh gate of the cross branch   -> layers.i.gate
    layers.i.attention.{q,k,ky}_norm LayerNorms                     -> attn1.norm_{q,k}, attn2.norm_{q,k}
    layers.i.attention_norm{1,2}    sandwich RMSNorms               -> layers.i.norm1.norm, layers.i.norm2
    layers.i.ffn_norm{1,2}          sandwich RMSNorms               -> same names
    layers.i.attention_y_norm       caption RMSNorm                 -> layers.i.norm1_context
    layers.i.adaLN_modulation.1     Linear(min(dim,1024), 4*dim)    -> layers.i.norm1.linear
    layers.i.feed_forward.w{1,2,3}  SwiGLU                          -> feed_forward.linear_{1,2,3}
    final_layer.adaLN_modulation.1  scale only                      -> norm_out.linear_1
    final_layer.linear                                              -> norm_out.linear_2
    pad_token                                                       -> pad_token

diffusers' own `scripts/convert_lumina_to_diffusers.py` has the same source keys, but several of its target names
(`patch_embedder.weight`, `layers.i.adaLN_modulation.*`, `attn_norm1/2`, `final_layer.*`) predate the module names of
`LuminaNextDiT2DModel` in diffusers 0.42; the table above targets the current names and is checked by a strict load.
The transformer config is read from the tensor shapes, never assumed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import SHIPPED, stage
from .config import load_config
from .errors import InputError
from .models import resolve

WEIGHT_NAMES = ("consolidated{ema}.00-of-01.safetensors", "consolidated{ema}.00-of-01.pth")
ARGS_NAME = "model_args.pth"
CARD_TEMPLATE = SHIPPED / "model_cards" / "official_model_card.md.j2"
PREFIXES = ("module.", "_orig_mod.", "_fsdp_wrapped_module.")  # wrappers that may prefix saved keys

# per-layer key pairs: official suffix -> diffusers suffixes (wq and q_norm feed both attention branches)
LAYER_MAP: dict[str, tuple[str, ...]] = {
    "attention.gate": ("gate",),
    "attention.wq.weight": ("attn1.to_q.weight", "attn2.to_q.weight"),
    "attention.wk.weight": ("attn1.to_k.weight",),
    "attention.wv.weight": ("attn1.to_v.weight",),
    "attention.wk_y.weight": ("attn2.to_k.weight",),
    "attention.wv_y.weight": ("attn2.to_v.weight",),
    "attention.wo.weight": ("attn2.to_out.0.weight",),
    "attention.q_norm.weight": ("attn1.norm_q.weight", "attn2.norm_q.weight"),
    "attention.q_norm.bias": ("attn1.norm_q.bias", "attn2.norm_q.bias"),
    "attention.k_norm.weight": ("attn1.norm_k.weight",),
    "attention.k_norm.bias": ("attn1.norm_k.bias",),
    "attention.ky_norm.weight": ("attn2.norm_k.weight",),
    "attention.ky_norm.bias": ("attn2.norm_k.bias",),
    "attention_norm1.weight": ("norm1.norm.weight",),
    "attention_norm2.weight": ("norm2.weight",),
    "ffn_norm1.weight": ("ffn_norm1.weight",),
    "ffn_norm2.weight": ("ffn_norm2.weight",),
    "attention_y_norm.weight": ("norm1_context.weight",),
    "adaLN_modulation.1.weight": ("norm1.linear.weight",),
    "adaLN_modulation.1.bias": ("norm1.linear.bias",),
    "feed_forward.w1.weight": ("feed_forward.linear_1.weight",),
    "feed_forward.w2.weight": ("feed_forward.linear_2.weight",),
    "feed_forward.w3.weight": ("feed_forward.linear_3.weight",),
}
GLOBAL_MAP: dict[str, str] = {
    "pad_token": "pad_token",
    "x_embedder.weight": "patch_embedder.proj.weight",
    "x_embedder.bias": "patch_embedder.proj.bias",
    "t_embedder.mlp.0.weight": "time_caption_embed.timestep_embedder.linear_1.weight",
    "t_embedder.mlp.0.bias": "time_caption_embed.timestep_embedder.linear_1.bias",
    "t_embedder.mlp.2.weight": "time_caption_embed.timestep_embedder.linear_2.weight",
    "t_embedder.mlp.2.bias": "time_caption_embed.timestep_embedder.linear_2.bias",
    "cap_embedder.0.weight": "time_caption_embed.caption_embedder.0.weight",
    "cap_embedder.0.bias": "time_caption_embed.caption_embedder.0.bias",
    "cap_embedder.1.weight": "time_caption_embed.caption_embedder.1.weight",
    "cap_embedder.1.bias": "time_caption_embed.caption_embedder.1.bias",
    "final_layer.adaLN_modulation.1.weight": "norm_out.linear_1.weight",
    "final_layer.adaLN_modulation.1.bias": "norm_out.linear_1.bias",
    "final_layer.linear.weight": "norm_out.linear_2.weight",
    "final_layer.linear.bias": "norm_out.linear_2.bias",
}
PROMPT = (
    "A colour fundus photograph of the left eye. The optic disc is pink with a clear margin; the vessels are "
    "evenly distributed; scattered microaneurysms and haemorrhages: moderate non-proliferative diabetic retinopathy."
)
TRAIN_ARGS = ("model", "image_size", "vae", "precision", "qk_norm", "global_seed")  # recorded, when present


@dataclass(frozen=True)
class Sampler:
    num_inference_steps: int
    guidance_scale: float
    time_shift: float  # Lumina-Next's time_shifting_factor == FlowMatchEulerDiscreteScheduler(shift=...)
    height: int
    width: int


@dataclass(frozen=True)
class ConvertConfig:
    """recipes/convert/official.yaml: what the authors' sampler uses, and the components they load beside the DiT."""

    DEFAULT_RECIPE = "convert/official.yaml"
    ema: bool  # prefer consolidated_ema.* (the weights the authors sample with)
    text_encoder: str  # Gemma-2B, read at hidden_states[-2]
    vae: str  # the SDXL VAE
    sample_size: int  # the transformer's nominal latent size (1024 px / 8)
    sampler: Sampler
    authors_repo: str  # credited in the card
    code_repo: str
    license: str


@dataclass
class ConvertResult:
    out: Path
    checkpoint: Path
    transformer_config: dict
    parameters: int


def load_convert_config(path: Path | None = None, overrides: list[str] | tuple = ()) -> ConvertConfig:
    return load_config(ConvertConfig, path, overrides)


# ---------------------------------------------------------------------------------------------------- the key map


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key.replace("._fsdp_wrapped_module", "").replace("._checkpoint_wrapped_module", "")


def num_layers(sd: dict) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(r"layers\.(\d+)\.", k))}
    if not ids or ids != set(range(max(ids) + 1)):
        raise InputError(f"checkpoint: layer indices {sorted(ids)[:5]}... are not 0..N-1; not a NextDiT state dict")
    return max(ids) + 1


def official_to_diffusers(sd: dict, where: str = "checkpoint") -> dict:
    """The official NextDiT state dict under `LuminaNextDiT2DModel` names. Every official key must be used."""
    sd = {_strip(k): v for k, v in sd.items()}
    sd.pop("freqs_cis", None)  # a RoPE table some forks register as a buffer; diffusers recomputes it
    out, used = {}, set()
    missing = [k for k in GLOBAL_MAP if k not in sd]
    for src, dst in GLOBAL_MAP.items():
        if src in sd:
            out[dst] = sd[src]
            used.add(src)
    for i in range(num_layers(sd)):
        for src, dsts in LAYER_MAP.items():
            key = f"layers.{i}.{src}"
            if key not in sd:
                missing.append(key)
                continue
            used.add(key)
            for n, dst in enumerate(dsts):  # the second copy is its own tensor (diffusers saves them separately)
                out[f"layers.{i}.{dst}"] = sd[key] if n == 0 else sd[key].clone()
    unknown = sorted(set(sd) - used)
    if missing or unknown:
        parts = [f"missing {', '.join(missing[:4])}" if missing else "", f"unexpected {', '.join(unknown[:4])}"]
        raise InputError(
            f"{where}: not the Lumina-Next NextDiT key layout ({'; '.join(p for p in parts if p and p != 'unexpected ')})",
            hint="pass the folder holding consolidated[_ema].00-of-01.pth from the authors' trainer (one rank, 00-of-01)",
        )
    return out


def diffusers_to_official(sd: dict) -> dict:
    """The inverse map (tests build checkpoints in the authors' layout with it). Tied copies must agree."""
    inv_global = {v: k for k, v in GLOBAL_MAP.items()}
    out = {inv_global[k]: v for k, v in sd.items() if k in inv_global}
    for i in range(num_layers(sd)):
        for src, dsts in LAYER_MAP.items():
            out[f"layers.{i}.{src}"] = sd[f"layers.{i}.{dsts[0]}"]
    return out


def transformer_config(sd: dict, sample_size: int, where: str = "checkpoint") -> dict:
    """`LuminaNextDiT2DModel` kwargs read from the official tensor shapes."""
    dim, patch_in = sd["x_embedder.weight"].shape
    n_heads = sd["layers.0.attention.gate"].shape[0]
    head_dim = dim // n_heads
    kv_heads = sd["layers.0.attention.wk.weight"].shape[0] // head_dim
    out_per_patch = sd["final_layer.linear.weight"].shape[0]
    ffn = sd["layers.0.feed_forward.w1.weight"].shape[0]
    # out = p*p*C*(2 if learn_sigma) and in = p*p*C: the ratio gives learn_sigma, then p from C = 4 or 16 (VAE latents)
    learn_sigma = out_per_patch == 2 * patch_in
    patch = next((p for p in (2, 1, 4) for c in (4, 16) if p * p * c == patch_in), None)
    if patch is None:
        raise InputError(f"{where}: x_embedder takes {patch_in} features, not p*p*C for p in 1/2/4 and C in 4/16")
    base = int(2 * (4 * dim) / 3)
    multiple_of = next((m for m in (256, 128, 64, 32, 16, 8, 1) if m * ((base + m - 1) // m) == ffn), None)
    ffn_mult = None
    if multiple_of is None:  # a custom ffn_dim_multiplier: keep multiple_of 1 and reproduce the width exactly
        multiple_of, ffn_mult = 1, ffn / base
    return dict(
        sample_size=sample_size,
        patch_size=patch,
        in_channels=patch_in // (patch * patch),
        hidden_size=dim,
        num_layers=num_layers(sd),
        num_attention_heads=n_heads,
        num_kv_heads=kv_heads,
        multiple_of=multiple_of,
        ffn_dim_multiplier=ffn_mult,
        norm_eps=1e-5,  # NextDiT's RMSNorm eps (the authors' model never overrides it)
        learn_sigma=learn_sigma,
        qk_norm="layers.0.attention.q_norm.weight" in sd,
        cross_attention_dim=sd["layers.0.attention.wk_y.weight"].shape[1],
        scaling_factor=1.0,
    )


# ---------------------------------------------------------------------------------------------------- files


def find_checkpoint(ckpt_dir: Path, ema: bool) -> Path:
    ckpt_dir = Path(ckpt_dir)
    if ckpt_dir.is_file():
        return ckpt_dir
    if not ckpt_dir.is_dir():
        raise InputError(f"{ckpt_dir}: not found; pass the folder with consolidated[_ema].00-of-01.pth")
    order = ("_ema", "") if ema else ("", "_ema")
    for tag in order:
        for name in WEIGHT_NAMES:
            if (ckpt_dir / name.format(ema=tag)).is_file():
                return ckpt_dir / name.format(ema=tag)
    sharded = sorted(p.name for p in ckpt_dir.glob("consolidated*.*-of-*.*") if "-of-01." not in p.name)
    if sharded:
        raise InputError(
            f"{ckpt_dir}: {sharded[0]} is one of several model-parallel shards; only 00-of-01 (one rank) is supported",
            hint="consolidate the ranks with the authors' trainer (model_parallel_size 1) first",
        )
    raise InputError(f"{ckpt_dir}: no consolidated[_ema].00-of-01.pth or .safetensors")


def load_state_dict(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: no code runs on load
    except Exception as e:
        raise InputError(f"{path}: cannot be read as a state dict ({type(e).__name__}: {str(e)[:120]})") from None
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise InputError(f"{path}: not a flat state dict of tensors")
    return sd


def read_train_args(ckpt_dir: Path) -> dict:
    """The recorded training arguments (`model_args.pth`, an argparse Namespace), read without running pickled code."""
    import argparse

    import torch

    path = Path(ckpt_dir) / ARGS_NAME
    if not path.is_file():
        return {}
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            args = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # only recorded: the config comes from the tensor shapes, so the conversion goes on
        return {"unreadable": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return {k: args[k] for k in TRAIN_ARGS if k in args and isinstance(args[k], (str, int, float, bool))}


# what a Hub download of a component needs (google/gemma-2b also holds a 10 GB GGUF, sdxl-vae a second copy)
COMPONENT_FILES = ["*.json", "*.safetensors", "*.model", "tokenizer*"]


def _component(ref: str, sub: str, option: str) -> Path:
    """A component folder from a Hub id / local dir / tiny:<name>: a pipeline's `sub/` or the folder itself."""
    root = resolve(ref, option=option, allow_patterns=COMPONENT_FILES)
    return root / sub if (root / sub / "config.json").is_file() else root


def _tokenizer_dir(ref: str) -> Path:
    root = resolve(ref, option="--text-encoder", allow_patterns=COMPONENT_FILES)
    return root / "tokenizer" if (root / "tokenizer").is_dir() else root


# ---------------------------------------------------------------------------------------------------- the command


def convert_official(
    ckpt_dir: Path,
    out: Path,
    *,
    text_encoder: str | None = None,
    vae: str | None = None,
    repo_id: str | None = None,
    recipe: Path | None = None,
    overrides: list[str] | tuple = (),
) -> ConvertResult:
    """Write OUT as a `LuminaPipeline` folder (model_index.json at the root) with a model card and provenance."""
    cfg = load_convert_config(recipe, overrides)
    cfg = dataclasses.replace(cfg, text_encoder=text_encoder or cfg.text_encoder, vae=vae or cfg.vae)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "model_index.json").is_file():
        raise InputError(f"--out {out} is not empty and holds no pipeline; choose a new or empty folder")
    ckpt = find_checkpoint(Path(ckpt_dir), cfg.ema)
    train_args = read_train_args(ckpt.parent)
    te_dir, tok_dir, vae_dir = (
        _component(cfg.text_encoder, "text_encoder", "--text-encoder"),
        _tokenizer_dir(cfg.text_encoder),
        _component(cfg.vae, "vae", "--vae"),
    )

    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, LuminaNextDiT2DModel, LuminaPipeline
    from transformers import AutoModel, AutoTokenizer

    raw = load_state_dict(ckpt)
    sd = official_to_diffusers(raw, where=str(ckpt))
    tcfg = transformer_config({_strip(k): v for k, v in raw.items()}, cfg.sample_size, where=str(ckpt))
    with torch.device("meta"):
        transformer = LuminaNextDiT2DModel(**tcfg)
    try:
        transformer.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as e:
        raise InputError(f"{ckpt}: shapes do not fit the inferred config ({str(e).splitlines()[-1][:160]})") from None
    encoder = AutoModel.from_pretrained(te_dir)
    if encoder.config.hidden_size != tcfg["cross_attention_dim"]:
        raise InputError(
            f"--text-encoder {cfg.text_encoder}: hidden size {encoder.config.hidden_size}, but the checkpoint's "
            f"cross-attention expects {tcfg['cross_attention_dim']} (Gemma-2B: 2048)"
        )
    pipe = LuminaPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=cfg.sampler.time_shift),
        vae=AutoencoderKL.from_pretrained(vae_dir),
        text_encoder=encoder,
        tokenizer=AutoTokenizer.from_pretrained(tok_dir),
    )
    tmp = out.with_name(out.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    params = sum(t.numel() for k, t in raw.items() if _strip(k) != "freqs_cis")
    facts = {
        "checkpoint": ckpt.name,
        "ema": "_ema" in ckpt.name,
        "train_args": train_args,
        "transformer": tcfg,
        "parameters": params,
        "sampler": dataclasses.asdict(cfg.sampler),
        "text_encoder": cfg.text_encoder,
        "vae": cfg.vae,
    }
    (tmp / "conversion.json").write_text(json.dumps(facts, indent=1))
    write_card(tmp, repo_id or str(out), cfg, facts)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    stage.start("convert-official", out, cfg, checkpoint=ckpt).finish(public=True, parameters=params)
    return ConvertResult(out, ckpt, tcfg, params)


def usage_snippet(repo_id: str, sampler: Sampler) -> str:
    return (
        "import torch\nfrom diffusers import DiffusionPipeline\n\n"
        f'pipe = DiffusionPipeline.from_pretrained("{repo_id}")\n'
        "image = pipe(\n"
        f"    prompt={PROMPT!r},\n"
        f"    height={sampler.height},\n    width={sampler.width},\n"
        f"    num_inference_steps={sampler.num_inference_steps},\n    guidance_scale={sampler.guidance_scale},\n"
        "    clean_caption=False,\n"
        "    generator=torch.Generator().manual_seed(0),\n).images[0]\n"
        'image.save("fundus.png")'
    )


def write_card(folder: Path, repo_id: str | None, cfg: ConvertConfig | None = None, facts: dict | None = None) -> Path:
    """(Re)write the converted folder's README.md for `repo_id` (the zoo re-renders it with the published id)."""
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    facts = facts or json.loads((folder / "conversion.json").read_text())
    cfg = cfg or load_convert_config(None)
    repo = repo_id or str(folder)
    data = ModelCardData(
        library_name="diffusers",
        pipeline_tag="text-to-image",
        license=cfg.license,
        base_model=cfg.authors_repo,
        tags=["medical", "ophthalmology", "fundus", "retina", "retinalogos", "text-to-image", "lumina-next"],
    )
    card = ModelCard.from_template(
        data,
        template_path=CARD_TEMPLATE,
        repo_id=repo,
        cfg=cfg,
        facts=facts,
        snippet=usage_snippet(repo, Sampler(**facts["sampler"])),
    )
    card.save(folder / "README.md")
    return folder / "README.md"
