"""`evaluate downstream`: the Table-2 experiment end to end on tiny classifiers; provenance; resume; unlabelled
synthetic refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, Features
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.config import load_config
from retinalogos_hub.errors import InputError
from retinalogos_hub.evaluate.downstream import DownstreamRecipe, downstream
from retinalogos_hub.generate import generate
from retinalogos_hub.schema import CURATED

RECIPES = Path(__file__).parents[1] / "recipes" / "eval"
NOT_DOWNSTREAM = ("fid", "clip_score", "turing", "memorization", "fidelity")
TASKS = [p for p in sorted(RECIPES.glob("*.yaml")) if p.stem not in NOT_DOWNSTREAM]
FAST = ["sampling.height=32", "sampling.width=32", "sampling.num_inference_steps=2"]


def _real(tmp_path, fundus) -> Path:
    rows = []
    for i in range(15):
        grade = i % 5
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        fundus(40, seed=i, dr_grade=grade).save(path)
        rows.append(
            {
                "image": str(path),
                "id": f"idrid/{i}",
                "source": "idrid",
                "source_id": str(i),
                "patient_id": str(i),
                "eye": "left",
                "dr_grade": grade,
                "dme": 0,
                "glaucoma": False,
                "diseases": [],
                "findings": None,
                "age": None,
                "age_band": None,
                "sex": None,
                "quality": None,
                "quality_score": None,
                "width": 40,
                "height": 40,
                "split": "test" if i >= 10 else "train",
                "official_split": None,  # schema.CURATED column (issue 15)
                "license": "CC-BY-4.0",
                "redistributable": True,
            }
        )
    Dataset.from_list(rows, features=Features(CURATED)).save_to_disk(str(tmp_path / "real"))
    return tmp_path / "real"


@pytest.mark.slow
def test_downstream_end_to_end_and_resume(tmp_path, fundus, monkeypatch):
    real = _real(tmp_path, fundus)
    grades = ["conditions.dr_grade={0: 1, 2: 1, 4: 1}", "sampling.batch_size=6"]
    generate("tiny:lumina-next", tmp_path / "synth", n=6, overrides=[*FAST, *grades])
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "downstream",
        "--recipe",
        str(RECIPES / "tiny.yaml"),
        f"data.real={real}",
        f"data.synthetic={tmp_path / 'synth'}",
        f"output_dir={out}",
        "training.epochs=1",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"real train": 8, "validation": 2, "synthetic": 6, "test": 5}
    assert set(report["metrics"]) == {"ResNet (tiny)", "ViT (tiny)"}
    for by_set in report["metrics"].values():
        assert set(by_set) == {"real", "real+synthetic"}
        for m in by_set.values():
            assert 0 <= m["accuracy"] <= 1 and 0 <= m["f1"] <= 1 and -1 <= m["qwk"] <= 1
    assert len(list((out / ".work" / "downstream").glob("*.json"))) == 8 and not (out / "config.yaml").exists()
    assert (
        "95% CI over 2 seed(s)" in (out / "report.html").read_text()
        and "Paired comparison" in (out / "report.html").read_text()
    )
    for clf in report["metrics"]:  # two seeds per (classifier, training set); the paired comparison over them
        assert set(report["per_seed"][clf]["real"]) == {"0", "1"} and report["paired"][clf]["qwk"]["seeds"] == 2
        lo, hi = report["ci"][clf]["real"]["accuracy"]
        assert lo is None or lo <= report["metrics"][clf]["real"]["accuracy"] <= hi
    # the provenance: the resolved recipe (overrides included), the data sets' and classifiers' fingerprints, counts
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["stage"] == "evaluate downstream" and prov["config"]["training"]["epochs"] == 1
    assert prov["config"]["data"]["synthetic"] == str(tmp_path / "synth")
    assert prov["config"]["training"]["device"] is None
    assert set(prov["inputs"]) == {"real", "synthetic", "model:ResNet (tiny)", "model:ViT (tiny)"}
    assert prov["counts"] == {"rows": report["counts"], "runs": 8, "trained": 8, "read_back": 0}
    # the real-only run of the first seed is kept as a grader for `evaluate fidelity`
    from retinalogos_hub.evaluate.fidelity import fidelity

    graded = fidelity(tmp_path / "synth", tmp_path / "fidelity", grader=str(out / "graders" / "ResNet__tiny_"))
    assert graded.counts["graded"] == 6 and 0 <= graded.accuracy <= 1

    # killed and rerun: finished runs are read back, nothing is trained again
    from retinalogos_hub.evaluate import downstream as mod

    monkeypatch.setattr(mod, "_train_and_score", lambda *a, **k: pytest.fail("retrained a finished run"))
    again = downstream(RECIPES / "tiny.yaml", args[4:], device="cpu")  # the device is recorded, not part of a run
    assert again.metrics == report["metrics"]
    prov = json.loads(again.provenance.read_text())
    assert prov["counts"]["read_back"] == 8 and prov["config"]["training"]["device"] == "cpu"

    # other settings in the same output_dir: trained afresh, never answered with the earlier results
    retrained = []
    zeros = {"accuracy": 0.0, "f1": 0.0, "qwk": 0.0}
    monkeypatch.setattr(mod, "_train_and_score", lambda *a, **k: retrained.append(1) or zeros)
    downstream(RECIPES / "tiny.yaml", [*args[4:-1], "training.epochs=2"])
    assert len(retrained) == 8


def test_training_resumes_from_its_epoch_checkpoint(tmp_path, fundus, monkeypatch):
    import torch

    from retinalogos_hub.evaluate.downstream import _train_and_score
    from retinalogos_hub.evaluate.images import open_images

    real = open_images(_real(tmp_path, fundus))
    cfg = load_config(
        DownstreamRecipe, RECIPES / "tiny.yaml", [f"data.real={real.path}", "data.synthetic=x", "output_dir=o"]
    )
    clf, rows, test = cfg.classifiers[0], [(real, i) for i in range(10)], [(real, i) for i in range(10, 15)]
    val = rows[:3]
    straight = _train_and_score(clf, rows, val, test, cfg, tmp_path / "a.ckpt.pt", 0)  # 2 epochs x 2 steps

    step, calls = torch.optim.AdamW.step, {"n": 0}

    def killed_in_second_epoch(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", killed_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        _train_and_score(clf, rows, val, test, cfg, tmp_path / "b.ckpt.pt", 0)
    assert torch.load(tmp_path / "b.ckpt.pt", weights_only=False)["epoch"] == 0
    calls["n"] = -100  # count on, no more kills
    resumed = _train_and_score(clf, rows, val, test, cfg, tmp_path / "b.ckpt.pt", 0)
    assert calls["n"] == -98  # only the second epoch's two steps ran again
    a, b = (torch.load(tmp_path / f"{k}.ckpt.pt", weights_only=False)["model"] for k in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed == straight


def test_downstream_refuses_unlabelled_synthetic(tmp_path, fundus):
    real = _real(tmp_path, fundus)
    generate("tiny:lumina-next", tmp_path / "free", prompts=["A fundus photograph."], n=2, overrides=FAST)
    out = f"output_dir={tmp_path / 'o'}"
    with pytest.raises(InputError, match="cannot enter the downstream"):
        downstream(RECIPES / "tiny.yaml", [f"data.real={real}", f"data.synthetic={tmp_path / 'free'}", out])
    with pytest.raises(InputError, match="outside 0..1"):
        downstream(
            RECIPES / "tiny.yaml",
            [f"data.real={real}", f"data.synthetic={real}", out, "num_labels=2", "label=dr_grade"],
        )
    assert not (tmp_path / "o" / "retinalogos.json").exists()


@pytest.mark.parametrize("recipe", TASKS, ids=lambda p: p.name)
def test_shipped_downstream_recipes_load(recipe):
    cfg = load_config(DownstreamRecipe, recipe)
    assert cfg.classifiers and cfg.num_labels in (2, 5)


def test_metric_modules_load_by_path_offline():
    from retinalogos_hub.evaluate.metrics import load

    assert load("qwk").compute(predictions=[0, 1, 2, 4], references=[0, 1, 2, 3], labels=[0, 1, 2, 3, 4])["qwk"] > 0.9
    assert load("f1").compute(predictions=[0, 0, 1], references=[0, 1, 1])["f1"] == pytest.approx(2 / 3)
    assert load("accuracy").compute(predictions=[1, 1], references=[1, 0])["accuracy"] == 0.5


def test_ci_over_seeds_paired_comparison_and_the_official_split(tmp_path, fundus, monkeypatch):
    from retinalogos_hub.evaluate import downstream as mod

    real = _real(tmp_path, fundus)
    gains = {"real": 0.0, "real+synthetic": 0.1}

    def fake_run(clf, rows, val, test, cfg, ckpt, seed, save_to=None):
        # real+synthetic rows are the longer list; the score moves with the seed and the training set
        name = "real+synthetic" if len(rows) > 8 else "real"
        acc = 0.5 + 0.05 * seed + gains[name] + (0.02 * seed if name == "real+synthetic" else 0)
        return {"accuracy": acc, "f1": acc, "qwk": acc, "epoch": 1}

    monkeypatch.setattr(mod, "_train_and_score", fake_run)
    args = [f"data.real={real}", f"data.synthetic={real}", f"output_dir={tmp_path / 'o'}", "training.seeds=[0, 1, 2]"]
    res = downstream(RECIPES / "tiny.yaml", [*args, "num_labels=5"])
    m, (lo, hi) = res.metrics["ResNet (tiny)"]["real"]["accuracy"], res.ci["ResNet (tiny)"]["real"]["accuracy"]
    assert m == pytest.approx(0.55) and lo < m < hi and hi - m == pytest.approx(m - lo)
    assert hi - lo == pytest.approx(2 * 4.302653 * 0.05 / 3**0.5, rel=1e-4)  # t(0.975, 2) * sd / sqrt(3)
    paired = res.paired["ResNet (tiny)"]["accuracy"]
    assert paired["diff"] == pytest.approx(0.12) and paired["wins"] == 3 and paired["p"] < 0.05
    assert res.counts["validation"] == 2 and res.counts["real train"] == 8  # carved by patient from 10 train rows
    with pytest.raises(InputError, match="official split has 413 and 103"):
        downstream(RECIPES / "tiny.yaml", [*args, "data.expected_rows={train: 413, test: 103}"])
