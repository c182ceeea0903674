"""The adapters added for issue 15 item 6 (HEI-MED, ROC, Drishti-GS1, DRIONS-DB, SUSTech-SYSU, JICHI, Paraguay), each
on a miniature replica of its real released layout (file names and label headers as documented in each adapter's
docstring), with one messy case each."""

from __future__ import annotations

import io
import logging
from functools import cache
from pathlib import Path

import pytest

from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.demo.layouts import WRITERS
from retinalogos_hub.errors import InputError, SourceError
from retinalogos_hub.licenses import DERIVED, LICENSES, REFERENCE
from retinalogos_hub.sources import REGISTRY, check, get_source, make_config
from retinalogos_hub.sources.base import RECORD_KEYS, complete

DR = "diabetic retinopathy"
ADDED = ("hei_med", "roc", "drishti_gs", "drions_db", "sustech_sysu", "jichi", "paraguay")


def records(name: str, root: Path, **options) -> dict[str, dict]:
    recs = {r["source_id"]: r for r in map(complete, get_source(name).records(make_config(name, root, **options)))}
    for rec in recs.values():
        assert set(rec) == set(RECORD_KEYS) and Path(rec["path"]).is_file()
    return recs


@cache
def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    fundus_image(64, seed=len(fmt)).save(buf, format=fmt)
    return buf.getvalue()


def image(path: Path) -> Path:
    """A tiny procedural fundus image at `path` (JPEG or PNG by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_encoded("PNG" if path.suffix.lower() == ".png" else "JPEG"))
    return path


def text(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode(encoding))
    return path


def test_every_added_source_is_registered_licensed_and_not_open():
    assert set(REGISTRY) - set(WRITERS) == {*ADDED}  # the others have their layout in demo/layouts.py
    for name in ADDED:
        lic = LICENSES[name]
        assert lic.publish in (DERIVED, REFERENCE) and lic.url.startswith("http") and lic.citation
        info = get_source(name).INFO
        assert info.name == name and info.expects and info.labels and info.homepage.startswith("http")
        assert "github.com" in get_source(name).__doc__ or "zenodo" in get_source(name).__doc__  # where facts came from


# -- HEI-MED ----------------------------------------------------------------------------------------------------------


def _hei_med(root: Path) -> Path:
    d = root / "HEI-MED" / "DMED"
    for name, gender, lesions in (
        ("(00000003)", "F", ["Exudate 1", "Exudate 1", "Other Bright Lesion 1"]),
        ("(00000052)", "M", None),
        ("0278250_(949).dcm", "M", ["MicroAneurysm 0"]),
    ):
        image(d / f"{name}.jpg")
        image(d / f"{name}_vess.png")  # machine vessel map: not a fundus image
        text(
            d / f"{name}.meta",
            f"~ImageName:~{name}.jpg\n~PatientGender~{gender}\n~PatientRace~CAUCASIAN\n~PatientDOB~12/28/1955\n"
            "~QualityValue~0.3293741\n~DiabetesType~TYPE II\n~ONrow~920\n~ONcol~302\n\n",
        )
        if lesions:
            text(d / f"{name}.GND", f"{len(lesions)}\n" + "\n".join(lesions) + "\n0\n0\n0\nNA\nNA\nNA\nNA\n")
    image(d / "(00000099).jpg")
    text(d / "(00000099).meta", "~ImageName:~(00000099).jpg\n")
    text(d / "(00000099).jpg.bad", "")  # flagged bad by the release: left out, as Dmed.m does
    return root / "HEI-MED"


def test_hei_med_reads_meta_and_expert_lesions(tmp_path):
    recs = records("hei_med", _hei_med(tmp_path))
    assert sorted(recs) == ["(00000003)", "(00000052)", "0278250_(949).dcm"]
    first = recs["(00000003)"]
    assert first["sex"] == "F" and first["patient_id"] == "(00000003)" and first["diseases"] == [DR]
    assert first["findings"].startswith("lesions outlined by the expert: exudates, other bright lesions")
    assert "optic nerve head at (302, 920) px" in first["findings"] and "ELVD image quality 0.33" in first["findings"]
    assert recs["(00000052)"]["diseases"] == [] and recs["(00000052)"]["sex"] == "M"
    assert recs["0278250_(949).dcm"]["diseases"] == [DR] and "microaneurysms" in recs["0278250_(949).dcm"]["findings"]
    assert all(r["split"] is None and r["eye"] is None for r in recs.values())


def test_hei_med_missing_image_and_broken_gnd_name_the_file(tmp_path, caplog):
    root = _hei_med(tmp_path)
    (root / "DMED" / "(00000052).jpg").unlink()
    with pytest.raises(InputError, match=r"\(00000052\)\.meta line 1: image not found"):
        records("hei_med", root)
    with caplog.at_level(logging.WARNING):
        assert len(records("hei_med", root, on_bad_files="warn")) == 2
    text(root / "DMED" / "(00000003).GND", "three\nExudate 1\n")
    with pytest.raises(InputError, match=r"\(00000003\)\.GND line 1: expected the number of marked blobs"):
        records("hei_med", root, on_bad_files="skip")


def test_hei_med_meta_in_latin1_still_reads(tmp_path):
    root = _hei_med(tmp_path)
    text(
        root / "DMED" / "(00000052).meta",
        "~PatientGender~M\n~PatientRace~HISPANIC \xe9\n~ONrow~10\n~ONcol~20\n",
        "cp1252",
    )
    assert "optic nerve head at (20, 10) px" in records("hei_med", root)["(00000052)"]["findings"]


# -- ROC --------------------------------------------------------------------------------------------------------------

ROC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<set>
<!-- annotations-consensus-ma-only.xml: copyrighted material owned by the University of Iowa -->
  <annotations-per-image imagename="image0_training.jpg">
    <annotation><mark x="100" y="120"><radius>3</radius></mark><lesion>microaneurysm</lesion>
      <probability>0.7</probability></annotation>
    <annotation><mark x="30" y="40"><radius>2</radius></mark><lesion>microaneurysm</lesion>
      <probability>1.0</probability></annotation>
  </annotations-per-image>
  <annotations-per-image imagename="image1_training.jpg">
  </annotations-per-image>
</set>
"""


def _roc(root: Path) -> Path:
    train = root / "ROC" / "ROCtraining" / "ROCtraining"
    for n in range(3):
        image(train / f"image{n}_training.jpg")
    text(train / "annotations-consensus-ma-only.xml", ROC_XML)
    image(root / "ROC" / "ROCtestImages" / "images" / "image0_test.jpg")
    return root / "ROC"


def test_roc_reads_consensus_markings_and_the_challenge_split(tmp_path):
    recs = records("roc", _roc(tmp_path))
    assert sorted(recs) == ["image0_test", "image0_training", "image1_training", "image2_training"]
    marked = recs["image0_training"]
    assert marked["split"] == "train" and marked["diseases"] == [DR]
    assert marked["findings"] == "marked by the retinal specialists: 2 microaneurysms"
    assert recs["image1_training"]["diseases"] == [] and "no microaneurysm" in recs["image1_training"]["findings"]
    assert recs["image2_training"]["findings"] is None  # not in the XML: unknown
    assert recs["image0_test"]["split"] == "test" and recs["image0_test"]["findings"] is None


def test_roc_markings_for_a_missing_image_and_broken_xml_name_the_line(tmp_path):
    root = _roc(tmp_path)
    (root / "ROCtraining" / "ROCtraining" / "image1_training.jpg").unlink()
    with pytest.raises(
        InputError, match=r"annotations-consensus-ma-only\.xml line 10: image not found: .*image1_training\.jpg"
    ):
        records("roc", root)
    assert len(records("roc", root, on_bad_files="skip")) == 3
    xml = root / "ROCtraining" / "ROCtraining" / "annotations-consensus-ma-only.xml"
    xml.write_text(ROC_XML.replace("</set>", ""))
    with pytest.raises(InputError, match=r"annotations-consensus-ma-only\.xml line \d+: not valid XML"):
        records("roc", root, on_bad_files="skip")


# -- Drishti-GS1 ------------------------------------------------------------------------------------------------------

DRISHTI_ROWS = [
    ["Drishti-GS1 dataset", "", "", "", "", "", "", "", ""],
    ["Diagnosis by experts", "", "", "", "", "", "", "", ""],
    ["", "", "", "", "", "", "", "", ""],
    ["Patient ID", "Drishti-GS File", "Expert 1", "Expert 2", "Expert 3", "Expert 4", "Notching", "CDR", "Total"],
    ["", "", "Decision", "Decision", "Decision", "Decision", "", "", ""],
    ["P1", "drishtiGS_001'", "Glaucomatous", "Glaucomatous", "Normal", "Glaucomatous", "Yes", "0.7", "Glaucomatous"],
    ["P1", "drishtiGS_002'", "Normal", "Normal", "Normal", "Normal", "No", "0.4", "Normal"],
    ["P2", "drishtiGS_003'", "Normal", "Normal", "Normal", "Normal", "No", "0.5", "Suspect"],
]


def _drishti(root: Path, sheet: str = "xlsx") -> Path:
    base = root / "Drishti-GS1_files" / "Drishti-GS1_files"
    image(base / "Training" / "Images" / "drishtiGS_001.png")
    image(base / "Training" / "GT" / "drishtiGS_001" / "SoftMap" / "drishtiGS_001_ODsegSoftmap.png")
    image(base / "Test" / "Images" / "drishtiGS_002.png")
    image(base / "Test" / "Images" / "drishtiGS_003.png")
    if sheet == "xlsx":
        openpyxl = pytest.importorskip("openpyxl")
        wb = openpyxl.Workbook()
        for row in DRISHTI_ROWS:
            wb.active.append([v or None for v in row])
        wb.save(base / "Drishti-GS1_diagnosis.xlsx")
    else:
        text(base / "Drishti-GS1_diagnosis.csv", "\n".join(",".join(r) for r in DRISHTI_ROWS) + "\n", "cp1252")
    return root


def test_drishti_reads_the_diagnosis_sheet_below_its_title_rows(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        recs = records("drishti_gs", _drishti(tmp_path / "d"))
    assert sorted(recs) == ["drishtiGS_001", "drishtiGS_002", "drishtiGS_003"]
    assert (recs["drishtiGS_001"]["glaucoma"], recs["drishtiGS_001"]["split"]) == (True, "train")
    assert (recs["drishtiGS_002"]["glaucoma"], recs["drishtiGS_002"]["split"]) == (False, "test")
    assert recs["drishtiGS_001"]["patient_id"] == recs["drishtiGS_002"]["patient_id"] == "P1"
    assert recs["drishtiGS_003"]["glaucoma"] is None and "neither Normal nor Glaucomatous" in caplog.text


def test_drishti_csv_export_in_cp1252_and_a_missing_image(tmp_path):
    root = _drishti(tmp_path / "d", sheet="csv")
    assert records("drishti_gs", root)["drishtiGS_001"]["glaucoma"] is True
    (root / "Drishti-GS1_files" / "Drishti-GS1_files" / "Test" / "Images" / "drishtiGS_002.png").unlink()
    with pytest.raises(InputError, match=r"Drishti-GS1_diagnosis\.csv line 7: image not found: .*drishtiGS_002"):
        records("drishti_gs", root)


# -- DRIONS-DB --------------------------------------------------------------------------------------------------------


def _drions(root: Path) -> Path:
    base = root / "DRIONS-DB"
    for n in ("001", "002"):
        image(base / "images" / f"image_{n}.jpg")
    text(base / "experts_anotation" / "anotExpert1_001.txt", "300 , 180\n320 , 200\n300 , 220\n280 , 200\n")
    text(base / "experts_anotation" / "anotExpert2_001.txt", "301 , 181\n")
    return base


def test_drions_reads_the_disc_outline(tmp_path):
    recs = records("drions_db", _drions(tmp_path))
    assert sorted(recs) == ["image_001", "image_002"]
    assert recs["image_001"]["findings"] == "optic disc outlined by expert 1: centre at (300, 200) px, about 40 x 40 px"
    assert recs["image_002"]["findings"] is None
    assert all(r["split"] is None and r["glaucoma"] is None and r["patient_id"] is None for r in recs.values())


def test_drions_bad_contour_names_file_and_line(tmp_path):
    base = _drions(tmp_path)
    text(base / "experts_anotation" / "anotExpert1_002.txt", "10 , 20\nten , 30\n")
    with pytest.raises(InputError, match=r"anotExpert1_002\.txt line 2: expected 'x , y' contour coordinates"):
        records("drions_db", base)


# -- SUSTech-SYSU -----------------------------------------------------------------------------------------------------

SUSTECH_HEADER = (
    "Fundus_images,left_versus_right_eye(left_0_right_1),DR_grade(International_Clinical_DR_Severity_Scale),"
    "DR_grade(American_Academy_of_Ophthalmology),DR_grade(Scottish_DR_grading_protocol)\n"
)


def _voc(*objects: tuple[str, int, int, int, int]) -> str:
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
        "</bndbox></object>"
        for n, a, b, c, d in objects
    )
    return f"<annotation><folder>originalImages</folder><filename>x.jpg</filename>{body}</annotation>"


def _sustech(root: Path) -> Path:
    base = root / "1030The SUSTech-SYSU dataset for automated exudate detection and diabetic retinopathy grading"
    for n in ("0001", "0002", "0003"):
        image(base / "originalImages" / f"{n}.jpg")
    text(
        base / "originalImages" / "drLabels.csv",
        SUSTECH_HEADER + "0001.jpg,0,0,0,0\n0002.jpg,1,3,3,3\n0003.jpg,1,5,5,5\n",
    )
    text(
        base / "c5_DR_reclassified.csv",
        SUSTECH_HEADER.replace("left_versus_right_eye(left_0_right_1),", "") + "0003.jpg,4,4,4\n",
    )
    text(base / "exudateLabels" / "0002.xml", _voc(("ex", 10, 10, 20, 20), ("ex", 30, 30, 34, 34), ("se", 5, 5, 9, 9)))
    text(base / "odFoveaLabels" / "0002.xml", _voc(("OD", 100, 200, 140, 240), ("fovea", 300, 210, 301, 211)))
    return root


def test_sustech_reads_eye_grades_laser_regrading_and_boxes(tmp_path):
    recs = records("sustech_sysu", _sustech(tmp_path))
    assert sorted(recs) == ["0001", "0002", "0003"]
    assert (recs["0001"]["eye"], recs["0001"]["dr_grade"], recs["0001"]["diseases"]) == ("left", 0, [])
    second = recs["0002"]
    assert (second["eye"], second["dr_grade"]) == ("right", 3) and second["diseases"] == [DR]
    assert second["findings"] == (
        "2 hard exudates boxed; 1 soft exudate boxed; optic disc centre at (120, 220) px, box 40 x 40 px; "
        "fovea centre at (300, 210) px"
    )
    assert recs["0003"]["dr_grade"] == 4 and recs["0003"]["diseases"] == ["laser scars", DR]
    assert all(r["split"] is None and r["patient_id"] is None for r in recs.values())


def test_sustech_out_of_scale_grade_and_unregraded_laser_image(tmp_path):
    root = _sustech(tmp_path)
    base = next(root.iterdir())
    (base / "c5_DR_reclassified.csv").unlink()
    assert records("sustech_sysu", root)["0003"]["dr_grade"] is None  # laser scars, grade not given
    labels = base / "originalImages" / "drLabels.csv"
    labels.write_text(labels.read_text().replace("0002.jpg,1,3,", "0002.jpg,1,7,"))
    with pytest.raises(InputError, match=r"drLabels\.csv image 0002\.jpg: ICDR grade must be 0-5, got 7"):
        records("sustech_sysu", root)


# -- JICHI ------------------------------------------------------------------------------------------------------------

JICHI_LIST = (
    "Image,Davis_grading_of_concatenated_figures,Davis_grading_of_one_figure\n"
    "1_1_R.jpg,ndr,ndr\n1_2_L.jpg,ppdr,sdr\n4_1_R.jpg,pdr,pdr\n4_2_L.jpg,sdr,xdr\n"
)


def _jichi(root: Path) -> Path:
    for name in ("1_1_R", "1_2_L", "4_1_R", "4_2_L"):
        image(root / "31_JICHI" / "documents" / f"{name}.jpg")
    text(root / "31_JICHI" / "list.csv", JICHI_LIST)
    return root / "31_JICHI"


def test_jichi_maps_davis_grades_eyes_and_patients(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        recs = records("jichi", _jichi(tmp_path))
    assert (recs["1_1_R"]["dr_grade"], recs["1_1_R"]["eye"], recs["1_1_R"]["patient_id"]) == (0, "right", "1")
    simple = recs["1_2_L"]
    assert simple["dr_grade"] is None and simple["diseases"] == [DR] and simple["eye"] == "left"
    assert simple["findings"] == (
        "modified Davis grade: simple diabetic retinopathy (one figure); "
        "pre-proliferative diabetic retinopathy (concatenated figures)"
    )
    assert recs["4_1_R"]["dr_grade"] == 4 and recs["4_1_R"]["patient_id"] == "4"
    assert recs["4_2_L"]["dr_grade"] is None and recs["4_2_L"]["diseases"] == []  # 'xdr' is no Davis grade
    assert "not ndr/sdr/ppdr/pdr" in caplog.text
    concatenated = records("jichi", _jichi(tmp_path), grading="concatenated")
    assert concatenated["4_2_L"]["diseases"] == [DR] and concatenated["1_2_L"]["dr_grade"] is None


def test_jichi_missing_image_and_wrong_grading_option(tmp_path):
    root = _jichi(tmp_path)
    (root / "documents" / "4_1_R.jpg").unlink()
    with pytest.raises(InputError, match=r"list\.csv line 4: image not found: .*4_1_R\.jpg"):
        records("jichi", root)
    with pytest.raises(InputError, match="grading must be one of one_figure, concatenated"):
        records("jichi", root, grading="both")


# -- Paraguay ---------------------------------------------------------------------------------------------------------


def test_paraguay_folds_seven_levels_into_icdr(tmp_path):
    root = tmp_path / "10_PARAGUAY"
    for folder in ("1. No DR signs", "2. Mild (or early) NPDR", "5. Very Severe NPDR", "7. Advanced PDR", "8. Other"):
        image(root / folder / "a.jpg")
    recs = records("paraguay", root)
    grades = {r["source_id"]: (r["dr_grade"], r["findings"]) for r in recs.values()}
    assert grades == {
        "no_dr_signs-a": (0, None),
        "mild_(or_early)_npdr-a": (1, None),
        "very_severe_npdr-a": (3, "very severe non-proliferative diabetic retinopathy"),
        "advanced_pdr-a": (4, "advanced proliferative diabetic retinopathy"),
    }  # an unknown folder is not listed
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="does not look like the paraguay layout"):
        records("paraguay", tmp_path / "empty")


def test_sources_check_reads_an_added_layout(tmp_path):
    report = check("sustech_sysu", _sustech(tmp_path))
    assert report["ok"] and report["images"] == 3 and report["splits"]["none"]["dr_grade"] == {"0": 1, "3": 1, "4": 1}
