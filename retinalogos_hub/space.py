"""The Space (spaces/retinalogos/app.py) and `retinalogos app`: a Gradio demo of the zoo's models.

A clinical prompt builder (eye, ICDR grade, DME, glaucoma, lesions, free text) composes the caption, which the user can
edit; a model picker lists the embedded tiny default, `--model` references and the entries of `zoo.yaml`; seed, steps
and guidance; a gallery of this session's images. The API endpoint `generate` takes the prompt text first (everything
else has a default) and returns one image. Settings live in `recipes/app/space.yaml`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image

from .config import load_config
from .errors import InputError

GRADES = {
    0: "no diabetic retinopathy",
    1: "mild non-proliferative diabetic retinopathy",
    2: "moderate non-proliferative diabetic retinopathy",
    3: "severe non-proliferative diabetic retinopathy",
    4: "proliferative diabetic retinopathy",
}
LESIONS = ("microaneurysms", "haemorrhages", "hard exudates", "cotton-wool spots", "neovascularisation")
EYES = ("left", "right")


@dataclass(frozen=True)
class SpaceConfig:
    DEFAULT_RECIPE = "app/space.yaml"
    default_model: str  # the model picked first (the embedded tiny default runs offline on a CPU)
    height: int
    width: int
    steps: int
    max_steps: int
    guidance_scale: float
    seed: int
    gallery_size: int  # the latest images kept in the gallery
    port: int
    zoo: str | None  # the zoo manifest whose entries the picker lists (missing file: none listed)


def grade_label(grade: int) -> str:
    return f"{grade}: {GRADES[grade]}"


def compose_caption(
    eye: str, grade: int | str, dme: bool, glaucoma: bool, lesions: list[str] | tuple = (), free_text: str = ""
) -> str:
    """The caption the builder writes: the four areas the paper's captions cover, in their order."""
    g = int(str(grade).split(":")[0])
    if g not in GRADES or eye not in EYES:
        raise InputError(f"prompt builder: eye must be left/right and grade 0-4, got {eye!r}, {grade!r}")
    disc = (
        "The optic disc shows an enlarged cup with a thinned neuroretinal rim, suspicious for glaucoma."
        if glaucoma
        else "The optic disc is pink with a clear margin and a normal cup."
    )
    vessels = (
        "Fine new vessels arise from the disc and along the arcades."
        if g == 4 or "neovascularisation" in lesions
        else "The vessels are evenly distributed with normal calibre."
    )
    macula = (
        "Hard exudates gather near the fovea, consistent with diabetic macular oedema."
        if dme
        else "The macula and fovea appear normal."
    )
    found = [x for x in LESIONS if x in lesions]
    lesion = f"Scattered {', '.join(found)} are visible." if found else "No lesions are seen."
    parts = [
        f"A colour fundus photograph of the {eye} eye.",
        disc,
        vessels,
        macula,
        lesion,
        f"Impression: {GRADES[g]}.",
    ]
    if free_text.strip():
        parts.append(free_text.strip())
    return " ".join(parts)


def model_choices(extra: list[str] | tuple, cfg: SpaceConfig, root: Path | None = None) -> list[tuple[str, str]]:
    """(label, reference) pairs: the default, `--model` references, then zoo.yaml's entries (read as data)."""
    out = [(cfg.default_model + " (embedded tiny default)", cfg.default_model)] if cfg.default_model else []
    out += [(m, m) for m in extra]
    if cfg.zoo:
        path = Path(cfg.zoo) if Path(cfg.zoo).is_absolute() else (root or Path.cwd()) / cfg.zoo
        if path.is_file():
            for e in (yaml.safe_load(path.read_text()) or {}).get("entries") or []:
                out.append((f"{e['name']} ({e['backbone']} {e['stage']}, {e['mode']})", e["repo_id"]))
    seen, unique = set(), []
    for label, ref in out:
        if ref not in seen:
            seen.add(ref)
            unique.append((label, ref))
    return unique


class Generator:
    """Pipelines loaded on first use and kept; one generation at a time (a CPU Space has one worker)."""

    def __init__(self, cfg: SpaceConfig):
        self.cfg, self.pipes, self.lock = cfg, {}, threading.Lock()

    def pipe(self, ref: str):
        if ref not in self.pipes:
            from diffusers import DiffusionPipeline

            from .models import resolve

            self.pipes[ref] = DiffusionPipeline.from_pretrained(resolve(ref))
        return self.pipes[ref]

    def __call__(self, prompt: str, model: str | None = None, seed: int | None = None, steps: int | None = None,
                 guidance: float | None = None):  # fmt: skip
        import torch

        from .pipelines import call_kwargs

        if not (prompt or "").strip():
            raise InputError("generate: the prompt is empty; compose one with the builder or type it")
        cfg = self.cfg
        steps = max(1, min(int(steps or cfg.steps), cfg.max_steps))
        with self.lock:
            pipe = self.pipe(model or cfg.default_model)
            return pipe(
                prompt=prompt,
                height=cfg.height,
                width=cfg.width,
                num_inference_steps=steps,
                guidance_scale=float(cfg.guidance_scale if guidance is None else guidance),
                generator=torch.Generator().manual_seed(int(cfg.seed if seed is None else seed)),
                **call_kwargs(pipe),
            ).images[0]


def build_demo(models: list[str] | tuple = (), cfg: SpaceConfig | None = None, root: Path | None = None):
    import gradio as gr

    cfg = cfg or load_config(SpaceConfig)
    gen = Generator(cfg)
    choices = model_choices(models, cfg, root)

    def generate(prompt: str, model: str = cfg.default_model, seed: int = cfg.seed, steps: int = cfg.steps,
                 guidance: float = cfg.guidance_scale) -> Image.Image:  # fmt: skip
        """Generate one fundus image from a caption (the API: `client.predict("caption", api_name="/generate")`)."""
        try:
            return gen(prompt, model, seed, steps, guidance)
        except InputError as e:
            raise gr.Error(str(e)) from None

    def add_to_gallery(image, seed, gallery):
        items = [(image, f"seed {int(seed)}")] + [(g[0], g[1]) for g in (gallery or [])]
        return items[: cfg.gallery_size]

    with gr.Blocks(title="RetinaLogos: text to fundus") as demo:
        gr.Markdown(
            "# RetinaLogos: text-to-fundus\nCompose a clinical caption, pick a model, generate a colour fundus "
            "photograph. Synthetic images for research and education: **not for clinical diagnosis**."
        )
        with gr.Row():
            with gr.Column(scale=1):
                eye = gr.Radio(list(EYES), value="left", label="Eye")
                grade = gr.Dropdown([grade_label(g) for g in GRADES], value=grade_label(0), label="ICDR grade")
                with gr.Row():
                    dme = gr.Checkbox(label="Diabetic macular oedema")
                    glaucoma = gr.Checkbox(label="Glaucoma suspect")
                lesions = gr.CheckboxGroup(list(LESIONS), label="Lesions")
                free = gr.Textbox(label="Free text (appended)", lines=1)
            with gr.Column(scale=1):
                prompt = gr.Textbox(compose_caption("left", 0, False, False), label="Caption (editable)", lines=6,
                                    elem_id="caption")  # fmt: skip
                model = gr.Dropdown(choices, value=choices[0][1], label="Model", allow_custom_value=True)
                with gr.Row():
                    seed = gr.Number(cfg.seed, label="Seed", precision=0)
                    steps = gr.Slider(1, cfg.max_steps, cfg.steps, step=1, label="Steps")
                    guidance = gr.Slider(1.0, 10.0, cfg.guidance_scale, step=0.5, label="Guidance (CFG)")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=1):
                image = gr.Image(label="Generated", type="pil", elem_id="result", format="png")
                gallery = gr.Gallery(label="This session", columns=4, height="auto", elem_id="gallery")
        builder = [eye, grade, dme, glaucoma, lesions, free]
        for widget in builder:
            widget.change(compose_caption, builder, prompt, api_visibility="private")
        # the API: `generate(prompt, model, seed, steps, guidance) -> image`, every argument after the prompt defaulted
        event = button.click(generate, [prompt, model, seed, steps, guidance], image, api_name="generate")
        event.success(add_to_gallery, [image, seed, gallery], gallery, api_visibility="private")
    return demo


def launch(models: list[str] | tuple = (), port: int | None = None, recipe: Path | None = None,
           overrides: list[str] | tuple = ()) -> None:  # fmt: skip
    """`retinalogos app`: serve the demo on 127.0.0.1 (0.0.0.0 inside a Space)."""
    import os

    cfg = load_config(SpaceConfig, recipe, overrides)
    demo = build_demo(models, cfg)
    host = "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"
    demo.queue(default_concurrency_limit=1).launch(server_name=host, server_port=port or cfg.port)
