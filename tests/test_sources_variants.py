"""Label files as people really download them (issue 15): other encodings, bundles of several datasets, re-releases
with other column spellings, the official RFMiD layout, flat EyePACS, `sources --check`, and label semantics (eye
conflicts, classes spanning grades, suspected diagnoses, BRSET's own grading)."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import pytest

from retinalogos_hub.demo.layouts import VARIANTS, write_layout, write_variant
from retinalogos_hub.errors import InputError
from retinalogos_hub.sources import check, get_source, make_config
from retinalogos_hub.sources.base import complete, read_table, read_text
from retinalogos_hub.sources.vocab import from_keywords


def records(name: str, root: Path, **options) -> dict[str, dict]:
    return {r["source_id"]: r for r in map(complete, get_source(name).records(make_config(name, root, **options)))}


def _main(monkeypatch, capsys, *args):
    from retinalogos_hub.cli import main

    monkeypatch.setattr(sys, "argv", ["retinalogos", *args])
    monkeypatch.delenv("RETINALOGOS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main()
    cap = capsys.readouterr()
    return exit_.value.code, cap.out, cap.err


# -- 1. encodings and one-line errors ---------------------------------------------------------------------------------


def test_cp1252_label_file_reads_and_says_which_encoding(tmp_path, caplog):
    root = write_layout("aptos", tmp_path / "aptos", n=4)
    labels = root / "train.csv"
    text = labels.read_text(encoding="utf-8").replace("id_code,diagnosis", "id_code,diagnosis,note")
    lines = text.splitlines()
    lines[2] += ",café – revisão"  # an en dash (0x96 in cp1252) and accents, as a Windows export writes them
    labels.write_bytes("\n".join(lines).encode("cp1252") + b"\n")
    with caplog.at_level(logging.WARNING):
        recs = records("aptos", root)
        rows = read_table(labels, ("id_code", "note"))
    assert len(recs) == 4 and rows[1]["note"] == "café – revisão"
    assert "train.csv is not UTF-8 (first non-UTF-8 byte on line 3); read as cp1252" in caplog.text


def test_rfmid2_raw_no_break_space_byte(tmp_path):
    """RFMiD 2.0's header has a raw 0xA0 byte (a latin-1 no-break space) after `ON`: not valid UTF-8."""
    root = write_layout("rfmid2", tmp_path / "r2", n=10)
    before = records("rfmid2", root)
    for f in root.glob("*labels.csv"):
        f.write_bytes(f.read_bytes().replace("ON\xa0".encode(), b"ON\xa0"))
    assert b"ON\xa0," in (root / "RFMiD_2_Testing_labels.csv").read_bytes()
    assert records("rfmid2", root) == before  # `ON\xa0` is still optic neuritis


def test_utf8_with_bom_and_unknown_bytes_always_give_text(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes("\ufeffa,b\n1,2\n".encode())
    assert read_text(f) == "a,b\n1,2\n"
    f.write_bytes(b"a,b\n\x81\x8d,2\n")  # undefined in cp1252: the chain still ends with text
    assert read_text(f).startswith("a,b\n")


def test_unexpected_exception_is_one_line_naming_stage_file_and_row(tmp_path, monkeypatch, capsys):
    import retinalogos_hub.sources.aptos as aptos

    root = write_layout("aptos", tmp_path / "aptos", n=4)
    calls = []

    def broken(value, where=""):
        calls.append(value)
        if len(calls) == 3:
            raise KeyError("boom")
        return 0

    monkeypatch.setattr(aptos, "to_int", broken)
    code, out, err = _main(monkeypatch, capsys, "curate", "run", "-s", f"aptos={root}", "-o", str(tmp_path / "o"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 2, err
    assert lines[0].startswith("error: curate run failed: KeyError: 'boom' (source aptos at ")
    assert f"file {root / 'train.csv'} row 4" in lines[0].replace("\n", "")
    assert "RETINALOGOS_DEBUG=1" in lines[1] and "Traceback" not in err
    monkeypatch.setenv("RETINALOGOS_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["retinalogos", "curate", "run", "-s", f"aptos={root}", "-o", str(tmp_path / "p")])
    calls.clear()
    from retinalogos_hub.cli import main

    with pytest.raises(KeyError):
        main()


def test_unexpected_os_error_names_its_file():
    from retinalogos_hub.cli import unexpected

    e = PermissionError(13, "Permission denied")
    e.filename = "labels/x.csv"
    line = unexpected(e, ["sources", "--check", "aptos=labels"])
    assert line == "sources failed: PermissionError: [Errno 13] Permission denied: 'labels/x.csv'"
    assert unexpected(ValueError("bad"), []) == "retinalogos failed: ValueError: bad"


# -- 2. bundles and variants ------------------------------------------------------------------------------------------


def test_every_variant_reads_like_its_original(tmp_path):
    for variant, (name, _) in VARIANTS.items():
        root = write_variant(variant, tmp_path / variant, n=8)
        recs = records(name, root)
        assert len(recs) == 8, variant
        assert all(Path(r["path"]).is_relative_to(root) for r in recs.values())


def test_rfmid_official_layout_keeps_ids_labels_and_splits(tmp_path):
    kaggle = records("rfmid", write_layout("rfmid", tmp_path / "k", n=10))
    official = records("rfmid", write_variant("rfmid-official", tmp_path / "o", n=10))
    strip = ("path",)
    assert {k: {f: v for f, v in r.items() if f not in strip} for k, r in official.items()} == {
        k: {f: v for f, v in r.items() if f not in strip} for k, r in kaggle.items()
    }
    assert any("1. Original Images/c. Testing Set" in r["path"] for r in official.values())


def test_messidor2_kaggle_spelling(tmp_path):
    original = records("messidor2", write_layout("messidor2", tmp_path / "a", n=8))
    kaggle = records("messidor2", write_variant("messidor2-kaggle", tmp_path / "b", n=8))
    fields = ("dr_grade", "dme", "quality", "patient_id")
    assert {k: [r[f] for f in fields] for k, r in kaggle.items()} == {
        k: [r[f] for f in fields] for k, r in original.items()
    }
    labels = tmp_path / "b" / "messidor_data.csv"  # a copy with only id_code,diagnosis: DME and gradability unknown
    with labels.open(newline="") as fh:
        rows = [r[:2] for r in csv.reader(fh)]
    with labels.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    bare = records("messidor2", tmp_path / "b")
    assert {r["dme"] for r in bare.values()} == {None} and {r["quality"] for r in bare.values()} == {None}
    assert [bare[k]["dr_grade"] for k in sorted(bare)][:-1] == [kaggle[k]["dr_grade"] for k in sorted(kaggle)][:-1]


def test_flat_eyepacs(tmp_path):
    recs = records("eyepacs", write_variant("eyepacs-flat", tmp_path / "e", n=8))
    assert len(recs) == 8 and {r["split"] for r in recs.values()} == {"train"}
    assert recs["13_left"]["dr_grade"] == 2 and recs["13_left"]["quality"] == "reject"


def test_bundle_adapters_read_their_own_folder(tmp_path):
    root = write_variant("glaucoma-bundle", tmp_path / "bundle", n=8)
    for name, folder in (("origa", "ORIGA"), ("g1020", "G1020"), ("refuge", "REFUGE")):
        recs = records(name, root)
        assert len(recs) == 8, name
        assert all(Path(r["path"]).is_relative_to(root / folder) for r in recs.values()), name


def test_sources_check_prints_files_counts_and_problems(tmp_path, monkeypatch, capsys):
    root = write_layout("aptos", tmp_path / "aptos", n=6)
    sorted((root / "train_images").iterdir())[0].unlink()
    report = check("aptos", root)
    assert report["ok"] and report["images"] == 5 and report["files"] == [str(root / "train.csv")]
    assert sum(report["splits"]["none"]["dr_grade"].values()) == 5
    assert len(report["problems"]) == 1 and "image not found" in report["problems"][0]
    code, out, err = _main(monkeypatch, capsys, "sources", "--check", f"aptos={root}", "--check", f"idrid={root}")
    out = " ".join(out.split())  # rich wraps long lines
    assert code == 1 and "aptos at" in out and "5 images" in out and "train.csv" in out and "problem:" in out
    assert "idrid at" in out and "does not look like the idrid layout" in out.replace(" ", " ")
    code, out, _ = _main(monkeypatch, capsys, "sources", "--check", f"aptos={root}", "--json")
    assert code == 0 and '"images": 5' in out
    assert "dr_grade" in check("rfmid", write_variant("rfmid-official", tmp_path / "r", n=10))["splits"]["test"]


# -- 5. label semantics -----------------------------------------------------------------------------------------------


def test_deepdrid_eye_conflicts_warn_with_a_count_or_fail(tmp_path, caplog):
    root = write_layout("deepdrid", tmp_path / "d", n=8)
    labels = root / "regular_fundus_images/regular-fundus-training/regular-fundus-training.csv"
    with labels.open(newline="") as fh:
        rows = list(csv.reader(fh))
    for r in rows[1:3]:  # the two left-eye shots of patient 100, graded in the right-eye column
        r[3], r[4] = r[4], r[3]
    with labels.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with caplog.at_level(logging.WARNING):
        recs = records("deepdrid", root)
    assert recs["100_l1"]["eye"] is None and recs["100_l1"]["dr_grade"] == 0 and recs["100_r1"]["eye"] == "right"
    assert "deepdrid: 2 rows whose file name and grade column disagree on the eye" in caplog.text
    with pytest.raises(
        InputError, match=r"regular-fundus-training.csv line 2 image_id 100_l1: the file name says left"
    ):
        records("deepdrid", root, eye_conflicts="error")


def test_suspected_diagnoses_stay_suspected():
    assert from_keywords("suspected glaucoma，suspicious diabetic retinopathy, possible macular hole") == [
        "glaucoma suspect",
        "diabetic retinopathy suspect",
        "macular hole suspect",
    ]
    assert from_keywords("moderate non proliferative retinopathy") == ["diabetic retinopathy"]
