"""`retinalogos generate`: one PNG, a labelled synthetic dataset (published with push_dataset), resume, provenance,
the recipe, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from datasets import Dataset, Features, load_dataset, load_from_disk
from PIL import Image
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.config import load_config
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.generate import Conditions, GenerateConfig, generate, sample_labels
from retinalogos_hub.schema import CAPTIONED, SYNTHETIC_COLUMNS

MODEL = "tiny:lumina-next"
RECIPES = Path(__file__).parents[1] / "recipes" / "generate"
FAST = ["sampling.height=32", "sampling.width=32", "sampling.num_inference_steps=2"]
# the shipped recipe narrowed to two grades, one eye and certain lesions
NARROW = [
    *FAST,
    "conditions.dr_grade={2: 1.0, 4: 1.0}",
    "conditions.eye={left: 1.0}",
    "conditions.glaucoma=0",
    "conditions.dme={}",
    "conditions.lesions={2: {microaneurysms: 1.0, haemorrhages: 1.0}, 4: {neovascularisation: 1.0}}",
    "sampling.batch_size=2",
    "sampling.seed=7",
]


def _conditions(**kw) -> Conditions:
    return Conditions(
        **{"dr_grade": {0: 1.0}, "eye": {"left": 0.5, "right": 0.5}, "glaucoma": 0.0, "dme": {}, "lesions": {}, **kw}
    )


def _recipe(tmp_path, edit=lambda d: None) -> Path:
    """The shipped recipe, edited, as a file."""
    data = yaml.safe_load((RECIPES / "conditions.yaml").read_text())
    edit(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_generate_one_png_via_cli(tmp_path):
    out = tmp_path / "img" / "fundus.png"
    args = ["generate", "-m", MODEL, "-p", "A fundus photograph of the left eye.", "-o", str(out), *FAST]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.size == (32, 32)
        assert not im.info.get("exif") and "parameters" not in im.info


def test_generate_prompts_file_dataset_and_provenance(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A fundus photograph of the left eye.\n\nA fundus photograph of the right eye.\n")
    out = tmp_path / "d"
    args = ["generate", "-m", MODEL, "--prompts-file", str(prompts), "--n", "3", "-o", str(out), *FAST]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    ds = load_from_disk(str(out))
    left, right = "A fundus photograph of the left eye.", "A fundus photograph of the right eye."
    assert ds["prompt"] == [left, right, left]
    assert ds["dr_grade"] == [None] * 3 and ds["caption_model"] == ["prompt"] * 3 and ds["seed"] == [0, 1, 2]
    # the sampling settings come from the shipped recipe, overrides on top; the conditions were not used
    prov = json.loads((out / "retinalogos.json").read_text())
    shipped = load_config(GenerateConfig).sampling
    assert prov["config"]["sampling"] == {**vars(shipped), "height": 32, "width": 32, "num_inference_steps": 2}
    assert prov["config"]["conditions"] is None and prov["config"]["n"] == 3
    assert set(prov["inputs"]) == {"model", "prompts_file"} and prov["inputs"]["model"]["ref"] == MODEL
    assert prov["counts"] == {"images": 3, "resumed": 0}


@pytest.mark.slow  # generation + push-dataset + load_dataset
def test_generate_dataset_labels_seeds_provenance_and_publish(tmp_path):
    from retinalogos_hub.hub import push_dataset

    out = tmp_path / "synth"
    res = generate(MODEL, out, n=5, overrides=NARROW)
    assert res.rows == 5 and res.seeds == [7, 8, 9, 10, 11]
    ds = load_from_disk(str(out))
    assert ds.features == Features({**CAPTIONED, **SYNTHETIC_COLUMNS})
    assert set(ds["dr_grade"]) <= {2, 4} and set(ds["eye"]) == {"left"} and not any(ds["glaucoma"])
    # every DR image draws its grade's p=1 lesions, and nothing else
    assert all(
        f == ("neovascularisation" if g == 4 else "microaneurysms, haemorrhages")
        for f, g in zip(ds["findings"], ds["dr_grade"])
    )
    assert set(ds["source"]) == {"synthetic"} and all(ds["redistributable"]) and set(ds["split"]) == {"train"}
    assert all(ds["caption_consistent"]) and ds["prompt"] == ds["caption"] and len(set(ds["id"])) == 5
    assert not (out / ".work").exists()

    # the provenance holds the resolved recipe (sampling included), the model and the counts
    prov = json.loads(res.provenance.read_text())
    assert res.provenance == out / "retinalogos.json" and prov["stage"] == "generate"
    assert prov["config"]["sampling"]["seed"] == 7 and prov["config"]["sampling"]["num_inference_steps"] == 2
    assert prov["config"]["conditions"]["dr_grade"] == {"2": 1.0, "4": 1.0} and prov["config"]["n"] == 5
    assert set(prov["inputs"]) == {"model"} and prov["inputs"]["model"]["ref"] == MODEL
    assert prov["counts"] == {"images": 5, "resumed": 0} and prov["started"] <= prov["finished"]

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


def test_generate_resumes_after_a_kill_and_refuses_changed_settings(tmp_path, monkeypatch):
    from retinalogos_hub import generate as gen_mod

    calls = {"n": 0}
    real_call = gen_mod._Generator.__call__

    def dies_on_second_batch(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_call(self, rows)

    out = tmp_path / "synth"
    monkeypatch.setattr(gen_mod._Generator, "__call__", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        generate(MODEL, out, n=4, overrides=NARROW)
    work = out / ".work" / "generate"
    assert len(list(work.glob("*.png"))) == 2 and not list(work.glob(".*.tmp*"))
    monkeypatch.setattr(gen_mod._Generator, "__call__", real_call)

    # a changed sampling setting in the same unfinished --out is refused, naming it, and nothing is mixed in
    with pytest.raises(InputError, match=r"sampling\.guidance_scale=4\.0 \(now 2\.5\)") as refused:
        generate(MODEL, out, n=4, overrides=[*NARROW, "sampling.guidance_scale=2.5"])
    assert "sampling.height" not in str(refused.value) and len(list(work.glob("*.png"))) == 2

    # the batch size decides no image: a resume with another one is welcome
    res = generate(MODEL, out, n=4, overrides=[*NARROW, "sampling.batch_size=3"])
    assert res.resumed == 2 and load_from_disk(str(out))["seed"] == [7, 8, 9, 10]
    assert json.loads((out / "retinalogos.json").read_text())["counts"] == {"images": 4, "resumed": 2}
    assert not (out / ".work").exists()


def test_generate_captions_from_real_rows(tmp_path):
    real = Dataset.from_dict(
        {
            "caption": ["REAL grade two left.", "REAL grade four left."],
            "dr_grade": [2, 4],
            "eye": ["left", "left"],
            "glaucoma": [False, False],
            "caption_fields": [{"lesions": "dots"}, {"lesions": "new vessels"}],
        }
    )
    real.save_to_disk(str(tmp_path / "real"))
    out = tmp_path / "synth"
    res = generate(MODEL, out, n=4, captions_from=tmp_path / "real", overrides=NARROW)
    ds = load_from_disk(str(out))
    for r in ds:
        assert r["caption"] == ("REAL grade two left." if r["dr_grade"] == 2 else "REAL grade four left.")
        assert r["caption_model"] == "real:real"
    inputs = json.loads(res.provenance.read_text())["inputs"]
    assert inputs["captions_from"]["ref"] == str(tmp_path / "real")
    assert len(inputs["captions_from"]["fingerprint"]) == 16


def test_sample_labels_follow_the_weights():
    rows = sample_labels(
        _conditions(dr_grade={0: 3, 4: 1}, glaucoma=0.5, lesions={4: {"neovascularisation": 1.0}}), 4000, seed=0
    )
    grade4 = np.mean([r["dr_grade"] == 4 for r in rows])
    assert 0.22 < grade4 < 0.28
    assert 0.45 < np.mean([r["glaucoma"] for r in rows]) < 0.55
    assert all(r["findings"] is None and r["dme"] == 0 for r in rows if r["dr_grade"] == 0)
    assert sample_labels(_conditions(), 5, seed=1) == sample_labels(_conditions(), 5, seed=1)

    # an override adds to the recipe's mapping; a whole mapping replaces it
    cfg = load_config(GenerateConfig, None, ["conditions.dr_grade.3=2"])
    assert cfg.conditions.dr_grade[3] == 2 and len(cfg.conditions.dr_grade) == 5
    cfg = load_config(GenerateConfig, None, ["conditions.dr_grade={3: 2}"])
    assert cfg.conditions.dr_grade == {3: 2}
    assert {r["dr_grade"] for r in sample_labels(cfg.conditions, 5, seed=0)} == {3}
    with pytest.raises(Exception, match="cannot assign"):
        cfg.sampling.seed = 3  # frozen


def test_generate_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="--n: give the number of images"):
        generate(MODEL, tmp_path / "x")
    with pytest.raises(ConfigError, match="recipe not found"):
        generate(MODEL, tmp_path / "x", recipe=tmp_path / "missing.yaml", n=2)
    with pytest.raises(InputError, match="exactly one image"):
        generate(MODEL, tmp_path / "x.png", prompts=["a"], n=3)
    with pytest.raises(InputError, match="label conditions write a dataset"):
        generate(MODEL, tmp_path / "x.png", n=1)
    with pytest.raises(InputError, match="--captions-from"):
        generate(MODEL, tmp_path / "x", prompts=["a"], captions_from=tmp_path)
    with pytest.raises(ConfigError, match="dr_grade must map ICDR grades 0-4"):
        generate(MODEL, tmp_path / "x", n=2, overrides=["conditions.dr_grade={7: 1.0}"])
    with pytest.raises(ConfigError, match="unknown key 'sampling.stepz'"):
        generate(MODEL, tmp_path / "x", n=2, overrides=["sampling.stepz=3"])
    with pytest.raises(ConfigError, match="unknown lesion"):
        drusen = _recipe(tmp_path, lambda d: d["conditions"]["lesions"][2].update(drusen=0.5))
        generate(MODEL, tmp_path / "x", recipe=drusen, n=2)
    with pytest.raises(ConfigError, match="conditions.dr_grade must be dict, got 3"):
        load_config(GenerateConfig, None, ["conditions.dr_grade=3"])
    res = CliRunner().invoke(
        app, ["generate", "-m", MODEL, "--prompts-file", str(tmp_path / "none.txt"), "-o", str(tmp_path / "d")]
    )
    assert res.exit_code != 0 and "--prompts-file" in str(res.exception)


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_generate_recipes_load(path):
    cfg = load_config(GenerateConfig, path)
    assert sum(cfg.conditions.dr_grade.values()) > 0 and cfg.sampling.num_inference_steps >= 1
    first = path.read_text().splitlines()[0]
    assert first.startswith("# retinalogos generate ") and "=" in first.split()[-1]  # launch command + one override


def test_default_recipe_is_the_shipped_one():
    assert load_config(GenerateConfig) == load_config(GenerateConfig, RECIPES / "conditions.yaml")
    assert load_config(GenerateConfig).sampling.num_inference_steps == 50  # the paper: 50 Euler steps at CFG 4.0


def test_a_missing_key_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, _recipe(tmp_path, lambda d: d["sampling"].pop("guidance_scale")))
    assert "missing required key 'sampling.guidance_scale'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("model", ["tiny:sana", "tiny:lumina2"])
def test_generate_other_families(tmp_path, model):
    from diffusers import DiffusionPipeline

    from retinalogos_hub.models import resolve
    from retinalogos_hub.pipelines import call_kwargs

    kwargs = call_kwargs(DiffusionPipeline.from_pretrained(resolve(model)))
    if model == "tiny:sana":  # FIELD-NOTES §3: exact tiny sizes, no long system instruction for a tiny encoder
        assert kwargs["use_resolution_binning"] is False and kwargs["complex_human_instruction"] is None
    out = tmp_path / "x.png"
    generate(model, out, prompts=["A fundus photograph of the right eye."], overrides=FAST)
    assert Image.open(out).size == (32, 32)


@pytest.mark.slow  # over 5 s: keeps `make test-fast` under 3 minutes
def test_shipped_conditions_are_clinically_coherent_and_every_prompt_passes_the_guard():
    from retinalogos_hub.caption.guard import check
    from retinalogos_hub.generate import ALLOWED, DEFINING, _plan_conditions

    cfg = load_config(GenerateConfig)
    rows = _plan_conditions(cfg, [f"t-{i:06d}" for i in range(600)], None)
    assert all(not check(r["prompt"], r) and r["caption_consistent"] for r in rows)
    by_grade: dict[int, list[set]] = {}
    for r in rows:
        lesions = set((r["findings"] or "").split(", ")) - {""}
        by_grade.setdefault(r["dr_grade"], []).append(lesions)
        assert lesions <= set(ALLOWED[r["dr_grade"]])  # nothing the grade cannot show
        assert r["dr_grade"] == 0 or lesions & set(DEFINING[r["dr_grade"]])  # a sign that defines the grade
        assert r["dme"] == 0 or (r["dr_grade"] >= 2 and "hard exudates" in lesions)  # DME given DR, with exudates
        if r["dr_grade"] < 4:
            assert "neovasculari" not in r["prompt"].lower().replace("no new vessels", "")
    assert set(by_grade) == {0, 1, 2, 3, 4}
    assert all(s == {"microaneurysms"} for s in by_grade[1]) and all(not s for s in by_grade[0])

    def share(g, lesion):
        return np.mean([lesion in s for s in by_grade[g]])

    # frequencies follow the grade: haemorrhages and exudates grow with it, new vessels only in PDR
    assert share(2, "haemorrhages") < share(3, "haemorrhages") or share(3, "haemorrhages") > 0.85
    assert share(4, "neovascularisation") > 0.8 and share(2, "hard exudates") > 0.3
    dme = {g: np.mean([r["dme"] for r in rows if r["dr_grade"] == g]) for g in range(5)}
    assert dme[0] == dme[1] == 0 and 0 < dme[2] < dme[4]
    # row i depends only on (seed, i): a longer run starts with the shorter one
    assert sample_labels(cfg.conditions, 5, seed=3) == sample_labels(cfg.conditions, 50, seed=3)[:5]


@pytest.mark.parametrize(
    "override, message",
    [
        ("conditions.lesions.1={microaneurysms: 1.0, haemorrhages: 0.2}", "grade 1 does not show it"),
        ("conditions.lesions.2={microaneurysms: 1.0, neovascularisation: 0.1}", "grade 2 does not show it"),
        ("conditions.lesions.4={microaneurysms: 1.0}", "grade 4 needs one of neovascularisation"),
        ("conditions.dme.1=0.2", "dme.1 must be 0"),
        ("conditions.lesions.3.IRMA=1.5", "a probability"),
    ],
)
def test_incoherent_conditions_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(GenerateConfig, None, [override])


def test_real_captions_match_with_unknown_labels_as_wildcards(tmp_path):
    # a real DR dataset: glaucoma and DME unknown (None) for every row, as in EyePACS
    real = Dataset.from_dict(
        {
            "caption": [
                "REAL grade two left.",
                "REAL grade four left.",
                "REAL grade four left, the optic disc is glaucomatous.",  # the guard refuses it for glaucoma=False
                "REAL ungraded left.",
            ],
            "dr_grade": [2, 4, 4, None],
            "eye": ["left", "left", "left", "left"],
            "glaucoma": [None, None, None, None],
            "dme": [None, None, None, None],
            "caption_fields": [{"lesions": "dots"}, {"lesions": "new vessels"}, {}, {}],
        }
    )
    real.save_to_disk(str(tmp_path / "real"))
    res = generate(MODEL, tmp_path / "synth", n=6, captions_from=tmp_path / "real", overrides=NARROW)
    ds = load_from_disk(str(res.out))
    assert ds["caption_model"] == ["real:real"] * 6  # every row found a caption (none did before: glaucoma None)
    for r in ds:  # the most specific match wins; the one the guard refuses is never used
        assert r["caption"] == ("REAL grade two left." if r["dr_grade"] == 2 else "REAL grade four left.")
        assert r["caption_consistent"] and r["glaucoma"] is False
