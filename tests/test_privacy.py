"""Data governance: a private hospital table full of identifiers goes curate -> caption -> purify -> push-dataset and
nothing identifying reaches any published file; licence tiers decide each field; bad setups fail fast."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Dataset, load_dataset, load_from_disk

from retinalogos_hub import licenses
from retinalogos_hub.caption import caption_dataset, shipped
from retinalogos_hub.caption.template import GRADE_NAMES
from retinalogos_hub.config import load_config
from retinalogos_hub.curate import CurateConfig, curate
from retinalogos_hub.errors import ConfigError
from retinalogos_hub.hub import push_dataset
from retinalogos_hub.privacy import MAPPING_FILE, age_band, pseudonym
from retinalogos_hub.purify import purify
from retinalogos_hub.schema import CAPTION_FIELD_NAMES, CAPTIONED

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-secret-0123456789abcdef"
PATIENTS = [  # name, MRN, date of birth, phone, e-mail, clinician, clinic, street address
    ("John Smith", "88123401", "1961-03-04", "+1 415-555-0199", "john.smith@example.org", "Dr. Jane Doe",
     "Sunrise Eye Clinic", "12 Oak Street, Springfield"),
    ("Maria Garcia", "77045512", "1948-11-23", "(212) 555-0147", "mgarcia@mail.example.com", "Dr. Alan Turing",
     "Lakeside Retina Centre", "450 Elm Avenue, Riverton"),
    ("Wei Zhang", "66500923", "1975-07-19", "+44 20 7946 0958", "wei.zhang@example.net", "Prof. Ada Lovelace",
     "Hillview Hospital", "7 Mill Lane, Oldbury"),
]  # fmt: skip
ROWS = [(0, "right", 2), (0, "left", 1), (1, "right", 4), (1, "left", 3), (2, "right", 0), (2, "left", 2)]


def identifiers() -> list[str]:
    out = []
    for p in PATIENTS:
        out += [*p, p[0].split()[-1], p[1], p[2].replace("-", ""), p[5].split()[-1], p[7].split(",")[0]]
        y, m, d = p[2].split("-")
        out += [f"{d}/{m}/{y}", f"{m}/{d}/{y}"]
    return out


def leaks(text: str) -> list[str]:
    """The identifiers found in `text` as whole words (a surname "Doe" is not the "doe" of "does")."""
    return [s for s in identifiers() if re.search(rf"(?<![\w]){re.escape(s.lower())}(?![\w])", text.lower())]


@pytest.fixture
def hospital(tmp_path, fundus):
    """A private EHR export: file names are record numbers + names + dates, reports are free text full of PHI."""
    root = tmp_path / "ehr"
    (root / "photos").mkdir(parents=True)
    with (root / "exams.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "mrn", "name", "dob", "phone", "email", "eye", "icdr", "age", "sex", "report",
                    "clinician", "clinic", "address", "diagnosis"])  # fmt: skip
        for i, (p, eye, grade) in enumerate(ROWS):
            name, mrn, dob, phone, email, doc, clinic, address = PATIENTS[p]
            file = f"{mrn}_{name.replace(' ', '_')}_{dob}_{'OD' if eye == 'right' else 'OS'}.png"
            fundus(64, seed=i, eye=eye, dr_grade=grade).save(root / "photos" / file)
            report = (
                f"{name} (MRN {mrn}, DOB {dob}) seen on 2024-05-{10 + i} by {doc} at {clinic}, {address}. "
                f"Call {phone} or write to {email}. Findings: scattered dot haemorrhages, grade {grade}."
            )
            w.writerow([file, mrn, name, dob, phone, email, "OD" if eye == "right" else "OS", grade, 50 + 7 * p + i,
                        "FMF"[p], report, doc, clinic, address, f"diabetic retinopathy, seen by {doc}"])  # fmt: skip
    (root / "mapping.yaml").write_text(
        "labels: exams.csv\nimage: file\nimages: photos\n"
        "columns: {patient_id: mrn, eye: eye, dr_grade: icdr, age: age, sex: sex, findings: report}\n"
        "values: {eye: {OD: right, OS: left}}\n"
        "diseases_text: diagnosis\n"
        "identifiers: [name, dob, phone, email, clinician, clinic, address]\n"
    )
    return root


def published_text(export: Path) -> str:
    """Every published byte as text: each parquet cell decoded (compression hides raw bytes), every other file."""
    parts = []
    for p in sorted(export.rglob("*")):
        if not p.is_file():
            continue
        parts.append(str(p.relative_to(export)))
        if p.suffix == ".parquet":
            parts.append(repr(pq.read_table(p).to_pylist()))
        else:
            parts.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def run_stages(tmp_path, hospital, overrides=()):
    cfg = load_config(CurateConfig, overrides=list(overrides))
    cur = curate([("table", hospital)], tmp_path / "curated", cfg=cfg, progress=False)
    cap = caption_dataset(cur.out, tmp_path / "captioned", shipped("template"))
    pur = purify(cap.out, ROOT / "recipes" / "purify" / "tiny.yaml", tmp_path / "purified")
    return cur, push_dataset(pur.out, "my-hospital/ehr-fundus", local_dir=tmp_path / "export")


@pytest.mark.slow
def test_nothing_identifying_is_published_and_captions_keep_grade_and_eye(tmp_path, hospital, monkeypatch):
    monkeypatch.setenv("RETINALOGOS_ID_KEY", KEY)
    cur, res = run_stages(tmp_path, hospital)
    text = published_text(res.local_dir).lower()
    assert not leaks(text)
    assert "2024-05-1" not in text and "year-old" not in text  # no exam date, no exact or banded age in captions

    rows = load_dataset(str(res.local_dir), "all", split="+".join(res.configs["all"])).to_list()
    assert len(rows) == len(ROWS)
    by_eye_grade = sorted((r["eye"], r["dr_grade"]) for r in rows)
    assert by_eye_grade == sorted((eye, grade) for _, eye, grade in ROWS)
    for r in rows:
        assert r["eye"] in r["caption"] and GRADE_NAMES[r["dr_grade"]] in r["caption"]  # labels still drive it
        assert (r["patient_id"], r["age"], r["age_band"], r["sex"], r["findings"], r["image"]) == (None,) * 6
        assert len(r["source_id"]) == 24 and r["id"] == f"table/{r['source_id']}"
        assert "diabetic retinopathy" in r["diseases"] and set(r["diseases"]) <= {"diabetic retinopathy", "other"}
    # the card says how the private source was protected
    card = (res.local_dir / "README.md").read_text()
    assert "keyed hashes" in card and "No free text from" in card

    # locally: hashed ids everywhere, age bands only, the mapping back beside the curated set and nowhere else
    local = load_from_disk(str(cur.out)).to_list()
    assert {r["age_band"] for r in local} <= {"50-59", "60-69"} and all(r["age"] is None for r in local)
    assert all(r["findings"] is None for r in local)
    mapping = cur.out / MAPPING_FILE
    assert (mapping.stat().st_mode & 0o777) == 0o600
    with mapping.open() as f:
        back = {r["source_id"]: r for r in csv.DictReader(f)}
    assert set(back) == {r["source_id"] for r in local}
    assert {r["original_patient_id"] for r in back.values()} == {p[1] for p in PATIENTS}
    sid = next(iter(back))
    assert sid == pseudonym(KEY.encode(), f"table/image/{back[sid]['original_source_id']}")
    assert not any("ids.csv" in str(p) for p in res.local_dir.rglob("*"))

    # the owner puts back, on their own machine, what the tier withheld: images and metadata match by hashed id
    from retinalogos_hub.hub.attach import attach_images, attach_labels

    pics = attach_images(res.local_dir, [("table", hospital)], tmp_path / "with-images")
    assert pics.attached == {"table": len(ROWS)} and not pics.missing
    meta = attach_labels(pics.out, [("table", hospital)], tmp_path / "with-labels")
    back = load_dataset(str(meta.out), "all", split="+".join(res.configs["all"])).to_list()
    assert {r["patient_id"] for r in back} == {r["patient_id"] for r in local}  # hashed, as curated
    assert all(r["image"] is not None and r["age_band"] in {"50-59", "60-69"} for r in back)
    monkeypatch.delenv("RETINALOGOS_ID_KEY")
    with pytest.raises(ConfigError, match="set RETINALOGOS_ID_KEY"):
        attach_labels(res.local_dir, [("table", hospital)], tmp_path / "no-key")


@pytest.mark.slow
def test_rerun_with_the_same_key_gives_the_same_ids_and_another_key_others(tmp_path, hospital, monkeypatch):
    monkeypatch.setenv("RETINALOGOS_ID_KEY", KEY)
    a = load_from_disk(str(curate([("table", hospital)], tmp_path / "a", progress=False).out))["id"]
    b = load_from_disk(str(curate([("table", hospital)], tmp_path / "b", progress=False).out))["id"]
    monkeypatch.setenv("RETINALOGOS_ID_KEY", KEY[::-1])
    c = load_from_disk(str(curate([("table", hospital)], tmp_path / "c", progress=False).out))["id"]
    assert a == b and not set(a) & set(c)


@pytest.mark.slow
def test_opted_in_free_text_is_scrubbed_by_presidio(tmp_path, hospital, monkeypatch):
    pytest.importorskip("presidio_analyzer")
    monkeypatch.setenv("RETINALOGOS_ID_KEY", KEY)
    cur, res = run_stages(tmp_path, hospital, ["privacy.free_text=[table]"])
    local = load_from_disk(str(cur.out)).to_list()
    assert all(r["findings"] for r in local)
    for r in local:  # the clinical content survives, the identifiers do not
        assert "scattered dot haemorrhages" in r["findings"] and "<" in r["findings"]
    text = published_text(res.local_dir).lower()
    assert not leaks(text)
    assert "scattered dot haemorrhages" in text
    assert "after PII scrubbing with\n  presidio-analyzer" in (res.local_dir / "README.md").read_text()


def test_age_bands_are_coarse_and_top_coded():
    assert [age_band(a, 10, 90) for a in (None, 0, 9.9, 57, 89.5, 90, 104)] == [
        None, "0-9", "0-9", "50-59", "80-89", "90+", "90+"
    ]  # fmt: skip
    assert age_band(42, 5, 90) == "40-44"


def test_physionet_tier_publishes_exactly_its_tier(tmp_path, fundus):
    """BRSET (PhysioNet credentialed) rows publish ids and splits only; an open source publishes everything."""
    monkey = {"openfundus": licenses.License("CC-BY-4.0", licenses.OPEN, "https://example.org/o", "O.")}
    licenses.LICENSES.update(monkey)
    try:
        rows = []
        for i, src in enumerate(["brset", "brset", "openfundus", "openfundus"]):
            rows.append(
                {
                    **{k: None for k in CAPTIONED},
                    "image": {"bytes": _png(fundus(32, seed=i)), "path": None},
                    "id": f"{src}/img{i}",
                    "source": src,
                    "source_id": f"img{i}",
                    "patient_id": f"p{i}",
                    "eye": "left",
                    "dr_grade": 1,
                    "diseases": ["diabetic retinopathy"],
                    "findings": "hard exudates",
                    "age": 61.0,
                    "age_band": "60-69",
                    "sex": "F",
                    "split": "train",
                    "license": licenses.license_for(src).license,
                    "redistributable": licenses.license_for(src).redistributable,
                    "caption": "A left eye with mild non-proliferative diabetic retinopathy.",
                    "caption_fields": {k: "normal" for k in CAPTION_FIELD_NAMES},
                    "caption_model": "template",
                    "caption_issues": [],
                }
            )
        Dataset.from_list(rows, features=CAPTIONED).save_to_disk(str(tmp_path / "captioned"))
        res = push_dataset(tmp_path / "captioned", "lab/mixed", local_dir=tmp_path / "export")
        out = {r["id"]: r for r in load_dataset(str(res.local_dir), "all", split="train").to_list()}
        always = {"id", "source", "source_id", "split", "official_split", "license", "redistributable", "width",
                  "height", "quality_score", "image_origin"}  # fmt: skip
        for row_id, r in out.items():
            lic = licenses.license_for(r["source"])
            published = {k for k, v in r.items() if v not in (None, [], {})} - always
            expected = {c for f in lic.publish for c in licenses.COLUMNS[f]} & {k for k, v in rows[0].items() if v}
            assert published == expected, (row_id, published ^ expected)
        assert licenses.license_for("brset").tier == "reference" and out["brset/img0"]["image_origin"]
        assert out["openfundus/img2"]["caption"] and out["openfundus/img2"]["age_band"] == "60-69"
    finally:
        for k in monkey:
            licenses.LICENSES.pop(k)


def _png(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_private_source_without_a_key_fails_fast_in_one_line(tmp_path, hospital):
    env = {k: v for k, v in __import__("os").environ.items() if k != "RETINALOGOS_ID_KEY"}
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "retinalogos_hub.cli", "curate", "run", "-s", f"table={hospital}", "-o",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    elapsed = time.perf_counter() - t
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert "set RETINALOGOS_ID_KEY" in out.stderr + out.stdout
    assert not (tmp_path / "out").exists()  # nothing written
    assert elapsed < 20  # the check runs before any heavy import (timed precisely in the closing note)


def test_opt_in_without_the_pii_library_fails_fast(tmp_path, hospital, monkeypatch):
    monkeypatch.setenv("RETINALOGOS_ID_KEY", KEY)
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # as if not installed
    cfg = load_config(CurateConfig, overrides=["privacy.free_text=[table]"])
    with pytest.raises(ConfigError, match="presidio-analyzer is not installed"):
        curate([("table", hospital)], tmp_path / "out", cfg=cfg, progress=False)
    assert not (tmp_path / "out").exists()
