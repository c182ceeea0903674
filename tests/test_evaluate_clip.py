"""`evaluate clip-score` with the embedded tiny CLIP: the score equals CLIP's own normalised embeddings' cosine;
provenance; bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.evaluate.clip import clip_score
from retinalogos_hub.models import resolve

CAPTIONS = ["The optic disc is round and pink.", "Scattered haemorrhages and hard exudates.", "Normal macula. " * 40]


@pytest.fixture
def captioned(tmp_path, fundus):
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        fundus(48, seed=i, dr_grade=2 * i).save(p)
        paths.append(str(p))
    features = Features({"image": ImageFeature(), "caption": Value("string"), "id": Value("string")})
    ds = Dataset.from_dict({"image": paths, "caption": CAPTIONS, "id": ["a", "b", "c"]}, features=features)
    ds.save_to_disk(str(tmp_path / "ds"))
    return tmp_path / "ds", ds


def test_clip_score_matches_clip_model(captioned, tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    path, ds = captioned
    out = tmp_path / "r"
    args = ["evaluate", "clip-score", "--data", str(path), "-m", "tiny:clip", "-o", str(out), "batch_size=2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["captions truncated"] == 1  # the 200-word caption exceeds CLIP's 77 tokens
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate clip-score" and prov["config"]["batch_size"] == 2
    assert prov["config"]["caption_column"] == "caption" and prov["config"]["device"] == "cpu"  # no GPU here
    assert set(prov["inputs"]) == {"data", "model"} and prov["inputs"]["model"]["ref"] == "tiny:clip"
    assert prov["counts"] == {"pairs": 3, "truncated": 1}

    # the reference: CLIPModel.forward's own normalised embeddings
    model = CLIPModel.from_pretrained(resolve("tiny:clip")).eval()
    proc = CLIPProcessor.from_pretrained(resolve("tiny:clip"))
    inputs = proc(
        text=CAPTIONS,
        images=[r["image"] for r in ds],
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=77,
    )
    with torch.no_grad():
        o = model(**inputs)
    expected = (o.image_embeds * o.text_embeds).sum(-1).clamp(min=0)
    assert report["scores"] == pytest.approx(expected.tolist(), abs=1e-5)
    assert report["summary"]["CLIP score"] == pytest.approx(float(expected.mean()), abs=1e-5)


def test_clip_score_bad_inputs(captioned, tmp_path, fundus):
    path, _ = captioned
    with pytest.raises(InputError, match="no 'prompt' column.*caption_column=NAME"):
        clip_score(path, "tiny:clip", tmp_path / "r", overrides=["caption_column=prompt"])
    with pytest.raises(ConfigError, match="unknown key 'batch'"):
        clip_score(path, "tiny:clip", tmp_path / "r", overrides=["batch=3"])
    folder = tmp_path / "folder"
    folder.mkdir()
    fundus(32).save(folder / "a.png")
    with pytest.raises(InputError, match="an image folder has no captions"):
        clip_score(folder, "tiny:clip", tmp_path / "r")
