"""Curation end to end on miniature source layouts: dedup, exclusions, splits, manifest, provenance, resume, shards +
merge; and the curation recipe."""

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import retinalogos_hub
from retinalogos_hub import SHIPPED, stage
from retinalogos_hub.config import load_config
from retinalogos_hub.curate import CurateConfig, curate, merge, pipeline
from retinalogos_hub.curate.dedup import BKTree, Item, find_duplicates, hamming
from retinalogos_hub.curate.splits import assign
from retinalogos_hub.demo.layouts import WRITERS, write_layout
from retinalogos_hub.errors import ConfigError, InputError, SourceError
from retinalogos_hub.schema import CURATED

RECIPE = SHIPPED / "recipes" / "curate" / "default.yaml"
BASE = load_config(CurateConfig)  # the shipped recipe
FOV = BASE.fov
CFG = replace(BASE, size=64, commit_every=3)
WORK = Path(".work", "curate", "shard-0-of-1")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """eyepacs + aptos (+ idrid when its layout exists) with planted problems:
    an exact copy and a resized PNG copy of an EyePACS image inside APTOS, a truncated JPEG, a non-fundus picture,
    and EXIF in a source JPEG."""
    root = tmp_path_factory.mktemp("raw")
    eyepacs = write_layout("eyepacs", root / "eyepacs", n=8, seed=0)
    aptos = write_layout("aptos", root / "aptos", n=8, seed=1)
    train = sorted((eyepacs / "train").glob("*.jpeg"))
    aptos_imgs = sorted((aptos / "train_images").glob("*.png"))
    shutil.copy(train[0], aptos_imgs[0])  # exact copy (same bytes, other name/format suffix)
    im = Image.open(train[1])
    im.resize((im.width * 4 // 5, im.height * 4 // 5)).save(aptos_imgs[1], "PNG")  # near-duplicate: resized, re-encoded
    data = train[2].read_bytes()
    train[2].write_bytes(data[: len(data) // 2])  # truncated download
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(aptos_imgs[2], "PNG")  # not a fundus photo
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x9286] = "patient name: Jane Doe"  # UserComment
    Image.open(train[3]).save(train[3], "JPEG", exif=exif, quality=90)
    sources = [("eyepacs", eyepacs), ("aptos", aptos)]
    if "idrid" in WRITERS:  # a redistributable source: an image copied into it must become the canonical row
        idrid = write_layout("idrid", root / "idrid", n=8, seed=2)
        target = sorted(p for p in idrid.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[0]
        shutil.copy(train[4], target)
        sources.append(("idrid", idrid))
    return {"sources": sources, "train": train, "aptos": aptos_imgs}


@pytest.fixture(scope="module")
def run(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated")
    return curate(raw["sources"], out, cfg=CFG, progress=False)


def _manifest(out):
    return pq.read_table(out / "manifest.parquet").to_pylist()


def _work_ids(work):
    parts = sorted(work.glob("part-*.parquet"))
    return [i for p in parts for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]


def _check_provenance(out, cfg, sources):
    """OUT/retinalogos.json: stage, version, the resolved config, the sources' fingerprints, counts = the manifest."""
    prov = stage.read_provenance(out)
    assert (prov["stage"], prov["version"]) == ("curate", retinalogos_hub.__version__)
    assert prov["config"] == json.loads(json.dumps(asdict(cfg)))
    assert prov["inputs"] == {
        name: {"fingerprint": stage.folder_fingerprint(root), "ref": str(root)} for name, root in sources
    }
    rows = _manifest(out)
    status = [r["status"] for r in rows]
    splits = {s: n for s in ("train", "validation", "test") if (n := [r["split"] for r in rows].count(s))}
    counts = prov["counts"]
    assert (counts["inputs"], counts["kept"], counts["excluded"], counts["duplicates"]) == (
        len(rows),
        status.count("kept"),
        status.count("excluded"),
        status.count("duplicate"),
    )
    assert counts["splits"] == splits and prov["started"] <= prov["finished"]
    assert not (out / "curate.json").exists()  # the old summary is folded into the provenance
    return prov


def test_mixed_run_accounts_for_every_input(raw, run):
    rows = _manifest(run.out)
    by_path = {r["path"]: r for r in rows}
    assert len(rows) == run.inputs == run.kept + run.excluded + run.duplicates
    assert len(by_path) == len(rows)  # one row per input file
    train, aptos = raw["train"], raw["aptos"]
    # exact and perceptual cross-source duplicates point at the kept EyePACS row
    exact, near = by_path[str(aptos[0])], by_path[str(aptos[1])]
    expected = ("duplicate", f"eyepacs/{train[0].stem}", "identical file bytes")
    assert (exact["status"], exact["duplicate_of"], exact["reason"]) == expected
    assert near["status"] == "duplicate" and near["duplicate_of"] == f"eyepacs/{train[1].stem}"
    assert near["reason"].startswith("near-duplicate")
    # bad inputs are excluded with their reason; the run went on
    assert by_path[str(train[2])]["status"] == "excluded" and "unreadable image" in by_path[str(train[2])]["reason"]
    assert by_path[str(aptos[2])]["status"] == "excluded" and "field of view" in by_path[str(aptos[2])]["reason"]
    assert run.excluded == 2 and run.duplicates >= 2
    if len(raw["sources"]) == 3:  # the redistributable IDRiD copy wins over EyePACS
        ep = by_path[str(train[4])]
        assert ep["status"] == "duplicate" and ep["duplicate_of"].startswith("idrid/")
    kept = {r["id"] for r in rows if r["status"] == "kept"}
    ds = datasets.load_from_disk(str(run.out))
    assert ds.features == CURATED
    assert sorted(ds["id"]) == ds["id"] and set(ds["id"]) == kept and len(ds) == run.kept


def test_provenance_records_config_inputs_and_counts(raw, run):
    prov = _check_provenance(run.out, CFG, raw["sources"])
    assert prov["counts"]["kept"] == run.kept and prov["counts"]["splits"] == run.splits
    assert (run.out / WORK / "state.json").is_file()  # the work store: OUT/.work/curate/shard-<i>-of-<N>/
    assert [p.name for p in (run.out / ".work").rglob("*") if p.is_dir()] == ["curate", "shard-0-of-1"]  # no scratch


def test_images_are_cropped_squares_without_metadata(raw, run):
    ds = datasets.load_from_disk(str(run.out))
    row = ds[ds["id"].index(f"eyepacs/{raw['train'][3].stem}")]
    img = row["image"]
    assert img.size == (64, 64) and (row["width"], row["height"]) == (64, 64)
    assert not img.getexif() and "exif" not in img.info
    raw_bytes = ds.cast_column("image", datasets.Image(decode=False))[ds["id"].index(row["id"])]["image"]["bytes"]
    assert b"SecretCam" not in raw_bytes and b"Jane Doe" not in raw_bytes
    assert all(0.0 <= q <= 1.0 for q in ds["quality_score"])
    assert set(ds["license"]) >= {"Kaggle competition terms"}


def test_no_patient_in_two_splits(run):
    ds = datasets.load_from_disk(str(run.out))
    splits = defaultdict(set)
    for source, patient, split, i in zip(ds["source"], ds["patient_id"], ds["split"], ds["id"]):
        splits[f"{source}/{patient}" if patient else i].add(split)
    assert all(len(s) == 1 for s in splits.values())
    assert set(ds["split"]) <= {"train", "validation", "test"}
    # EyePACS test/ images keep their official split
    official = [
        r for r in _manifest(run.out) if r["status"] == "kept" and Path(r["path"]).parts[-3:-1] == ("eyepacs", "test")
    ]
    assert official and all(r["split"] == "test" for r in official)
    both = [p for p, i in zip(ds["patient_id"], ds["id"]) if i.startswith("eyepacs/")]
    assert any(both.count(p) == 2 for p in both)  # pairs exist, so the check above is not vacuous


def test_rerun_skips_finished_work(raw, run):
    again = curate(raw["sources"], run.out, cfg=CFG, progress=False)
    assert again.processed == 0
    assert (again.kept, again.excluded, again.duplicates) == (run.kept, run.excluded, run.duplicates)


@pytest.mark.slow  # starting the worker pool takes seconds
def test_worker_processes_decide_as_one_process(raw, run, tmp_path):
    parallel = curate(raw["sources"], tmp_path, cfg=CFG, workers=2, progress=False)
    assert parallel.processed == run.inputs
    assert _manifest(tmp_path) == _manifest(run.out)
    assert datasets.load_from_disk(str(tmp_path))["id"] == datasets.load_from_disk(str(run.out))["id"]


def test_killed_run_resumes_without_loss_or_duplicates(raw, run, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = pipeline.process

    def dies_after_seven(rec, cfg):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt  # the user hits Ctrl-C mid-run
        return real(rec, cfg)

    monkeypatch.setattr(pipeline, "process", dies_after_seven)
    with pytest.raises(KeyboardInterrupt):
        curate(raw["sources"], tmp_path, cfg=CFG, progress=False)
    work = tmp_path / WORK
    assert len(_work_ids(work)) == 7  # committed what it finished, nothing more
    monkeypatch.setattr(pipeline, "process", real)
    resumed = curate(raw["sources"], tmp_path, cfg=CFG, progress=False)
    assert resumed.processed == run.inputs - 7
    ids = _work_ids(work)
    assert len(ids) == len(set(ids)) == run.inputs
    assert _manifest(tmp_path) == _manifest(run.out)  # same decisions as the uninterrupted run
    assert datasets.load_from_disk(str(tmp_path))["id"] == datasets.load_from_disk(str(run.out))["id"]


def test_sigkill_mid_run_then_rerun(raw, run, tmp_path):
    """A real `kill -9` while parts are being committed: the rerun finishes with the same rows, none twice."""
    script = f"""
import sys, time
from pathlib import Path
from dataclasses import replace
from retinalogos_hub.config import load_config
from retinalogos_hub.curate import CurateConfig, curate, pipeline
real = pipeline.process
def slow(rec, cfg):
    time.sleep(0.15)
    return real(rec, cfg)
pipeline.process = slow
cfg = replace(load_config(CurateConfig), size=64, commit_every=1)
curate({[(n, str(p)) for n, p in raw["sources"]]!r}, Path(sys.argv[1]), cfg=cfg, progress=False)
"""
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=Path(__file__).parents[1])
    work = tmp_path / WORK
    deadline = time.monotonic() + 60
    while len(list(work.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(_work_ids(work))
    assert 3 <= done < run.inputs
    resumed = curate(raw["sources"], tmp_path, cfg=CFG, progress=False)
    assert resumed.processed == run.inputs - done
    ids = _work_ids(work)
    assert len(ids) == len(set(ids)) == run.inputs
    assert _manifest(tmp_path) == _manifest(run.out)


def test_shards_plus_merge_equal_unsharded(raw, run, tmp_path):
    parts = []
    for i in range(2):
        r = curate(raw["sources"], tmp_path / f"part{i}", cfg=CFG, shard=(i, 2), progress=False)
        assert not r.merged and not (tmp_path / f"part{i}" / "manifest.parquet").exists()
        parts.append(tmp_path / f"part{i}")
    with pytest.raises(InputError, match="missing"):
        merge(parts[:1], tmp_path / "merged", cfg=CFG)
    merged = merge(parts, tmp_path / "merged", cfg=CFG)
    key = lambda rows: sorted((r["id"], r["status"], r["duplicate_of"], r["split"]) for r in rows)  # noqa: E731
    assert key(_manifest(merged.out)) == key(_manifest(run.out))
    assert datasets.load_from_disk(str(merged.out))["id"] == datasets.load_from_disk(str(run.out))["id"]
    prov = _check_provenance(merged.out, CFG, raw["sources"])  # the same provenance as an unsharded run
    assert not (merged.out / ".work").exists()  # the merge's scratch is gone; its work stays in the shards
    assert prov["counts"]["stamp"] != stage.read_provenance(run.out)["counts"]["stamp"]  # other work rows
    for i in range(2):  # each shard records its own share
        assert stage.read_provenance(parts[i])["counts"]["shard"] == f"{i}/2"
    # no recipe: the shards' own is used; one with other image settings is refused
    assert merge(parts, tmp_path / "merged2").kept == merged.kept
    with pytest.raises(InputError, match="image settings"):
        merge(parts, tmp_path / "merged3", cfg=replace(CFG, size=32))


def test_changed_image_settings_refuse_stale_work(raw, run):
    with pytest.raises(InputError, match=r"made with size=64 \(now 32\).*same image settings"):
        curate(raw["sources"], run.out, cfg=replace(CFG, size=32), progress=False)


def test_merge_names_shards_of_the_old_layout(tmp_path):
    (tmp_path / "old" / ".work" / "shard-0-of-1").mkdir(parents=True)  # before the work store moved under curate/
    with pytest.raises(InputError, match="no shard work found.*older version"):
        merge([tmp_path / "old"], tmp_path / "merged")


def test_default_config_is_the_shipped_recipe():
    assert load_config(CurateConfig) == load_config(CurateConfig, RECIPE)
    assert json.loads(json.dumps(asdict(BASE))) == yaml.safe_load(RECIPE.read_text())


@pytest.mark.parametrize(
    "pattern,repl,expected",
    [
        (r"^sources: .*$", "colour: red", "unknown key 'colour'"),
        (r"min_fill:", "min_fil:", "unknown key 'fov.min_fil' (did you mean 'fov.min_fill'?)"),
        (r"^jpeg_quality:.*$", "", "missing required key 'jpeg_quality'"),
        (r"^  salt:.*$", "", "missing required key 'splits.salt'"),
        (r"^size: 1024", "size: 8", "size must be in 16..8192, got 8"),
    ],
)
def test_recipe_errors_are_one_line_naming_the_key(tmp_path, pattern, repl, expected):
    bad = tmp_path / "curate.yaml"
    bad.write_text(re.sub(pattern, repl, RECIPE.read_text(), count=1, flags=re.M))
    with pytest.raises(ConfigError) as err:
        load_config(CurateConfig, bad)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bad_sources_fail_clearly(tmp_path):
    with pytest.raises(SourceError, match="directory not found"):
        curate([("eyepacs", tmp_path / "nope")], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written for a bad command
    with pytest.raises(SourceError, match="known sources: .*aptos.*eyepacs"):
        curate([("eyepax", tmp_path)], tmp_path / "out", progress=False)
    root = write_layout("aptos", tmp_path / "aptos", n=2)
    (root / "train.csv").write_text("image,label\nx,1\n")
    with pytest.raises(InputError, match=r"train\.csv: expected columns id_code, diagnosis"):
        curate([("aptos", root)], tmp_path / "out2", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises((SourceError, InputError), match="empty|not found|no images"):
        curate([("aptos", tmp_path / "empty")], tmp_path / "out3", progress=False)


def test_bktree_matches_brute_force():
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, 300, dtype=np.int64)]
    values += [v ^ (1 << int(b)) for v, b in zip(values[:50], rng.integers(0, 64, 50))]  # near neighbours
    tree = BKTree()
    for v in values:
        tree.add(v)
    for q in values[:60]:
        assert sorted(tree.query(q, 6)) == sorted({v for v in values if hamming(q, v) <= 6})


def test_canonical_prefers_redistributable_then_richer_labels():
    thumb = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    items = [
        Item("a/1", "s1", "p1", 5, (True, -5, 0.0, "a/1")),  # not redistributable, rich labels
        Item("b/1", "s2", "p2", 5 ^ 1, (False, -1, 0.0, "b/1")),  # redistributable, fewer labels
        Item("c/1", "s3", "p3", 5 ^ 3, (True, -9, 0.0, "c/1")),
    ]
    dups = find_duplicates(items, lambda ids: {i: thumb for i in ids}, BASE.dedup)
    assert {k: v[0] for k, v in dups.items()} == {"a/1": "b/1", "c/1": "b/1"}
    # same pHash but uncorrelated thumbnails (two eyes from one camera): not duplicates
    rng = np.random.default_rng(1)
    other = {"a/1": thumb, **{k: rng.integers(0, 256, (32, 32), dtype=np.uint8) for k in ("b/1", "c/1")}}
    assert find_duplicates(items, lambda ids: other, BASE.dedup) == {}


def test_splits_deterministic_official_and_linked():
    cfg = replace(BASE.splits, validation=0.2, test=0.2)
    rows = [(f"s/p{i}", None) for i in range(400)] + [("s/official", "test"), ("t/x", None)]
    a = assign(rows, [("t/x", "s/official")], cfg)
    assert a == assign(list(reversed(rows)), [("t/x", "s/official")], cfg)  # order-independent
    assert a["s/official"] == a["t/x"] == "test"  # official test wins and spreads to linked keys
    share = sum(v == "test" for v in a.values()) / len(a)
    assert 0.12 < share < 0.3


@pytest.mark.slow
def test_every_adapter_layout_curates(tmp_path):
    """All miniature layouts together: labels of every adapter fit the schema, unrelated procedural eyes are never
    merged as duplicates, and no patient spans two splits."""
    sources = [
        (name, write_layout(name, tmp_path / name, n=8, seed=i, size=64))
        for i, name in enumerate(WRITERS)
        if name != "table"
    ]  # `table` needs a mapping YAML of its own
    r = curate(sources, tmp_path / "out", cfg=replace(BASE, size=32, commit_every=50), progress=False)
    assert (r.excluded, r.duplicates) == (0, 0) and r.kept == r.inputs == len(_manifest(r.out))
    ds = datasets.load_from_disk(str(r.out))
    assert set(ds["source"]) == {name for name, _ in sources}
    splits = defaultdict(set)
    for source, patient, split, i in zip(ds["source"], ds["patient_id"], ds["split"], ds["id"]):
        splits[f"{source}/{patient}" if patient else i].add(split)
    assert all(len(s) == 1 for s in splits.values())


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    from retinalogos_hub.curate.process import process
    from retinalogos_hub.demo.fundus import fundus_image

    grey = np.asarray(fundus_image(200, 150, seed=1).convert("L")).astype(np.uint16) * 256
    path = tmp_path / "x.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    row = process({"id": "t/x", "path": str(path)}, replace(BASE, size=64))
    assert row["status"] == "ok"
    assert 20 < np.asarray(Image.open(io.BytesIO(row["image"]))).mean() < 200


def test_small_field_is_decoded_finer_not_upsampled(tmp_path, monkeypatch):
    # the JPEG draft scale is picked by the short side; a field well inside it must come from a finer decode
    from retinalogos_hub.curate import process as proc
    from retinalogos_hub.curate.fov import crop_square, detect_fov
    from retinalogos_hub.demo.fundus import fundus_image

    path = tmp_path / "small_field.jpg"
    fundus_image(512, 384, seed=3, fov=0.6).save(path, quality=95)
    shapes, decode = [], proc.decode
    monkeypatch.setattr(proc, "decode", lambda data, side: shapes.append((out := decode(data, side))[0].shape) or out)
    row = proc.process({"id": "t/x", "path": str(path)}, replace(BASE, size=128))
    assert row["status"] == "ok" and shapes == [(192, 256, 3), (384, 512, 3)]  # 1/2 draft (field 115 px), then full
    full = np.asarray(Image.open(path).convert("RGB"))
    ref = crop_square(full, detect_fov(full, FOV), 128).astype(int)  # the FOV was carried to the finer decode
    assert np.abs(np.asarray(Image.open(io.BytesIO(row["image"]))).astype(int) - ref).mean() < 4
