"""Every source adapter on a miniature replica of its real layout (written by `demo.layouts.write_layout`)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from retinalogos_hub.demo.layouts import WRITERS, write_layout
from retinalogos_hub.errors import ConfigError, InputError, SourceError
from retinalogos_hub.licenses import LICENSES
from retinalogos_hub.sources import REGISTRY, describe, get_source, make_config
from retinalogos_hub.sources.base import RECORD_KEYS, complete, load

DR, DME, AMD = "diabetic retinopathy", "diabetic macular edema", "amd"

# source -> (layout size n, expected record count, {source_id: expected fields})
EXPECT: dict[str, tuple[int, int, dict[str, dict]]] = {
    "eyepacs": (
        8,
        8,
        {
            "13_left": dict(patient_id="13", eye="left", dr_grade=2, quality="reject", split="train", diseases=[DR]),
            "16_right": dict(patient_id="16", eye="right", dr_grade=0, quality=None, diseases=[]),
            "19_right": dict(split="test", dr_grade=2),
        },
    ),
    "aptos": (8, 8, {"1a2b3c4dda2b": dict(dr_grade=4, patient_id=None, split=None)}),
    "messidor2": (
        8,
        8,
        {
            "IM002386": dict(
                dr_grade=1, dme=1, quality="usable", patient_id="20051020_43808_0100_PP", diseases=[DR, DME]
            ),
            "IM002392": dict(dr_grade=None, dme=None, quality="reject"),
        },
    ),
    "idrid": (
        8,
        8,
        {
            "train-IDRiD_003": dict(
                dr_grade=2,
                dme=2,
                split="train",
                findings="optic disc centre at (62, 32) px; fovea centre at (42, 33) px",
            ),
            "test-IDRiD_002": dict(dr_grade=1, dme=2, split="test"),
        },
    ),
    "ddr": (
        8,
        8,
        {
            "2017000515005": dict(dr_grade=None, quality="reject", split="test"),
            "2017000414004": dict(dr_grade=4, quality=None, split="validation"),
        },
    ),
    "deepdrid": (
        8,
        8,
        {
            "100_r1": dict(patient_id="100", eye="right", dr_grade=1, quality="good", split="train"),
            "100_r2": dict(quality="reject"),
            "101_l1": dict(patient_id="101", eye="left", dr_grade=1, split="validation"),
        },
    ),
    "odir": (
        12,
        12,
        {
            "1_left": dict(patient_id="1", eye="left", dr_grade=0, glaucoma=False, diseases=[], age=50.0, sex="F"),
            "1_right": dict(
                eye="right",
                dr_grade=2,
                diseases=[DR, "hypertensive retinopathy"],
                findings="moderate non proliferative retinopathy，hypertensive retinopathy",
            ),
            "2_left": dict(glaucoma=True, diseases=["glaucoma"]),
            "2_right": dict(glaucoma=False, diseases=[]),  # the patient's G flag does not leak into the normal eye
            "3_right": dict(diseases=[], dr_grade=0, findings="lens dust，normal fundus"),
            "3_left": dict(diseases=["cataract"], dr_grade=None),
            "4_left": dict(diseases=[DR], dr_grade=None, glaucoma=None, findings=None),  # no keywords: flags fallback
            "4_right": dict(dr_grade=3),
            "5_right": dict(diseases=[AMD]),
            "6_left": dict(diseases=["glaucoma suspect"], glaucoma=False),
        },
    ),
    "rfmid": (
        10,
        10,
        {
            "train-1": dict(diseases=[], dr_grade=0, split="train"),
            "train-2": dict(diseases=[DR], dr_grade=None),
            "train-3": dict(diseases=[AMD], dr_grade=0),
            "validation-1": dict(diseases=["branch retinal vein occlusion"], split="validation"),
            "test-2": dict(diseases=["laser scars"], split="test"),
        },
    ),
    "rfmid2": (
        10,
        10,
        {
            "train-2": dict(diseases=[DR], dr_grade=None),
            "validation-1": dict(diseases=["choroidal neovascularization"], split="validation"),
            "validation-2": dict(diseases=["retinal detachment"]),
            "test-2": dict(split="test", diseases=["optic neuritis"]),  # the `ON\xa0` column
        },
    ),
    "jsiec": (
        10,
        10,
        {
            "0.0.Normal_0000abcd-8d87-11e8-9daf-6045cb817f5b.": dict(dr_grade=0, glaucoma=False, findings="Normal"),
            "1.1.DR3_0003abcd-8d87-11e8-9daf-6045cb817f5b.": dict(  # DR3 holds severe NPDR and PDR: no one grade
                dr_grade=None,
                diseases=[DR],
                findings="DR3 (JSIEC class holding severe NPDR and PDR: ICDR grade 3 or 4)",
            ),
            "29.1.Blur_fundus_with_suspected_PDR_0006abcd-8d87-11e8-9daf-6045cb817f5b.": dict(
                diseases=["proliferative diabetic retinopathy suspect"], dr_grade=None
            ),
            "10.0.Possible_glaucoma_0004abcd-8d87-11e8-9daf-6045cb817f5b.": dict(
                diseases=["glaucoma suspect"], glaucoma=None
            ),
            "2.0.BRVO_0008abcd-8d87-11e8-9daf-6045cb817f5b.": dict(diseases=["branch retinal vein occlusion"]),
            "17.Myelinated_nerve_fiber_0007abcd-8d87-11e8-9daf-6045cb817f5b.": dict(
                diseases=["myelinated nerve fibers"]
            ),
        },
    ),
    "brset": (
        8,
        8,
        {
            "img00001": dict(
                patient_id="1",
                eye="right",
                dr_grade=0,
                dme=0,
                sex="M",
                age=48.0,
                quality="good",
                findings="BRSET grading: optic disc normal, vessels normal, macula normal; photo: focus adequate, "
                "illumination adequate, image field adequate, artefacts absent",
            ),
            "img00003": dict(findings=lambda f: f.startswith("BRSET grading: optic disc abnormal,")),
            "img00002": dict(eye="left", diseases=[DR, AMD, "drusen"]),
            "img00004": dict(dr_grade=3, dme=1, sex="F", diseases=[DR, DME]),
            "img00008": dict(quality="reject"),
        },
    ),
    "mbrset": (
        8,
        8,
        {
            "2.2": dict(patient_id="2", eye="left", dr_grade=3, dme=1, sex="M", age=57.0, quality="good"),
            "4.2": dict(quality="reject", eye="left"),
            "1.1": dict(eye="right", dme=0),
        },
    ),
    "airogs": (8, 8, {"TRAIN000003": dict(glaucoma=True, diseases=["glaucoma"]), "TRAIN000004": dict(glaucoma=False)}),
    "justraigs": (
        8,
        8,
        {
            "TRAIN000000": dict(
                glaucoma=True,
                patient_id="TRAIN000000",
                age=60.0,
                findings="neuroretinal rim thinning superiorly; large cup",
            ),
            "TRAIN000001": dict(glaucoma=False, patient_id="TRAIN000000", findings=None),
            "TRAIN000003": dict(
                glaucoma=True,
                patient_id="TRAIN000002",  # grader 3 decided: its features count
                findings="nerve fibre layer defect superiorly; disc haemorrhage",
            ),
        },
    ),
    "refuge": (
        8,
        8,
        {
            "train-g0001": dict(glaucoma=True, split="train", findings="fovea centre at (40, 48) px"),
            "train-n0002": dict(glaucoma=False),
            "validation-V0001": dict(glaucoma=True, split="validation"),
            "test-T0002": dict(glaucoma=False, split="test"),
        },
    ),
    "origa": (
        8,
        8,
        {
            "004": dict(glaucoma=True, eye="left", findings="expert cup-to-disc ratio 0.55"),
            "005": dict(glaucoma=False, eye="right"),
        },
    ),
    "g1020": (8, 8, {"image_3": dict(glaucoma=True), "image_4": dict(glaucoma=False)}),
    "papila": (
        8,
        8,
        {
            "RET002OD": dict(patient_id="RET002", eye="right", glaucoma=False, sex="M", age=40.0),
            "RET002OS": dict(patient_id="RET002", eye="left", glaucoma=True),
            "RET008OD": dict(glaucoma=None, diseases=["glaucoma suspect"]),
        },
    ),
    "fives": (
        8,
        8,
        {
            "train-1_A": dict(diseases=[AMD], split="train"),
            "train-2_D": dict(diseases=[DR], dr_grade=None),
            "test-7_G": dict(glaucoma=True, split="test"),
            "test-8_N": dict(glaucoma=False, dr_grade=0),
        },
    ),
    "hrf": (
        8,
        8,
        {"01_dr": dict(diseases=[DR]), "01_g": dict(glaucoma=True), "02_h": dict(dr_grade=0, glaucoma=False)},
    ),
    "drive": (8, 8, {"21_training": dict(split="train", diseases=[]), "08_test": dict(split="test")}),
    "stare": (
        8,
        8,
        {
            "im0001": dict(diseases=[DR], dr_grade=None, findings="Background Diabetic Retinopathy"),
            "im0002": dict(dr_grade=0, diseases=[]),
            "im0003": dict(dr_grade=4, diseases=[DR, "choroidal neovascularization"]),
        },
    ),
    "chase_db1": (
        8,
        8,
        {"Image_02R": dict(patient_id="02", eye="right"), "Image_04L": dict(patient_id="04", eye="left")},
    ),
    # issue 15 sources (facts from the releases' own file names and headers, as the adapters' docstrings say)
    "messidor1": (
        8,
        8,
        {
            "20051019_38557_0100_PP": dict(dr_grade=0, dme=0, diseases=[]),
            "20051019_38559_0100_PP": dict(  # Messidor's own 0-3 scale is not ICDR: grade None, named in findings
                dr_grade=None, dme=2, diseases=[DR, DME], findings="Messidor retinopathy grade 2 (0-3 scale)"
            ),
        },
    ),
    "diaretdb1": (
        8,
        8,
        {
            "image001": dict(diseases=[], findings=None, split="train"),  # trainset.txt / testset.txt
            "image002": dict(diseases=[DR], findings="lesions marked by the experts: hard exudates, haemorrhages"),
            "image008": dict(split="test"),
        },
    ),
    "e_ophtha": (
        8,
        8,
        {
            "ex-ex-C0002000": dict(
                diseases=[DR], patient_id="E0001000", findings="exudates (e-ophtha EX lesion masks)"
            ),
            "ma-healthy-DS002003": dict(diseases=[], dr_grade=0, patient_id="E0001001"),  # upper-case .JPG
        },
    ),
    "aria": (
        8,
        8,
        {
            "aria_a_10_1": dict(diseases=[AMD]),
            "aria_c_11_2": dict(dr_grade=0),
            "aria_d_12_1": dict(diseases=[DR]),  # from the nested aria_d_markups/aria_d_markups/
            "(0008)aria_c_17": dict(dr_grade=0),  # the release's (NNNN)-prefixed names
        },
    ),
    "acrima": (8, 8, {"Im001_g_ACRIMA": dict(glaucoma=True), "Im002_ACRIMA": dict(glaucoma=False)}),
    "lag": (
        8,
        8,
        {
            "non_glaucoma-2": dict(glaucoma=False),
            "suspicious_glaucoma-1": dict(glaucoma=None, diseases=["glaucoma suspect"]),  # a suspect stays a suspect
        },
    ),
    # 8, not 24: the reference segmentations unpacked beside the images are not listed
    "rim_one_dl": (8, 8, {"train-r1_Im100": dict(glaucoma=True, split="train"), "test-r1_Im103": dict(glaucoma=False)}),
    "chaksu": (
        8,
        8,
        {
            "train-Bosch-Image1": dict(glaucoma=None, diseases=["glaucoma suspect"], split="train"),
            "test-Forus-Image8": dict(glaucoma=False, split="test"),
        },
    ),
    "glaucoma_det": (
        8,
        8,
        {"train-001": dict(glaucoma=True), "validation-004": dict(glaucoma=False, split="validation")},
    ),
    "adam": (8, 8, {"train-A0001": dict(diseases=[AMD], split="train"), "train-N0002": dict(diseases=[])}),
    "palm": (
        9,
        9,
        {"H0001": dict(diseases=["myopia", "high myopia"]), "P0003": dict(diseases=["myopia", "pathological myopia"])},
    ),
    "mmac": (
        8,
        8,
        {
            "train-mmac_task_1_train_0002": dict(
                diseases=["tessellation"], findings="META-PM category 1: tessellated fundus", age=41.0, sex="F"
            ),
            "train-mmac_task_1_train_0001": dict(age=None, sex="M"),  # a blank age stays unknown
            "validation-mmac_task_1_val_0008": dict(diseases=["myopia", "myopic maculopathy"], split="validation"),
        },
    ),
    "mured": (
        8,
        8,
        {
            "2": dict(dr_grade=0, diseases=[]),
            "4": dict(diseases=[DR, "optic disc cupping"]),
            "8": dict(split="validation"),
        },
    ),
    "cataract": (
        8,
        8,
        {"NL_002": dict(diseases=["cataract"]), "NL_003": dict(glaucoma=True), "NL_001": dict(glaucoma=False)},
    ),
    "eye_diseases": (
        8,
        8,
        {"101_left": dict(diseases=[DR], dr_grade=None), "103_left": dict(dr_grade=0, glaucoma=False)},
    ),
    "deepeyenet": (
        8,
        8,
        {
            "train-1": dict(diseases=[DR, DME], split="train"),
            "train-2": dict(diseases=["glaucoma suspect"]),
            "validation-1": dict(split="validation"),  # names repeat across the sets: the JSON path decides
            "test-2": dict(diseases=[], split="test", findings="normal fundus; 47-year-old patient, follow-up visit"),
        },
    ),
    "table": (
        8,
        8,
        {
            "exam001": dict(
                patient_id="MRN0000",
                eye="right",
                dr_grade=1,
                age=61.0,
                split="train",
                diseases=[AMD, "glaucoma suspect", "drusen", DR],
                findings="glaucoma suspect; drusen",
            ),
            "exam002": dict(eye="left", dr_grade=2, diseases=[DR]),
            "exam007": dict(split="test"),
        },
    ),
}
# source -> its main label file (relative to the layout root), for the wrong-columns test
LABEL_FILES = {
    "eyepacs": "trainLabels.csv",
    "aptos": "train.csv",
    "messidor2": "messidor_data.csv",
    "idrid": "B. Disease Grading/2. Groundtruths/a. IDRiD_Disease Grading_Training Labels.csv",
    "deepdrid": "regular_fundus_images/regular-fundus-training/regular-fundus-training.csv",
    "rfmid": "Training_Set/Training_Set/RFMiD_Training_Labels.csv",
    "brset": "labels.csv",
    "mbrset": "labels_mbrset.csv",
    "airogs": "train_labels.csv",
    "justraigs": "JustRAIGS_Train_labels.csv",
    "origa": "OrigaList.csv",
    "g1020": "G1020.csv",
    "table": "exams.tsv",
    "messidor1": "Base11/Annotation_Base11.csv",
    "mmac": "1. Classification of Myopic Maculopathy/2. Groundtruths/1. MMAC2023_Myopic_Maculopathy_Classification_Training_Labels.csv",
    "mured": "train_data.csv",
}


def records(name: str, root: Path, **options) -> dict[str, dict]:
    return {r["source_id"]: r for r in map(complete, get_source(name).records(make_config(name, root, **options)))}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """name -> root of its miniature layout, written once for the module."""
    base = tmp_path_factory.mktemp("layouts")
    return {name: write_layout(name, base / name, n=n) for name, (n, _, _) in EXPECT.items()}


def test_every_registered_source_has_layout_licence_and_expectations():
    # the adapters added for issue 15 item 6 have their layouts in tests/test_sources_added.py (which checks the rest)
    assert set(WRITERS) == set(EXPECT) <= set(REGISTRY)
    assert set(REGISTRY) <= set(LICENSES)
    rows = describe()
    assert [r["name"] for r in rows] == list(REGISTRY)
    for row in rows:
        assert row["expects"] and row["license"] and isinstance(row["redistributable"], bool)
        assert row["labels"] and all(isinstance(label, str) for label in row["labels"])  # a list, for `--json`
        assert row["homepage"].startswith("http") or row["name"] == "table"
    redistributable = {r["name"] for r in rows if r["redistributable"]}
    assert {"idrid"} == redistributable  # the one open licence whose text was found (docs/sources.md)


@pytest.mark.parametrize("name", list(EXPECT))
def test_adapter_maps_labels_on_its_real_layout(name, layouts):
    _, count, expected = EXPECT[name]
    recs = records(name, layouts[name])
    assert len(recs) == count
    for source_id, fields in expected.items():
        assert source_id in recs, f"{source_id} not in {sorted(recs)}"
        for key, value in fields.items():
            if callable(value):
                assert value(recs[source_id][key]), f"{name} {source_id} {key}: {recs[source_id][key]!r}"
            else:
                assert recs[source_id][key] == value, f"{name} {source_id} {key}"
    for rec in recs.values():
        assert set(rec) == set(RECORD_KEYS)
        assert Path(rec["path"]).is_file() and Path(rec["path"]).is_relative_to(layouts[name])
        assert rec["eye"] in (None, "left", "right") and rec["split"] in (None, "train", "validation", "test")
        assert rec["dr_grade"] is None or 0 <= rec["dr_grade"] <= 4
        assert rec["quality"] in (None, "good", "usable", "reject")
        assert not any(
            part.lower() in ("masks", "mask", "manual1", "1st_manual", "ground truth", "images_square")
            for part in Path(rec["path"]).parts
        ), "annotation masks / derived copies must not be listed"


def test_load_returns_a_dataset_of_records(layouts):
    ds = load(get_source("eyepacs"), make_config("eyepacs", layouts["eyepacs"]))
    assert ds.num_rows == 8 and set(ds.column_names) == set(RECORD_KEYS)
    assert sorted(set(ds["dr_grade"])) == [0, 1, 2, 3, 4]


def test_eyepacs_eyeq_from_option_and_without_test(layouts, tmp_path):
    root = layouts["eyepacs"]
    eyeq = tmp_path / "eyeq"
    eyeq.mkdir()
    (root / "Label_EyeQ_train.csv").rename(eyeq / "Label_EyeQ_train.csv")
    try:
        assert all(r["quality"] is None for r in records("eyepacs", root).values())
        recs = records("eyepacs", root, eyeq=eyeq, include_test=False)
    finally:
        (eyeq / "Label_EyeQ_train.csv").rename(root / "Label_EyeQ_train.csv")
    assert len(recs) == 6 and recs["10_right"]["quality"] == "usable"


def test_brset_accepts_renamed_columns(layouts, tmp_path):
    """Releases spell some columns differently; both spellings give the same records."""
    root = tmp_path / "brset"
    write_layout("brset", root, n=8)
    before = records("brset", root)
    renames = {"DR_ICDR": "dr_icdr", "drusens": "drusen", "myopic_fundus": "myoptic_fundus"}
    _rewrite_header(root / "labels.csv", lambda h: renames.get(h, h))
    (root / "labels.csv").rename(root / "labels_brset.csv")
    after = records("brset", root)
    assert {k: {f: v for f, v in r.items()} for k, r in after.items()} == before


def test_papila_reads_csv_exports(tmp_path):
    root = write_layout("papila", tmp_path / "papila", n=8)
    for code in ("od", "os"):
        sheet = root / "ClinicalData" / f"patient_data_{code}.xlsx"
        rows = _xlsx_rows(sheet)
        sheet.unlink()
        with (sheet.with_suffix(".csv")).open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    assert records("papila", root)["RET002OS"]["glaucoma"] is True


def test_refuge1_layout_with_class_folders_and_label_sheet(tmp_path, fundus):
    root = tmp_path / "REFUGE"
    for rel in (
        "Training400/Glaucoma/g0001.jpg",
        "Training400/Non-Glaucoma/n0001.jpg",
        "REFUGE-Validation400/V0001.jpg",
        "REFUGE-Validation400/V0002.jpg",
        "Annotation-Training400/Disc_Cup_Masks/g0001.bmp",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        fundus(64, seed=len(rel)).save(root / rel)
    sheet = root / "REFUGE-Validation400-GT" / "Fovea_locations.csv"
    sheet.parent.mkdir()
    sheet.write_text("ID,ImgName,Fovea_X,Fovea_Y,Glaucoma Label\n1,V0001.jpg,30.2,33.0,1\n2,V0002.jpg,31.0,32.0,0\n")
    (root / "notes.csv").write_text("something,else\n1,2\n")  # unrelated sheets are ignored
    recs = records("refuge", root)
    assert sorted(recs) == ["train-g0001", "train-n0001", "validation-V0001", "validation-V0002"]
    assert [recs[k]["glaucoma"] for k in sorted(recs)] == [True, False, True, False]
    assert recs["validation-V0001"]["findings"] == "fovea centre at (30, 33) px"


def test_justraigs_needs_its_semicolon_separator(tmp_path):
    root = write_layout("justraigs", tmp_path / "j", n=4)
    labels = root / "JustRAIGS_Train_labels.csv"
    labels.write_text(labels.read_text().replace(";", ","))
    with pytest.raises(InputError, match="expected columns Eye ID, Final Label, Fellow Eye ID, Age; missing"):
        records("justraigs", root)


@pytest.mark.parametrize("name", list(LABEL_FILES))
def test_wrong_columns_fail_in_one_line_naming_file_and_columns(name, tmp_path):
    root = write_layout(name, tmp_path / name, n=4)
    label_file = root / LABEL_FILES[name]
    sep = ";" if name == "justraigs" else "\t" if name == "table" else ","
    _rewrite_header(label_file, lambda h: f"{h}_x" if h.strip() else h, sep=sep)
    with pytest.raises(InputError) as err:
        records(name, root)
    msg = str(err.value)
    assert "\n" not in msg and str(label_file) in msg and "expected columns" in msg


@pytest.mark.parametrize("name", list(REGISTRY))
def test_missing_or_wrong_directory_is_a_source_error(name, tmp_path):
    with pytest.raises(SourceError, match=f"{name}: directory not found"):
        records(name, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises((SourceError, ConfigError)) as err:
        records(name, tmp_path / "empty")
    assert "\n" not in str(err.value) and str(tmp_path / "empty") in str(err.value)


def test_unknown_source_and_option_list_the_known_ones(tmp_path):
    with pytest.raises(SourceError, match="did you mean 'eyepacs'.*known sources: .*aptos.*chase_db1"):
        get_source("eyepac")
    with pytest.raises(SourceError, match="unknown option.*valid options: on_bad_files, eyeq, include_test"):
        make_config("eyepacs", tmp_path, eyeqq=tmp_path)


def test_missing_image_follows_on_bad_files(tmp_path, caplog):
    root = write_layout("aptos", tmp_path / "aptos", n=5)
    victim = sorted((root / "train_images").iterdir())[2]
    victim.unlink()
    with pytest.raises(InputError, match=rf"train.csv line 4: image not found: .*{victim.stem}"):
        records("aptos", root)
    with caplog.at_level(logging.WARNING):
        assert len(records("aptos", root, on_bad_files="warn")) == 4
    assert victim.stem in caplog.text
    assert len(records("aptos", root, on_bad_files="skip")) == 4
    with pytest.raises(InputError, match="on_bad_files must be one of error, warn, skip"):
        records("aptos", root, on_bad_files="ignore")


def test_bad_label_values_name_the_row(tmp_path):
    root = write_layout("ddr", tmp_path / "ddr", n=3)
    (root / "DR_grading" / "train.txt").write_text("2017000010000.jpg 7\n")
    with pytest.raises(InputError, match="train.txt image 2017000010000.jpg: label must be 0-5"):
        records("ddr", root)
    root = write_layout("table", tmp_path / "table", n=4)
    tsv = root / "exams.tsv"
    tsv.write_text(tsv.read_text().replace("\tOS\t", "\tXX\t", 1))
    with pytest.raises(InputError, match=r"exams.tsv image 2024/exam000.jpg: value 'XX' .*map it under `values:`"):
        records("table", root)


def test_table_mapping_typos_are_named(tmp_path):
    root = write_layout("table", tmp_path / "table", n=4)
    mapping = root / "mapping.yaml"
    mapping.write_text(mapping.read_text().replace("diseases_text:", "disease_text:"))
    with pytest.raises(ConfigError, match="unknown key 'disease_text' .*did you mean 'diseases_text'"):
        records("table", root)
    mapping.write_text(
        mapping.read_text().replace("disease_text:", "diseases_text:").replace("dr_grade: icdr", "grade: icdr")
    )
    with pytest.raises(ConfigError, match="unknown schema field.*grade; valid: patient_id, eye, dr_grade"):
        records("table", root)


def _rewrite_header(path: Path, rename, sep: str = ",") -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = sep.join(rename(h) for h in lines[0].rstrip("\r\n").split(sep)) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def _xlsx_rows(path: Path) -> list[list]:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = [["" if v is None else v for v in r] for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    return rows


def test_chaksu_test_set_spellings_and_bad_decision(tmp_path):
    """The test set's `Glaucoma Decision` column and `Remedio` sheet name, the `Images` names whose extension is not
    the file's, and the measurement sheets in `Majority/` (not read); an unknown decision names the sheet and row."""
    root = write_layout("chaksu", tmp_path / "chaksu", n=12)
    recs = records("chaksu", root)
    assert len(recs) == 12 and recs["test-Remidio-Image12"]["split"] == "test"
    assert (
        recs["test-Forus-Image11"]["diseases"] == ["glaucoma suspect"]
        and recs["test-Bosch-Image10"]["glaucoma"] is False
    )
    sheet = root / "Train/6.0_Glaucoma_Decision/Glaucoma_Decision_Comparison_Bosch_majority.csv"
    sheet.write_text(sheet.read_text().replace("GLAUCOMA SUSPECT\n", "MAYBE\n", 1))
    with pytest.raises(InputError, match=r"Bosch_majority.csv image Image1.jpg-Image1-1.jpg: decision 'MAYBE'"):
        records("chaksu", root)


def test_diaretdb1_accepts_the_british_spelling_and_no_split_lists(tmp_path):
    root = write_layout("diaretdb1", tmp_path / "d", n=4)
    truth = root / "resources/images/ddb1_groundtruth"
    (truth / "hemorrhages").rename(truth / "haemorrhages")
    for listing in root.glob("resources/*/*set.txt"):
        listing.unlink()
    recs = records("diaretdb1", root)
    assert recs["image002"]["findings"] == "lesions marked by the experts: hard exudates, haemorrhages"
    assert {r["split"] for r in recs.values()} == {None}


def test_deepeyenet_cleaned_release_spellings(tmp_path):
    import json

    root = write_layout("deepeyenet", tmp_path / "den", n=8)
    valid = root / "DeepEyeNet_valid.json"
    entries = json.loads(valid.read_text())
    for entry in entries:
        for meta in entry.values():
            meta["Keywords"] = meta.pop("keywords").split(", ")
    valid.unlink()
    (root / "DeepEyeNet_val.json").write_text(json.dumps(entries))
    recs = records("deepeyenet", root)
    assert recs["validation-1"]["diseases"] == [DR, DME] and recs["validation-1"]["split"] == "validation"


def test_records_outside_the_schema_vocabulary_fail_naming_the_file():
    from retinalogos_hub.errors import InputError
    from retinalogos_hub.sources.base import complete

    assert complete({"path": "a.png", "dr_grade": 4, "eye": "left"})["dr_grade"] == 4
    with pytest.raises(InputError, match=r"a\.png: dr_grade 5 is not an ICDR grade 0-4"):
        complete({"path": "a.png", "dr_grade": 5})
    with pytest.raises(InputError, match=r"b\.png: eye 'L' is not"):
        complete({"path": "b.png", "eye": "L"})
