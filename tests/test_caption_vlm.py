"""Captioning with tiny random VLMs through the real processor -> chat template -> generate path; retries; resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import load_from_disk
from PIL import Image
from test_caption import make_curated

from retinalogos_hub.caption import caption_dataset, shipped
from retinalogos_hub.caption.backends import Item, TransformersBackend, fit_pixels
from retinalogos_hub.caption.prompt import JSON_KEYS, build_prompt
from retinalogos_hub.caption.run import _caption_rows
from retinalogos_hub.caption.shards import read_records
from retinalogos_hub.errors import OfflineError

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "caption" / "transformers.yaml"


def tiny(name: str, *overrides: str):
    """The shipped transformers recipe on a tiny random VLM, on the CPU."""
    return shipped("transformers", f"transformers.model=tiny:{name}", "transformers.device=cpu", *overrides)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    return make_curated(tmp_path_factory.mktemp("vlm") / "ds", n=6, size=40, bad={4})


@pytest.mark.parametrize("name", ["qwen2-vl", "qwen2.5-vl", "llava"])
def test_tiny_vlm_rows_are_flagged_not_dropped(name, curated, tmp_path, monkeypatch):
    attempts = []
    real = TransformersBackend.answer
    monkeypatch.setattr(
        TransformersBackend,
        "answer",
        lambda self, items, attempt=0: attempts.append(attempt) or real(self, items, attempt),
    )
    cfg = tiny(name, "transformers.batch_size=3", "transformers.max_new_tokens=6")
    r = caption_dataset(curated, tmp_path / "out", cfg, progress=False)
    ds = load_from_disk(str(tmp_path / "out"))
    assert r.merged and len(ds) == 6 and r.flagged == 6
    assert set(ds["caption_model"]) == {f"tiny:{name}"}
    for row in ds.remove_columns("image"):
        assert row["caption_consistent"] is False and len(row["caption_issues"]) == 1
        if row["id"] == "demo/0004":  # undecodable bytes: flagged, the job went on
            assert row["caption_issues"][0].startswith("unreadable image")
        else:  # random weights never write the JSON asked for: retried once (sampling), then flagged
            assert row["caption_issues"][0].startswith("malformed model output (retried once)")
    assert sorted(set(attempts)) == [0, 1]


@pytest.mark.parametrize("name", ["qwen2.5-vl", "llava"])
def test_left_padded_batch_matches_unbatched_greedy(name):
    be = TransformersBackend(tiny(name, "transformers.max_new_tokens=8"))
    rows = [
        dict(id=f"r{k}", dr_grade=k, eye="left", glaucoma=bool(k % 2), dme=None, diseases=["amd"] * k) for k in range(3)
    ]
    from retinalogos_hub.demo.fundus import fundus_image

    # different image sizes -> different numbers of image tokens -> real padding inside the batch
    prompts = [build_prompt(r, version="v1", min_words=80, max_words=200) for r in rows]
    items = [Item(r, fundus_image(56 + 28 * k, seed=k), p) for k, (r, p) in enumerate(zip(rows, prompts))]
    batched = be.answer(items)
    assert batched == [be.answer([it])[0] for it in items]
    assert len(set(batched)) > 1  # the rows really differ


class Scripted:
    """A backend that replays canned answers per row id (to test the retry policy exactly)."""

    needs_image, model_name = True, "scripted"

    def __init__(self, script):
        self.script, self.calls = script, []

    def answer(self, items, attempt=0):
        self.calls.append((attempt, [i.row["id"] for i in items]))
        return [self.script[i.row["id"]].pop(0) for i in items]


def _answer(caption: str) -> str:
    return json.dumps({k: caption if k == "caption" else f"{k}." for k in JSON_KEYS})


def test_retry_policy_malformed_once_then_flag_and_regenerate_inconsistent():
    ok, bad = _answer("Fundus of the left eye without haemorrhages."), _answer("Many haemorrhages in the right eye.")
    script = {
        "malformed-then-ok": ["{oops", ok],
        "malformed-twice": ["no json", "still no json"],
        "inconsistent-then-ok": [bad, ok],
        "always-inconsistent": [bad, bad, bad],
        "error": [RuntimeError("HTTP 400: image too large")],
    }
    be = Scripted(script)
    rows = [dict(id=k, dr_grade=0, eye="left") for k in script]
    cfg = shipped("template", "regenerate_inconsistent=2")
    recs = {r["id"]: r for r in _caption_rows(be, rows, [Image.new("RGB", (8, 8))] * len(rows), cfg)}
    assert recs["malformed-then-ok"]["caption_consistent"] and recs["malformed-then-ok"]["caption"].startswith("Fundus")
    assert recs["malformed-twice"]["caption_issues"][0].startswith("malformed model output (retried once)")
    assert recs["malformed-twice"]["caption"] == "" and not recs["malformed-twice"]["caption_consistent"]
    assert recs["inconsistent-then-ok"]["caption_consistent"]
    always = recs["always-inconsistent"]
    assert not always["caption_consistent"] and always["caption"]
    assert any("eye is left" in i for i in always["caption_issues"])
    assert recs["error"]["caption_issues"] == ["request failed: HTTP 400: image too large"]
    assert [a for a, _ in be.calls] == [0, 1, 2]  # 1 + regen 2 attempts
    assert all(not v for v in script.values())  # every scripted answer used


def test_fit_pixels_keeps_aspect_and_bounds_area():
    im = fit_pixels(Image.new("RGB", (400, 200)), 20000)
    assert im.width * im.height <= 20000 and abs(im.width / im.height - 2) < 0.05
    assert fit_pixels(im, None) is im


def test_hub_id_offline_names_hf_hub_offline_and_local_path(curated, tmp_path):
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE") as e:
        caption_dataset(curated, tmp_path / "o", shipped("transformers"), progress=False)
    assert "Qwen/Qwen2.5-VL-7B-Instruct" in str(e.value) and "transformers.model=/path/to/model" in e.value.hint


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    n = 24
    src = make_curated(tmp_path / "ds", n=n, size=32)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "retinalogos_hub.cli",
        "caption",
        "run",
        str(src),
        "--out",
        str(out),
        "--recipe",
        str(RECIPE),
        "transformers.model=tiny:qwen2-vl",
        "transformers.batch_size=2",
        "commit_every=2",
        "transformers.max_new_tokens=4",
    ]
    work = out / ".work" / "caption"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        committed = len(read_records(work)[0]) if work.exists() else 0
        if committed >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(read_records(work)[0])
    assert 4 <= before < n, f"the job must be killed mid-run (committed {before} of {n})"
    assert not (out / "state.json").exists()

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(x) for p in sorted(work.glob("part-*.jsonl")) for x in p.read_text().splitlines()]
    ids = [x["id"] for x in lines]
    assert len(ids) == len(set(ids)) == n  # nothing captioned twice, nothing lost
    ds = load_from_disk(str(out))
    assert sorted(ds["id"]) == sorted(load_from_disk(str(src))["id"]) and len(ds) == n


@pytest.mark.slow
def test_processes_under_torchrun_split_rows_and_the_main_one_merges(tmp_path):
    """What `accelerate launch` / torchrun does on a multi-GPU node, here with 2 CPU processes (gloo), each with its
    own copy of the VLM."""
    src = make_curated(tmp_path / "ds", n=9, size=32)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "retinalogos_hub.cli",
        "caption",
        "run",
        str(src),
        "--out",
        str(out),
        "--recipe",
        str(RECIPE),
        "transformers.model=tiny:qwen2-vl",
        "transformers.batch_size=3",
        "transformers.max_new_tokens=4",
    ]
    r = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    work = out / ".work" / "caption"
    parts = sorted(p.name for p in work.glob("part-*.jsonl"))
    assert parts == ["part-00000-of-00001-p000-of-002.jsonl", "part-00000-of-00001-p001-of-002.jsonl"]
    sizes = [len((work / p).read_text().splitlines()) for p in parts]
    assert sorted(sizes) == [4, 5]
    assert sorted(load_from_disk(str(out))["id"]) == sorted(load_from_disk(str(src))["id"])
    prov = json.loads((out / "retinalogos.json").read_text())
    assert prov["counts"]["rows"] == 9 and prov["config"]["transformers"]["model"] == "tiny:qwen2-vl"
