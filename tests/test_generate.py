"""`retinalogos generate`: one PNG, a labelled synthetic dataset (published with push_dataset), resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from datasets import Dataset, Features, load_dataset, load_from_disk
from PIL import Image
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.generate import Conditions, generate, sample_labels
from retinalogos_hub.schema import CAPTIONED, SYNTHETIC_COLUMNS

MODEL = "tiny:lumina-next"
FAST = ["sampling.height=32", "sampling.width=32", "sampling.num_inference_steps=2"]


def _conditions(tmp_path, **kw):
    data = {"dr_grade": {2: 1.0, 4: 1.0}, "eye": {"left": 1.0}, "glaucoma": 0.0, "dme": 0.0,
            "lesions": {"microaneurysms": 1.0}, "sampling": {"batch_size": 2, "seed": 7}}
    data.update(kw)
    path = tmp_path / "conditions.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_generate_one_png_via_cli(tmp_path):
    out = tmp_path / "img" / "fundus.png"
    res = CliRunner().invoke(app, ["generate", "-m", MODEL, "-p", "A fundus photograph of the left eye.", "-o", str(out), *FAST])
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.size == (32, 32)
        assert not im.info.get("exif") and "parameters" not in im.info


def test_generate_prompts_file_dataset(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A fundus photograph of the left eye.\n\nA fundus photograph of the right eye.\n")
    res = CliRunner().invoke(app, ["generate", "-m", MODEL, "--prompts-file", str(prompts), "--n", "3", "-o", str(tmp_path / "d"), *FAST])
    assert res.exit_code == 0, res.output
    ds = load_from_disk(str(tmp_path / "d"))
    assert ds["prompt"] == ["A fundus photograph of the left eye.", "A fundus photograph of the right eye.", "A fundus photograph of the left eye."]
    assert ds["dr_grade"] == [None] * 3 and ds["caption_model"] == ["prompt"] * 3 and ds["seed"] == [0, 1, 2]


def test_generate_dataset_labels_seeds_and_publish(tmp_path):
    from retinalogos_hub.hub import push_dataset

    out = tmp_path / "synth"
    res = generate(MODEL, out, conditions=_conditions(tmp_path), n=5, overrides=FAST)
    assert res.rows == 5 and res.seeds == [7, 8, 9, 10, 11]
    ds = load_from_disk(str(out))
    assert ds.features == Features({**CAPTIONED, **SYNTHETIC_COLUMNS})
    assert set(ds["dr_grade"]) <= {2, 4} and set(ds["eye"]) == {"left"} and not any(ds["glaucoma"])
    assert all(r == "microaneurysms" for r in ds["findings"])  # every DR image draws the p=1 lesion
    assert set(ds["source"]) == {"synthetic"} and all(ds["redistributable"]) and set(ds["split"]) == {"train"}
    assert all(ds["caption_consistent"]) and ds["prompt"] == ds["caption"] and len(set(ds["id"])) == 5
    assert not (out / "_work").exists()

    # every seed is recorded: one row regenerated alone from its prompt and seed gives the same picture
    row = ds[3]
    single = tmp_path / "again.png"
    generate(MODEL, single, prompts=[row["prompt"]], overrides=[*FAST, f"sampling.seed={row['seed']}"])
    a = np.asarray(row["image"], dtype=np.int16)
    b = np.asarray(Image.open(single), dtype=np.int16)
    assert np.abs(a - b).mean() < 1.0

    # publishable as-is: push-dataset --local-dir writes the Hub layout that load_dataset reads
    pushed = push_dataset(out, "org/synthetic-fundus", local_dir=tmp_path / "hub")
    back = load_dataset(str(pushed.local_dir), "all", split="train")
    assert sorted(back["id"]) == sorted(ds["id"]) and back[0]["image"].size == (32, 32)


def test_generate_resumes_after_a_kill(tmp_path, monkeypatch):
    from retinalogos_hub import generate as gen_mod

    calls = {"n": 0}
    real_call = gen_mod._Generator.__call__

    def dies_on_second_batch(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_call(self, rows)

    cond = _conditions(tmp_path)
    monkeypatch.setattr(gen_mod._Generator, "__call__", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        generate(MODEL, tmp_path / "synth", conditions=cond, n=4, overrides=FAST)
    assert len(list((tmp_path / "synth" / "_work" / "images").glob("*.png"))) == 2
    monkeypatch.setattr(gen_mod._Generator, "__call__", real_call)
    res = generate(MODEL, tmp_path / "synth", conditions=cond, n=4, overrides=[*FAST, "sampling.batch_size=3"])
    assert res.resumed == 2
    assert load_from_disk(str(tmp_path / "synth"))["seed"] == [7, 8, 9, 10]
    # a different plan in the same unfinished --out is refused, not mixed in
    (tmp_path / "synth2" / "_work").mkdir(parents=True)
    (tmp_path / "synth2" / "_work" / "plan.json").write_text('{"fingerprint": "other"}')
    with pytest.raises(InputError, match="unfinished run with other settings"):
        generate(MODEL, tmp_path / "synth2", conditions=cond, n=4, overrides=FAST)


def test_generate_captions_from_real_rows(tmp_path):
    real = Dataset.from_dict({
        "caption": ["REAL grade two left.", "REAL grade four left."], "dr_grade": [2, 4], "eye": ["left", "left"],
        "glaucoma": [False, False], "caption_fields": [{"lesions": "dots"}, {"lesions": "new vessels"}],
    })
    real.save_to_disk(str(tmp_path / "real"))
    out = tmp_path / "synth"
    generate(MODEL, out, conditions=_conditions(tmp_path), n=4, captions_from=tmp_path / "real", overrides=FAST)
    ds = load_from_disk(str(out))
    for r in ds:
        assert r["caption"] == ("REAL grade two left." if r["dr_grade"] == 2 else "REAL grade four left.")
        assert r["caption_model"] == "real:real"


def test_sample_labels_follow_the_weights():
    rows = sample_labels(Conditions(dr_grade={0: 3, 4: 1}, glaucoma=0.5), 4000, seed=0)
    grade4 = np.mean([r["dr_grade"] == 4 for r in rows])
    assert 0.22 < grade4 < 0.28
    assert 0.45 < np.mean([r["glaucoma"] for r in rows]) < 0.55
    assert all(r["findings"] is None and r["dme"] == 0 for r in rows if r["dr_grade"] == 0)
    assert sample_labels(Conditions(), 5, seed=1) == sample_labels(Conditions(), 5, seed=1)
    from retinalogos_hub.config import load_config

    cond = load_config(Conditions, None, ["dr_grade.3=2", "eye.right=1"])  # an override replaces the default mapping
    assert cond.dr_grade == {3: 2} and {r["dr_grade"] for r in sample_labels(cond, 5, seed=0)} == {3}


def test_generate_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="exactly one"):
        generate(MODEL, tmp_path / "x", prompts=["a"], conditions=_conditions(tmp_path))
    with pytest.raises(InputError, match="--conditions .*file not found"):
        generate(MODEL, tmp_path / "x", conditions=tmp_path / "missing.yaml", n=2)
    with pytest.raises(InputError, match="exactly one image"):
        generate(MODEL, tmp_path / "x.png", prompts=["a"], n=3)
    with pytest.raises(ConfigError, match="dr_grade must map ICDR grades 0-4"):
        generate(MODEL, tmp_path / "x", conditions=_conditions(tmp_path, dr_grade={7: 1.0}), n=2)
    with pytest.raises(ConfigError, match="unknown key 'sampling.stepz'"):
        generate(MODEL, tmp_path / "x", conditions=_conditions(tmp_path), n=2, overrides=["sampling.stepz=3"])
    with pytest.raises(ConfigError, match="unknown lesion"):
        generate(MODEL, tmp_path / "x", conditions=_conditions(tmp_path, lesions={"drusen": 0.5}), n=2)
    res = CliRunner().invoke(app, ["generate", "-m", MODEL, "--prompts-file", str(tmp_path / "none.txt"), "-o", str(tmp_path / "d")])
    assert res.exit_code != 0 and "--prompts-file" in str(res.exception)


def test_shipped_conditions_load():
    from pathlib import Path

    from retinalogos_hub.config import load_config

    cond = load_config(Conditions, Path(__file__).parents[1] / "recipes" / "generate" / "conditions.yaml")
    assert sum(cond.dr_grade.values()) > 0 and cond.sampling.num_inference_steps == 50


@pytest.mark.parametrize("model", ["tiny:sana", "tiny:lumina2"])
def test_generate_other_families(tmp_path, model):
    from diffusers import DiffusionPipeline

    from retinalogos_hub.pipelines import call_kwargs
    from retinalogos_hub.models import resolve

    kwargs = call_kwargs(DiffusionPipeline.from_pretrained(resolve(model)))
    if model == "tiny:sana":  # FIELD-NOTES §3: exact tiny sizes, no long system instruction for a tiny encoder
        assert kwargs["use_resolution_binning"] is False and kwargs["complex_human_instruction"] is None
    out = tmp_path / "x.png"
    generate(model, out, prompts=["A fundus photograph of the right eye."], overrides=FAST)
    assert Image.open(out).size == (32, 32)
