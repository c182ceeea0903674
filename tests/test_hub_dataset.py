"""push-dataset / attach-images: the Hub layout, licences, the card, and a round trip through the loopback Hub."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import Dataset, load_dataset
from PIL import Image

from retinalogos_hub import licenses
from retinalogos_hub.errors import HubError, InputError, LicenseError
from retinalogos_hub.hub import push_dataset
from retinalogos_hub.hub.card import python_blocks
from retinalogos_hub.schema import CAPTION_FIELD_NAMES, CAPTIONED, make_id

SOURCES = ("eyepacs", "aptos", "openfundus")  # openfundus: a test-only re-hostable source (CC BY 4.0)


@pytest.fixture(autouse=True)
def open_source(monkeypatch):
    monkeypatch.setitem(
        licenses.LICENSES,
        "openfundus",
        licenses.License("CC-BY-4.0", licenses.OPEN, "https://example.org/openfundus", "Open F. OpenFundus. 2024."),
    )


def jpeg_with_exif(img: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "clinic-workstation-7"  # Software
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=90, comment=b"patient 123")
    return buf.getvalue()


def make_rows(fundus, n: int = 12, sources=SOURCES, source_ids=None) -> list[dict]:
    rows = []
    for i in range(n):
        src = sources[i % len(sources)]
        sid = source_ids[i] if source_ids else f"img{i:03d}"
        lic = licenses.license_for(src)
        grade = i % 5
        rows.append(
            {
                "image": {"bytes": jpeg_with_exif(fundus(40, seed=i, dr_grade=grade)), "path": None},
                "id": make_id(src, sid),
                "source": src,
                "source_id": sid,
                "patient_id": f"p{i // 2}",
                "eye": ("left", "right")[i % 2],
                "dr_grade": grade,
                "dme": i % 2,
                "glaucoma": i % 4 == 0,
                "diseases": ["diabetic retinopathy"] if grade else [],
                "findings": None,
                "age": 50.0 + i,
                "age_band": None,
                "sex": "FM"[i % 2],
                "quality": "good",
                "quality_score": 0.9,
                "width": 40,
                "height": 40,
                "split": ("train", "train", "validation", "test")[i % 4],
                "official_split": None,  # schema.CURATED column (issue 15)
                "license": lic.license,
                "redistributable": lic.redistributable,
                "caption": f"Colour fundus photograph of the {('left', 'right')[i % 2]} eye."
                + " Vessels are normal." * (i + 1),
                "caption_fields": {k: "normal" for k in CAPTION_FIELD_NAMES},
                "caption_model": "template",
                "caption_prompt_version": "v1",
                "caption_consistent": True,
                "caption_issues": [],
            }
        )
    return rows


def stage(tmp_path: Path, rows: list[dict], name: str = "captioned") -> Path:
    out = tmp_path / name
    Dataset.from_list(rows, features=CAPTIONED).save_to_disk(str(out))
    return out


@pytest.fixture
def exported(tmp_path, fundus):
    rows = make_rows(fundus)
    res = push_dataset(stage(tmp_path, rows), "my-lab/cfp-test", local_dir=tmp_path / "export", max_shard_size="1KB")
    return res, rows


def test_local_export_loads_every_config_with_schema(exported):
    res, rows = exported
    assert res.url is None and res.rows == len(rows)
    assert list(res.configs) == ["all", *sorted(SOURCES)]
    for config, splits in res.configs.items():
        dd = load_dataset(str(res.local_dir), config)
        assert {s: len(d) for s, d in dd.items()} == splits
        for d in dd.values():
            assert set(CAPTIONED) <= set(d.features) and d.features["image"] == CAPTIONED["image"]
            assert all(d.features[k] == v for k, v in CAPTIONED.items())
            if config != "all":
                assert set(d["source"]) == {config}
    every = load_dataset(str(res.local_dir), "all")
    assert sorted(i for d in every.values() for i in d["id"]) == sorted(r["id"] for r in rows)
    # shards are sized by the rows they hold: 1KB splits the splits whose rows carry images, never the image-less ones
    assert len(list((res.local_dir / "data" / "openfundus").glob("train-*-of-*.parquet"))) > 1
    assert len(list((res.local_dir / "data" / "eyepacs").glob("train-*-of-*.parquet"))) == 1
    for folder in (res.local_dir / "data").iterdir():
        for split in ("train", "validation", "test"):
            shards = sorted(folder.glob(f"{split}-*.parquet"))
            assert [p.name for p in shards] == [
                f"{split}-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))
            ]


def test_licences_decide_image_bytes_and_metadata_is_stripped(exported):
    res, rows = exported
    by_id = {r["id"]: r for r in rows}
    ds = load_dataset(str(res.local_dir), "all", split="train+validation+test")
    assert (
        res.with_image == sum(r["source"] == "openfundus" for r in rows)
        and res.without_image == len(rows) - res.with_image
    )
    for row in ds:
        src = row["source"]
        if licenses.license_for(src).redistributable:
            assert row["image"] is not None and row["image_origin"] is None
            assert row["image"].size == (40, 40)
            assert not row["image"].getexif() and not {"exif", "icc_profile", "comment"} & set(row["image"].info)
            original = Image.open(io.BytesIO(by_id[row["id"]]["image"]["bytes"]))
            assert row["image"].tobytes() == original.convert("RGB").tobytes()  # segments dropped, pixels untouched
        else:
            assert row["image"] is None
            assert row["image_origin"] == licenses.license_for(src).url
        # every other field follows the source's tier: published as is, or withheld (None)
        lic, original = licenses.license_for(src), by_id[row["id"]]
        for field, columns in licenses.COLUMNS.items():
            for c in set(columns) & set(row) - {"image"}:
                assert row[c] == (original[c] if field in lic.publish else None), (src, c)
        assert (row["id"], row["split"], row["source_id"]) == (original["id"], original["split"], original["source_id"])
    # nothing identifying survives anywhere in the published bytes
    for p in (res.local_dir / "data").rglob("*.parquet"):
        blob = p.read_bytes()
        assert b"SecretCam" not in blob and b"patient 123" not in blob and b"clinic-workstation" not in blob


def test_card_yaml_parses_and_numbers_match_data(exported):
    from huggingface_hub import DatasetCard, DatasetCardData

    res, rows = exported
    card = DatasetCard.load(res.local_dir / "README.md")
    assert isinstance(card.data, DatasetCardData)
    meta = card.data.to_dict()
    assert meta["license"] == "other" and "medical" in meta["tags"]
    assert [c["config_name"] for c in meta["configs"]] == ["all", *sorted(SOURCES)]
    assert next(c for c in meta["configs"] if c["config_name"] == "all")["default"] is True
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    for config, splits in res.configs.items():
        assert {s["name"]: s["num_examples"] for s in infos[config]["splits"]} == splits
    text = card.text
    n_train = sum(r["split"] == "train" for r in rows)
    assert f"| all | {n_train} | " in text
    for src in SOURCES:
        n = sum(r["source"] == src for r in rows)
        lic = licenses.license_for(src)
        published = ", ".join(f for f in licenses.FIELDS if f in lic.publish) or "ids only"
        commercial = "yes" if lic.commercial else "no"
        assert f"| {src} | {n} | {lic.license} | {lic.tier} | {published} | {commercial} | {lic.url} |" in text
        assert lic.citation in text
    grades = [r["dr_grade"] for r in rows if "labels" in licenses.license_for(r["source"]).publish]
    shown = ", ".join(f"{g}: {grades.count(g)}" for g in range(5) if g in grades)
    assert f"**dr_grade**: {shown}, unknown: {len(rows) - len(grades)}" in text  # a withheld label is unknown
    assert "**Not for commercial use as a whole**" in text  # eyepacs and aptos forbid it
    words = [len(r["caption"].split()) for r in rows if "captions" in licenses.license_for(r["source"]).publish]
    assert f"| all | {len(words)} | {min(words)} | {round(sum(words) / len(words), 1)} |" in text
    assert "## Limitations and biases" in text and "not for clinical diagnosis" in text
    chart = Image.open(res.local_dir / "assets" / "label_distribution.png")
    assert chart.size[0] > 100 and not {"Software", "exif"} & set(chart.info)


def test_card_loading_snippet_runs(exported, tmp_path):
    res, _ = exported
    (snippet,) = python_blocks((res.local_dir / "README.md").read_text())
    assert '"my-lab/cfp-test"' in snippet
    script = (
        snippet.replace('"my-lab/cfp-test"', repr(str(res.local_dir))) + "\nprint('rows', len(ds), len(with_pixels))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"rows {res.configs['all']['train']} " in out.stdout


@pytest.mark.slow  # over 5 s: keeps `make test-fast` under 3 minutes
def test_loopback_round_trip(hub_server, tmp_path, fundus):
    from huggingface_hub import snapshot_download

    rows = make_rows(fundus)
    local = push_dataset(stage(tmp_path, rows), "my-lab/cfp-test", local_dir=tmp_path / "local")
    res = push_dataset(stage(tmp_path, rows), "my-lab/cfp-test", gated=True, token=hub_server.token)
    repo = hub_server.repo("dataset", "my-lab/cfp-test")
    assert res.url.endswith("datasets/my-lab/cfp-test") and repo.gated == "auto"
    uploads = [p for m, p in hub_server.requests if m == "PUT" and p.startswith("/_lfs/")]
    assert uploads  # parquet shards and the chart went through LFS
    down = snapshot_download(
        "my-lab/cfp-test", repo_type="dataset", local_dir=tmp_path / "down", token=hub_server.token
    )
    for config in res.configs:
        pushed, mine = load_dataset(down, config), load_dataset(str(local.local_dir), config)
        for split in mine:
            assert pushed[split].features == mine[split].features
            a = pushed[split].cast_column("image", pushed[split].features["image"].__class__(decode=False)).to_list()
            b = mine[split].cast_column("image", mine[split].features["image"].__class__(decode=False)).to_list()
            assert [{**r, "image": r["image"] and r["image"]["bytes"]} for r in a] == [
                {**r, "image": r["image"] and r["image"]["bytes"]} for r in b
            ]
    # resumable: pushing again sends no LFS object twice and makes no new commit
    commits = len(repo.commits)
    push_dataset(stage(tmp_path, rows), "my-lab/cfp-test", gated=True, token=hub_server.token)
    assert [p for m, p in hub_server.requests if m == "PUT" and p.startswith("/_lfs/")] == uploads
    changed = [p for p, e in repo.commits[-1][1].items() if repo.commits[commits - 1][1].get(p) != e]
    assert len(repo.commits) == commits, changed


def test_bad_input_is_refused(tmp_path, fundus):
    rows = make_rows(fundus, n=4)
    with pytest.raises(InputError, match="not a valid Hub repo id"):
        push_dataset(stage(tmp_path, rows, "a"), "bad//repo", local_dir=tmp_path / "x")
    with pytest.raises(InputError, match="ORG/NAME"):
        push_dataset(stage(tmp_path, rows, "b"), "just-a-name", local_dir=tmp_path / "x")
    no_caption = [dict(r, caption="  ") if i == 1 else r for i, r in enumerate(rows)]
    with pytest.raises(InputError, match=r"1 row\(s\) without a caption \(e\.g\. aptos/img001\)"):
        push_dataset(stage(tmp_path, no_caption, "c"), "my-lab/x", local_dir=tmp_path / "x", refuse_uncaptioned=True)
    left_out = push_dataset(stage(tmp_path, no_caption, "d"), "my-lab/x", local_dir=tmp_path / "y")
    assert (left_out.rows, left_out.uncaptioned) == (len(rows) - 1, 1)  # never published with an empty caption
    unknown = [dict(r, source="mystery", id=f"mystery/{r['source_id']}") for r in rows]
    with pytest.raises(LicenseError, match="'mystery' has no licence entry"):
        push_dataset(stage(tmp_path, unknown, "d"), "my-lab/x", local_dir=tmp_path / "x")
    with pytest.raises(InputError, match="not a stage directory"):
        push_dataset(tmp_path / "nowhere", "my-lab/x", local_dir=tmp_path / "x")
    mine = tmp_path / "project"  # a folder whose own data/ must never be replaced by an export
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "notes.csv").write_text("keep me")
    with pytest.raises(InputError, match="not parquet shards of an earlier export"):
        push_dataset(stage(tmp_path, rows, "e"), "my-lab/x", local_dir=mine)
    assert (mine / "data" / "notes.csv").read_text() == "keep me"
    with pytest.raises(InputError, match="is the input stage directory"):
        push_dataset(stage(tmp_path, rows, "f"), "my-lab/x", local_dir=tmp_path / "f")


def test_offline_or_unreachable_push_fails_fast(tmp_path, fundus, monkeypatch):
    import socket

    import huggingface_hub.constants as hc

    captioned = stage(tmp_path, make_rows(fundus, n=4))
    t = time.perf_counter()
    with pytest.raises(HubError, match="HF_HUB_OFFLINE=1"):
        push_dataset(captioned, "my-lab/x")  # the test session is offline
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hc, "ENDPOINT", dead)
    with pytest.raises(HubError, match="cannot reach the Hub") as err:
        push_dataset(captioned, "my-lab/x", token="hf_secret_never_printed")
    assert time.perf_counter() - t < 2.0
    assert "hf_secret" not in str(err.value) and "hf_secret" not in (err.value.hint or "")
    assert not (tmp_path / "hf_secret_never_printed").exists()


def test_attach_images_from_own_copy(tmp_path, fundus):
    from retinalogos_hub.demo.layouts import write_layout
    from retinalogos_hub.hub.attach import attach_images, attach_labels
    from retinalogos_hub.sources import get_source, make_config

    root = write_layout("eyepacs", tmp_path / "eyepacs", n=8, size=64)
    ids = [r["source_id"] for r in get_source("eyepacs").records(make_config("eyepacs", root))]
    rows = make_rows(fundus, n=len(ids), sources=("eyepacs",), source_ids=ids)
    res = push_dataset(stage(tmp_path, rows), "my-lab/cfp", local_dir=tmp_path / "export")
    assert load_dataset(str(res.local_dir), "eyepacs", split="train")[0]["image"] is None
    out = attach_images(res.local_dir, [("eyepacs", root)], tmp_path / "attached")
    assert out.attached == {"eyepacs": len(ids)} and not out.missing and not out.failed
    ds = load_dataset(str(out.out), "all", split="+".join(res.configs["all"]))
    assert all(r["image"] is not None and r["image"].size == (40, 40) and r["image_origin"] is None for r in ds)
    assert not any(r["image"].getexif() for r in ds)
    with pytest.raises(InputError, match="no config 'aptos'"):
        attach_images(res.local_dir, [("aptos", root)], tmp_path / "again")
    # EyePACS is published as ids only (Kaggle competition terms): its labels come back from the same copy
    assert all(r["dr_grade"] is None and r["eye"] is None for r in ds)
    labelled = attach_labels(out.out, [("eyepacs", root)], tmp_path / "labelled")
    assert labelled.attached == {"eyepacs": len(ids)}
    truth = {r["source_id"]: r for r in get_source("eyepacs").records(make_config("eyepacs", root))}
    back = load_dataset(str(labelled.out), "all", split="+".join(res.configs["all"]))
    for r in back:
        assert (r["dr_grade"], r["eye"]) == (truth[r["source_id"]]["dr_grade"], truth[r["source_id"]]["eye"])
        assert r["image"] is not None and r["caption"] is None  # images kept; captions are not put back


def test_cli_push_dataset_and_one_line_errors(tmp_path, fundus, monkeypatch, capsys):
    from retinalogos_hub.cli import main

    captioned = stage(tmp_path, make_rows(fundus, n=6))
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "retinalogos",
            "push-dataset",
            str(captioned),
            "--repo-id",
            "my-lab/cfp",
            "--local-dir",
            str(tmp_path / "cli-export"),
        ],
    )
    with pytest.raises(SystemExit) as code:
        main()
    assert code.value.code in (0, None)
    assert "Dataset repo written" in capsys.readouterr().out
    assert load_dataset(str(tmp_path / "cli-export"), "all", split="train").num_rows == 4
    monkeypatch.setattr(sys, "argv", ["retinalogos", "push-dataset", str(captioned), "--repo-id", "bad repo"])
    with pytest.raises(SystemExit) as code:
        main()
    err = capsys.readouterr().err
    assert code.value.code == 1 and "not a valid Hub repo id" in err and "Traceback" not in err


def test_strip_metadata_png_and_other_formats(fundus):
    from PIL import PngImagePlugin

    from retinalogos_hub.hub.export import strip_metadata

    img = fundus(24)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Dr Secret")
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, icc_profile=b"\0" * 200)
    clean = strip_metadata(buf.getvalue())
    assert b"Dr Secret" not in clean and b"iCCP" not in clean
    assert Image.open(io.BytesIO(clean)).tobytes() == img.tobytes()
    tiff = io.BytesIO()
    img.save(tiff, "TIFF", description="scanner 42")
    clean = strip_metadata(tiff.getvalue())
    assert clean[:8] == b"\x89PNG\r\n\x1a\n" and b"scanner 42" not in clean
    assert Image.open(io.BytesIO(clean)).convert("RGB").tobytes() == img.tobytes()


def test_private_sources_publish_no_patient_metadata(tmp_path, fundus):
    rows = make_rows(fundus, n=4, sources=("table", "eyepacs"))
    for r in rows:
        r["findings"] = "MRN 0042-17: report by Dr X"
    res = push_dataset(stage(tmp_path, rows), "my-lab/ehr", local_dir=tmp_path / "export")
    out = (
        load_dataset(str(res.local_dir), "all", split="train").to_list()
        + load_dataset(str(res.local_dir), "all", split="validation").to_list()
        + load_dataset(str(res.local_dir), "all", split="test").to_list()
    )
    by_source = {s: [r for r in out if r["source"] == s] for s in ("table", "eyepacs")}
    assert by_source["table"] and by_source["eyepacs"]
    for r in by_source["table"]:  # the owner's own records: labels and captions, no patient metadata, no image
        assert (r["patient_id"], r["age"], r["age_band"], r["sex"], r["image"]) == (None,) * 5
        assert r["caption"] and r["dr_grade"] is not None
    for r in by_source["eyepacs"]:  # Kaggle competition data: ids only, for users who have their own copy
        assert r["id"] and r["split"] and r["image_origin"]
        assert (r["patient_id"], r["findings"], r["caption"], r["dr_grade"], r["eye"]) == (None,) * 5


def test_column_strip_matches_strip_metadata_on_mixed_sliced_batches(fundus):
    """The vectorised strip of the export equals `strip_metadata` row by row: JPEG with EXIF, PNG with text, clean
    JPEG, a withheld row, a null, on a sliced array (offsets not at zero); a TIFF falls back to re-encoding."""
    import pyarrow as pa

    from retinalogos_hub.hub.export import _stripped_column, strip_metadata

    img = fundus(24, seed=3)
    png = io.BytesIO()
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient 123")
    img.save(png, "PNG", pnginfo=info)
    clean = io.BytesIO()
    img.save(clean, "JPEG")
    blobs = [b"x", jpeg_with_exif(img), png.getvalue(), clean.getvalue(), jpeg_with_exif(img), None]
    arr = pa.array([{"bytes": b, "path": None} if b else None for b in blobs]).slice(1)
    col, sizes = _stripped_column(arr, [True, True, True, False, True])
    got = col.to_pylist()
    assert [g["bytes"] if g else None for g in got] == [strip_metadata(blobs[1]), strip_metadata(blobs[2]),
                                                        blobs[3], None, None]  # fmt: skip
    assert list(sizes) == [len(strip_metadata(blobs[1])), len(strip_metadata(blobs[2])), len(blobs[3]), 0, 0]
    tiff = io.BytesIO()
    img.save(tiff, "TIFF", description="scanner 42")
    col, _ = _stripped_column(pa.array([{"bytes": tiff.getvalue(), "path": None}]), [True])
    assert b"scanner 42" not in col.to_pylist()[0]["bytes"]


def test_contiguous_and_gathered_groups_publish_the_same_rows(tmp_path, fundus):
    """A stage whose source's rows sit together is exported through a zero-copy slice, an interleaved one through a
    gather: both publish the same rows, images stripped."""
    rows = make_rows(fundus, n=6, sources=("openfundus",))
    for r in rows:
        r["split"] = "train"
    together = push_dataset(stage(tmp_path, rows, "together"), "my-lab/a", local_dir=tmp_path / "a")
    mixed = rows[::2] + rows[1::2]
    for r in mixed[3:]:
        r["split"] = "test"
    apart = push_dataset(stage(tmp_path, mixed, "apart"), "my-lab/b", local_dir=tmp_path / "b")
    a = load_dataset(str(together.local_dir), "openfundus", split="train")
    b = load_dataset(str(apart.local_dir), "openfundus", split="train+test")
    key = lambda r: r["id"]  # noqa: E731
    ra, rb = sorted(a, key=key), sorted(b, key=key)
    assert [r["id"] for r in ra] == [r["id"] for r in rb] == sorted(r["id"] for r in rows)
    assert all(x["image"].tobytes() == y["image"].tobytes() and not x["image"].getexif() for x, y in zip(ra, rb))
