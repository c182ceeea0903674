"""zoo.yaml -> zoo list / build / publish: the official tiny checkpoint converted by `build`, a finished run skipped,
everything pushed to the loopback Hub with a collection and a zoo card, and each repo loaded in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_convert_official import write_checkpoint
from test_push_model import run_dir  # noqa: F401  (the finished tiny run fixture)
from typer.testing import CliRunner

from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.zoo import build, leaderboard, load_zoo, publish

ROOT = Path(__file__).resolve().parents[1]


def entry(name: str, **kw) -> dict:
    base = dict(
        name=name, repo_id=f"zoo-org/{name}", kind="trained", backbone="lumina-next", stage="step3", mode="full",
        recipe="recipes/tiny/lumina-next/step3_hires_sft_full.yaml", run_dir=f"runs/{name}", base_model="tiny:lumina-next",
        dataset="my-lab/cfp", license=None, eval_reports=[], reported=None, official=None,
    )  # fmt: skip
    return {**base, **kw}


@pytest.fixture
def zoo_dir(tmp_path, run_dir):  # noqa: F811
    """A zoo folder: the shipped tiny recipe, the authors' layout checkpoint (unbuilt), a finished run with a report."""
    root = tmp_path / "zoo"
    (root / "recipes" / "tiny" / "lumina-next").mkdir(parents=True)
    for name in ("step3_hires_sft_full.yaml",):
        src = ROOT / "recipes" / "tiny" / "lumina-next" / name
        (root / "recipes" / "tiny" / "lumina-next" / name).write_text(src.read_text())
    write_checkpoint(root / "ckpt")
    (root / "runs").mkdir()
    run_dir.rename(root / "runs" / "tiny-step3")
    report = {
        "kind": "fid",
        "title": "FID / KID",
        "summary": {},
        "tables": [],
        "fid": {"generated": {"eyepacs": 120.5, "aptos": 130.25}, "real vs real (halves)": {"eyepacs": 40.0}},
        "kid": {"generated": {"eyepacs": [0.0123, 0.001], "aptos": [0.02, 0.002]}},
        "prdc": {"generated": {"eyepacs": {"precision": 0.5, "recall": 0.25, "density": 0.75, "coverage": 0.125}}},
    }
    (root / "runs" / "tiny-step3" / "eval" / "report.json").write_text(json.dumps(report))
    (root / "runs" / "tiny-step3" / "eval" / "clip.json").write_text(
        json.dumps({"kind": "clip-score", "title": "CLIP score", "summary": {"clip_score": 0.61234}})
    )
    official = entry(
        "official", kind="official", stage="official", recipe=None, run_dir="runs/official", base_model="junzhin/RetinaLogo",
        dataset=None, reported={"FID": {"EyePACS": 42.44}}, license="apache-2.0",
        official={"checkpoint": "ckpt", "text_encoder": "tiny:lumina-next", "vae": "tiny:lumina-next"},
    )  # fmt: skip
    trained = entry(
        "tiny-step3", run_dir="runs/tiny-step3",
        eval_reports=["runs/tiny-step3/eval/report.json", "runs/tiny-step3/eval/clip.json"],
    )  # fmt: skip
    manifest = {
        "collection": {"namespace": "zoo-org", "title": "Tiny fundus zoo", "description": "Test zoo."},
        "card_repo": "zoo-org/zoo",
        "entries": [official, trained],
    }
    (root / "zoo.yaml").write_text("# retinalogos zoo list\n" + yaml.safe_dump(manifest, sort_keys=False))
    return root


def test_shipped_zoo_loads_and_prints_its_commands():
    zoo = load_zoo(ROOT / "zoo.yaml")
    assert {e.kind for e in zoo.entries} == {"official", "trained"}
    out = build(ROOT / "zoo.yaml", dry_run=True)
    cmds = {s.entry.name: s.command for s in out}
    assert cmds["retinalogos-official"][:2] == ["retinalogos", "convert-official"]
    assert cmds["lumina-next-step3-full"][:2] == ["accelerate", "launch"]
    assert any(c.startswith("output_dir=") for c in cmds["lumina-next-step3-full"])


def test_cli_list_and_print(zoo_dir):
    from retinalogos_hub.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["zoo", "list", "--zoo", str(zoo_dir / "zoo.yaml")])
    assert res.exit_code == 0, res.output
    assert "official" in res.output and "tiny-step3" in res.output
    res = runner.invoke(app, ["zoo", "build", "--print", "--zoo", str(zoo_dir / "zoo.yaml")])
    assert res.exit_code == 0, res.output
    assert "retinalogos convert-official" in res.output and "# built: retinalogos train" in res.output


def test_bad_manifests_are_named(zoo_dir, tmp_path):
    data = yaml.safe_load((zoo_dir / "zoo.yaml").read_text())
    data["entries"][1]["name"] = "official"
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="names repeat"):
        load_zoo(tmp_path / "dup.yaml")
    data["entries"][1]["nmae"] = "x"
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown key"):
        load_zoo(tmp_path / "typo.yaml")
    with pytest.raises(InputError, match="not built yet: official"):
        publish(zoo_dir / "zoo.yaml")
    with pytest.raises(InputError, match="no entry named nope"):
        build(zoo_dir / "zoo.yaml", only=["nope"])


def test_leaderboard_reads_reports(zoo_dir):
    rows, other = leaderboard(load_zoo(zoo_dir / "zoo.yaml"), zoo_dir)
    assert [
        "tiny-step3",
        "eyepacs",
        "120.50",
        "12.30 ± 1.00",
        "0.50",
        "0.25",
        "0.75",
        "0.12",
        "measured (generated)",
    ] in rows
    assert not any("real vs real" in r[-1] for r in rows)
    assert ["official", "EyePACS", "42.44", "-", "-", "-", "-", "-", "reported (paper)"] in rows
    assert ["tiny-step3", "CLIP score", "clip_score", "0.61"] in other


@pytest.mark.slow
def test_build_then_publish_to_the_loopback_hub(zoo_dir, hub_server, tmp_path):
    res = build(zoo_dir / "zoo.yaml")  # converts the official checkpoint; the finished run is skipped
    assert [s.built for s in res] == [True, True]
    assert (zoo_dir / "runs" / "official" / "model_index.json").is_file()

    out = publish(zoo_dir / "zoo.yaml", token=hub_server.token)
    assert set(out.urls) == {"official", "tiny-step3"}
    for repo in ("zoo-org/official", "zoo-org/tiny-step3", "zoo-org/zoo"):
        assert hub_server.repo("model", repo) is not None, repo
    (coll,) = hub_server.collections.values()
    assert coll["title"] == "Tiny fundus zoo" and [i["id"] for i in coll["items"]] == [
        "zoo-org/official",
        "zoo-org/tiny-step3",
    ]
    again = publish(zoo_dir / "zoo.yaml", token=hub_server.token)  # idempotent: same collection, no duplicate items
    assert again.collection == out.collection and len(next(iter(hub_server.collections.values()))["items"]) == 2

    from huggingface_hub import hf_hub_download

    card = Path(hf_hub_download("zoo-org/zoo", "README.md", token=hub_server.token)).read_text()
    assert "| tiny-step3 | eyepacs | 120.50 | 12.30 ± 1.00 |" in card and "reported (paper)" in card
    assert "Not for clinical diagnosis" in card and str(zoo_dir) not in card
    # a trained entry's licence is derived from its run (base model terms + every training source), not declared
    assert "| base-model-and-training-data-terms (non-commercial) |" in card and "| apache-2.0 |" in card
    official_card = Path(hf_hub_download("zoo-org/official", "README.md")).read_text()
    assert 'from_pretrained("zoo-org/official")' in official_card

    # every published pipeline loads by its repo id in a fresh process, straight from the (loopback) Hub
    script = (
        "import sys, torch\nfrom diffusers import DiffusionPipeline\n"
        "for repo in sys.argv[1:]:\n"
        "    pipe = DiffusionPipeline.from_pretrained(repo)\n"
        "    img = pipe('a fundus photograph', height=32, width=32, num_inference_steps=2, clean_caption=False,\n"
        "               generator=torch.Generator().manual_seed(0)).images[0]\n"
        "    print(repo, type(pipe).__name__, img.size)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": hub_server.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "HF_HOME": str(tmp_path / "fresh-hf")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, "zoo-org/official", "zoo-org/tiny-step3"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "zoo-org/official LuminaPipeline (32, 32)" in done.stdout
    assert "zoo-org/tiny-step3 LuminaPipeline (32, 32)" in done.stdout
