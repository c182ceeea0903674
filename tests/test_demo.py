"""The whole path through the real CLI: `retinalogos demo` exits 0 and every exported pipeline reloads elsewhere."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

LOAD_AND_GENERATE = """
import sys, torch
torch.set_num_threads(1)
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained(sys.argv[1])
kw = {"clean_caption": False} if type(pipe).__name__ == "LuminaPipeline" else {}
img = pipe("a fundus photograph of the left eye", height=64, width=64, num_inference_steps=2,
           generator=torch.Generator().manual_seed(0), **kw).images[0]
print(type(pipe).__name__, img.size)
"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "retinalogos_hub.cli", "demo", "--workdir", str(work), "--patients", "5"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc


def test_demo_summary_and_outputs(demo_run):
    work, proc = demo_run
    summary = json.loads((work / "summary.json").read_text())
    for key in ("dataset_dir", "hub_dataset_dir", "pipeline_dirs", "samples_png"):
        assert key in summary
    assert set(summary["pipeline_dirs"]) == {"step1", "step3", "step3_lora"}
    assert "retinalogos demo" in proc.stdout  # the rich summary table

    from datasets import load_dataset, load_from_disk
    from PIL import Image

    from retinalogos_hub.schema import CAPTIONED

    captioned = load_from_disk(summary["dataset_dir"])
    for name, feature in CAPTIONED.items():
        assert captioned.features[name] == feature, name
    assert all(len(c.split()) > 20 for c in captioned["caption"])
    hub = load_dataset(summary["hub_dataset_dir"], "all")
    assert sum(len(s) for s in hub.values()) == len(captioned)
    assert Image.open(summary["samples_png"]).size[0] >= 64


def test_every_pipeline_reloads_in_a_separate_process(demo_run):
    work, _ = demo_run
    summary = json.loads((work / "summary.json").read_text())
    for name, folder in summary["pipeline_dirs"].items():
        out = subprocess.run(
            [sys.executable, "-c", LOAD_AND_GENERATE, folder], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, f"{name}: {out.stderr[-2000:]}"
        assert "(64, 64)" in out.stdout, name


def test_step3_starts_from_step1(demo_run):
    work, _ = demo_run
    summary = json.loads((work / "summary.json").read_text())
    runs = {k: json.loads(open(os.path.join(v, "run.json")).read()) for k, v in summary["run_dirs"].items()}
    assert runs["step3"]["base_model"] == summary["pipeline_dirs"]["step1"]
    assert runs["step3_lora"]["base_model"] == summary["pipeline_dirs"]["step1"]
    assert runs["step3"]["resolution"] > runs["step1"]["resolution"]
    assert runs["step3"]["train_rows"] <= runs["step1"]["train_rows"]  # only rows step 2 kept


def test_demo_ends_with_an_evaluation_report(demo_run):
    work, proc = demo_run
    summary = json.loads((work / "summary.json").read_text())
    report = summary["evaluation_report"]
    assert report == str(work / "eval" / "report.html") and os.path.isfile(report)
    figures = json.loads((work / "eval" / "report.json").read_text())
    assert set(figures["fid"]) == {"step1", "step3"} and all(v > 0 for v in figures["fid"].values())
    assert set(figures["laterality_accuracy"]) == {"step1", "step3"}
    assert "report.html" in proc.stdout  # the CLI prints where the report is
