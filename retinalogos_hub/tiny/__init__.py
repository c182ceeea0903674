"""Embedded tiny defaults: random-weight models built from configs with locally trained tokenizers.

They make the demo and the tests run offline on a CPU. Real runs pass a Hub id or a local path instead; recipes and
commands accept `tiny:<name>` wherever they accept a model reference (see `retinalogos_hub.models.resolve`).
Each builder is `build(out_dir: Path, seed: int = 0) -> None` and writes a folder that the real loader reads.
"""

# tiny:<name> -> "module:function" under retinalogos_hub.tiny (one line per builder)
BUILDERS: dict[str, str] = {
    "lumina-next": "pipelines:build_lumina_next",
    "lumina-next-fundus": "pipelines:build_lumina_next_fundus",
    "qwen2-vl": "vlm:build_qwen2_vl",
    "qwen2.5-vl": "vlm:build_qwen2_5_vl",
    "llava": "vlm:build_llava",
    "lumina2": "pipelines:build_lumina2",
    "sana": "pipelines:build_sana",
    "clip": "clip:build",
    "lm": "lm:build",
    "resnet": "classifiers:build_resnet",
    "vit": "classifiers:build_vit",
    "dinov2": "encoders:build_dinov2",
}
