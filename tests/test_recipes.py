"""The shipped recipes are the single source of truth: each loads with its stage's frozen config, no config class
carries a default a recipe should own, and keys meant to agree across recipes do."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from retinalogos_hub.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
BACKBONES = ("lumina-next", "lumina2", "sana")
STEPS = ("step1_pretrain_full", "step1_pretrain_lora", "step3_hires_sft_full", "step3_hires_sft_lora")


def config_classes() -> dict[str, type]:
    from retinalogos_hub.caption.config import CaptionConfig
    from retinalogos_hub.convert_official import ConvertConfig
    from retinalogos_hub.curate.settings import CurateConfig
    from retinalogos_hub.evaluate.clip import ClipScoreConfig
    from retinalogos_hub.evaluate.downstream import DownstreamRecipe
    from retinalogos_hub.evaluate.fid import FidConfig
    from retinalogos_hub.evaluate.fidelity import FidelityConfig
    from retinalogos_hub.evaluate.memorization import MemorizationConfig
    from retinalogos_hub.evaluate.turing import TuringConfig
    from retinalogos_hub.generate import GenerateConfig
    from retinalogos_hub.purify import PurifyConfig
    from retinalogos_hub.space import SpaceConfig
    from retinalogos_hub.train.config import PipelineConfig, TrainConfig

    return {
        "curate": CurateConfig,
        "caption": CaptionConfig,
        "purify": PurifyConfig,
        "generate": GenerateConfig,
        "downstream": DownstreamRecipe,
        "fid": FidConfig,
        "memorization": MemorizationConfig,
        "fidelity": FidelityConfig,
        "clip_score": ClipScoreConfig,
        "turing": TuringConfig,
        "train": TrainConfig,
        "pipeline": PipelineConfig,
        "convert": ConvertConfig,
        "app": SpaceConfig,
    }


def loader_for(path: Path):
    """The config class a shipped YAML is read with (None: not ours, e.g. accelerate's own format)."""
    rel = path.relative_to(RECIPES)
    classes = config_classes()
    if rel.parts[0] == "accelerate":
        return None
    if path.name == "pipeline.yaml":
        return classes["pipeline"]
    if path.name.startswith(("step1_", "step3_")):
        return classes["train"]
    if rel.parts[0] == "eval":
        return classes.get(path.stem, classes["downstream"])
    return classes[rel.parts[0]]


SHIPPED = sorted(RECIPES.rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_yaml_loads_and_says_how_to_run_it(path):
    cls = loader_for(path)
    if cls is not None:
        assert load_config(cls, path) is not None
    assert path.read_text().startswith("# "), "each YAML starts with a comment giving its launch command"


def sections(cls) -> list[type]:
    """`cls` and every config dataclass reachable from its fields."""
    seen, todo = [], [cls]
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.append(c)
        for tp in typing.get_type_hints(c).values():
            for t in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(t):
                    todo.append(t)
    return seen


@pytest.mark.parametrize("name", list(config_classes()))
def test_stage_configs_are_frozen_and_own_no_settings(name):
    """A default in code would be a second source of truth: only 'absent' defaults (None, empty) are allowed."""
    for cls in sections(config_classes()[name]):
        assert cls.__dataclass_params__.frozen, f"{cls.__name__} is not frozen"
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                assert f.default is None, f"{cls.__name__}.{f.name} defaults to {f.default!r}"
            if f.default_factory is not dataclasses.MISSING:
                assert f.default_factory() in ([], {}, ()), f"{cls.__name__}.{f.name} has a default factory"


def test_a_class_with_a_default_recipe_loads_it_without_a_file():
    for cls in config_classes().values():
        rel = getattr(cls, "DEFAULT_RECIPE", None)
        if rel:
            assert load_config(cls) == load_config(cls, RECIPES / rel)


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


@pytest.mark.parametrize("tree", ["", "tiny/"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_keys_meant_to_agree_across_a_backbones_steps_do(tree, backbone):
    recipes = {s: _yaml(RECIPES / f"{tree}{backbone}/{s}.yaml") for s in STEPS}
    for key in (
        "model.backbone",
        "model.max_sequence_length",
        "data.caption_dropout",
        "data.max_aspect",
        "validation.prompts",
        "validation.guidance_scale",
        "optim.name",
    ):
        values = {s: _get(r, key) for s, r in recipes.items()}
        assert len({repr(v) for v in values.values()}) == 1, f"{tree}{backbone}: {key} differs: {values}"
    assert _get(recipes["step1_pretrain_full"], "model.backbone") == backbone
    # both step-1 variants start from the same base; both step-3 variants from step 1's exported pipeline
    s1 = recipes["step1_pretrain_full"]
    assert recipes["step1_pretrain_lora"]["model"]["base_model"] == s1["model"]["base_model"]
    for s in ("step3_hires_sft_full", "step3_hires_sft_lora"):
        assert recipes[s]["model"]["base_model"] == f"{s1['output_dir']}/pipeline", s
    # step 3 trains on what step 2 kept, at a higher resolution than step 1
    for s, r in recipes.items():
        assert r["data"]["require_purify_keep"] == s.startswith("step3"), s
    assert recipes["step3_hires_sft_full"]["data"]["resolution"] > recipes["step1_pretrain_full"]["data"]["resolution"]
    if not tree:
        assert [recipes[s]["data"]["resolution"] for s in STEPS] == [512, 512, 1024, 1024]  # the paper's two sizes


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_tiny_recipes_have_the_keys_of_the_real_ones(backbone, step):
    """A tiny recipe is the CPU version of the real one: same keys, so a test of one exercises the other's shape."""
    assert _keys(_yaml(RECIPES / f"tiny/{backbone}/{step}.yaml")) == _keys(_yaml(RECIPES / f"{backbone}/{step}.yaml"))


def test_pipelines_chain_matching_steps_and_share_one_purify_recipe():
    for path in sorted(RECIPES.rglob("pipeline.yaml")):
        steps = _yaml(path)["steps"]
        s1, s3 = _yaml(path.parent / steps["step1"]), _yaml(path.parent / steps["step3"])
        assert (s1["stage"], s3["stage"]) == ("step1", "step3"), path
        assert s1["model"]["backbone"] == s3["model"]["backbone"], path
        assert (path.parent / steps["step2"]).resolve().parent == (RECIPES / "purify").resolve(), path
    tiny, real = _yaml(RECIPES / "purify/tiny.yaml"), _yaml(RECIPES / "purify/default.yaml")
    assert _keys(tiny) == _keys(real) and tiny["judge"]["prompt"] == real["judge"]["prompt"]


def test_caption_recipes_agree_on_what_a_caption_is():
    """Backends differ; the caption asked for (length, prompt version) does not."""
    recipes = {p.name: _yaml(p) for p in sorted((RECIPES / "caption").glob("*.yaml"))}
    assert len(recipes) >= 3
    shared = set.intersection(*(set(r) for r in recipes.values()))
    assert {"min_words", "max_words", "prompt_version"} <= shared
    for key in ("min_words", "max_words", "prompt_version"):
        assert len({repr(r[key]) for r in recipes.values()}) == 1, f"caption recipes disagree on {key}"
