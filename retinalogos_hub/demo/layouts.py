"""Miniature replicas of every source's real on-disk layout: procedural fundus images plus label files with the exact
file names, columns, separators and quirks of the real distributions. Tests and the demo point adapters at them.

`write_layout(name, root, n)` writes about `n` images (layouts built from eye pairs round up to an even count) and
returns the root to pass as `--source name=root`. Labels cycle deterministically, so small `n` (>= 8) covers every
class an adapter maps (all five DR grades, both eyes, both glaucoma classes).
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ..errors import SourceError
from .fundus import fundus_image

SIDES = ("left", "right")


def write_layout(name: str, root: Path, n: int = 8, seed: int | None = None, size: int = 96) -> Path:
    """Write the miniature `name` layout under `root`. Image i is drawn with seed `seed * 10_000 + i`; without a seed,
    each source gets its own (from its name), so a mixed run over default layouts has no accidental copies."""
    if name not in WRITERS:
        raise SourceError(f"no miniature layout for {name!r}; known: {', '.join(sorted(WRITERS))}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = seed * 10_000 if seed is not None else 1_000_000 + zlib.crc32(name.encode()) % 1_000_000 * 100
    WRITERS[name](_Writer(root, base, size), n)
    return root


class _Writer:
    """Draws the i-th image of a layout and writes label tables."""

    def __init__(self, root: Path, seed: int, size: int):
        self.root, self.seed, self.size = root, seed, size

    def image(
        self, rel: str, i: int, *, eye: str = "right", dr_grade: int = 0, glaucoma: bool = False, aspect: float = 1.0
    ) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img = fundus_image(
            self.size,
            round(self.size * aspect),
            seed=self.seed + i,
            eye=eye,
            dr_grade=dr_grade,
            glaucoma=glaucoma,
            notch=i % 3 != 2,
        )
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".ppm": "PPM"}[path.suffix.lower()]
        img.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return path.name

    def table(self, rel: str, header: list[str], rows: list[list], sep: str = ",") -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=sep)
            w.writerow(header)
            w.writerows(rows)
        return path

    def mask(self, rel: str) -> None:
        """An annotation mask (vessels, disc/cup, FOV) that adapters must not list as a fundus photo."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (self.size, self.size)).save(path)

    def sheet(self, rel: str, header: list[str], rows: list[list], above: list[list] = ()) -> Path:
        """An .xlsx sheet (openpyxl) with `above` rows before the header, or its CSV export when openpyxl is absent."""
        try:
            import openpyxl
        except ImportError:
            return self.table(str(Path(rel).with_suffix(".csv")), header, rows)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        wb = openpyxl.Workbook()
        ws = wb.active
        for r in [*above, header, *rows]:
            ws.append(r)
        wb.save(path)
        return path

    def text(self, rel: str, lines: list[str]) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
        return path


def _pairs(n: int) -> int:
    return max(1, (n + 1) // 2)


def _eyepacs(w: _Writer, n: int) -> None:
    # patients 10, 13, 16, ... (real ids are sparse); the last pair goes to test/ with the public/private Usage column
    train, test, eyeq = [], [], []
    pairs = _pairs(n)
    for p in range(pairs):
        pid = 10 + 3 * p
        for s, side in enumerate(SIDES):
            i = 2 * p + s
            grade = i % 5
            split = "test" if pairs > 1 and p == pairs - 1 else "train"
            w.image(f"{split}/{pid}_{side}.jpeg", i, eye=side, dr_grade=grade, aspect=2 / 3)
            if split == "test":
                test.append([f"{pid}_{side}", grade, "Public" if s == 0 else "Private"])
            else:
                train.append([f"{pid}_{side}", grade])
                if p < pairs - 2:  # EyeQ covers a subset of EyePACS
                    eyeq.append([len(eyeq), f"{pid}_{side}.jpeg", i % 3, grade])
    w.table("trainLabels.csv", ["image", "level"], train)
    if test:
        w.table("retinopathy_solution.csv", ["image", "level", "Usage"], test)
    w.table("Label_EyeQ_train.csv", ["", "image", "quality", "DR_grade"], eyeq)


def _aptos(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        code = f"{(0x1A2B3C4D5E6F + 7919 * i) & 0xFFFFFFFFFFFF:012x}"  # real ids are 12 hex digits
        w.image(f"train_images/{code}.png", i, dr_grade=i % 5)
        rows.append([code, i % 5])
    w.table("train.csv", ["id_code", "diagnosis"], rows)
    w.table("test.csv", ["id_code"], [])  # present in the real download, unlabelled


def _messidor2(w: _Writer, n: int) -> None:
    # both naming schemes of the release: Messidor-Original PNGs and Messidor-Extension JPGs
    names = [f"20051020_{43808 + 24 * i}_0100_PP.png" if i % 2 == 0 else f"IM00{2385 + i}.JPG" for i in range(n)]
    rows = []
    for i, name in enumerate(names):
        w.image(f"IMAGES/{name}", i, dr_grade=i % 5, eye=SIDES[i % 2])
        gradable = i != n - 1  # the last one is ungradable: no grade, no DME
        rows.append([name, i % 5 if gradable else "", i % 2 if gradable else "", int(gradable)])
    w.table("messidor_data.csv", ["image_id", "adjudicated_dr_grade", "adjudicated_dme", "adjudicated_gradable"], rows)
    w.text("messidor-2.csv", [f"{names[i]};{names[i + 1]}" for i in range(0, n - 1, 2)])


def _idrid(w: _Writer, n: int) -> None:
    grading, loc = "B. Disease Grading", "C. Localization/2. Groundtruths"
    header = ["Image name", "Retinopathy grade", "Risk of macular edema ", "", "", "", "", "", "", "", ""]
    for split, part, folder, count in (
        ("Training", "a", "a. Training Set", n - n // 4),
        ("Testing", "b", "b. Testing Set", n // 4),
    ):
        rows, od, fovea = [], [], []
        for k in range(count):
            i = k if split == "Training" else 100 + k
            name = f"IDRiD_{k + 1:03d}"
            w.image(f"{grading}/1. Original Images/{folder}/{name}.jpg", i, dr_grade=i % 5, aspect=2 / 3)
            rows.append([name, i % 5, i % 3, *[""] * 8])
            od.append([name, 60 + k, 30 + k, "", ""])
            fovea.append([name, 40 + k, 31 + k, "", ""])
        w.table(f"{grading}/2. Groundtruths/{part}. IDRiD_Disease Grading_{split} Labels.csv", header, rows)
        markup = ["Image No", "X- Coordinate", "Y - Coordinate", "", ""]
        w.table(f"{loc}/1. Optic Disc Center Location/{part}. IDRiD_OD_Center_{split} Set_Markups.csv", markup, od)
        w.table(f"{loc}/2. Fovea Center Location/{part}. IDRiD_Fovea_Center_{split} Set_Markups.csv", markup, fovea)


def _ddr(w: _Writer, n: int) -> None:
    # grades cycle 0..5 so label 5 (ungradable) appears; splits take every third image
    lines: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i in range(n):
        split = ("train", "valid", "test")[i % 3] if i >= 3 else ("train", "valid", "test")[i]
        name = f"2017{i:04d}1{i % 7}{i:03d}.jpg"
        w.image(f"DR_grading/{split}/{name}", i, dr_grade=min(i % 6, 4))
        lines[split].append(f"{name} {i % 6}")
    for split, rows in lines.items():
        w.text(f"DR_grading/{split}.txt", rows)


def _deepdrid(w: _Writer, n: int) -> None:
    patients = max(2, n // 4)
    for split, ps in (("training", range(patients - 1)), ("validation", range(patients - 1, patients))):
        base, rows = f"regular_fundus_images/regular-fundus-{split}", []
        for p in ps:
            pid = 100 + p
            for k, (side, shot) in enumerate((("l", 1), ("l", 2), ("r", 1), ("r", 2))):
                i, image_id = 4 * p + k, f"{pid}_{side}{shot}"
                grade = (p + (side == "r")) % 5
                w.image(
                    f"{base}/Images/{pid}/{image_id}.jpg", i, eye="left" if side == "l" else "right", dr_grade=grade
                )
                rows.append(
                    [
                        pid,
                        image_id,
                        f"wrong\\path\\{image_id}.jpg",
                        grade if side == "l" else "",
                        grade if side == "r" else "",
                        (p + 1) % 5,
                        1 if k < 3 else 0,
                        0,
                        8,
                        10,
                    ]
                )
        w.table(
            f"{base}/regular-fundus-{split}.csv",
            [
                "patient_id",
                "image_id",
                "image_path",
                "left_eye_DR_Level",
                "right_eye_DR_Level",
                "patient_DR_Level",
                "Overall quality",
                "Artifact",
                "Clarity",
                "Field definition",
            ],
            rows,
        )


ODIR_KEYWORDS = (
    ("normal fundus", "moderate non proliferative retinopathy，hypertensive retinopathy"),
    ("glaucoma", "normal fundus"),
    ("cataract", "lens dust，normal fundus"),
    ("", "severe nonproliferative retinopathy"),  # an eye with no keywords: the patient flags are the fallback
    ("pathological myopia", "dry age-related macular degeneration"),
    ("suspected glaucoma", "normal fundus"),
)


def _odir(w: _Writer, n: int) -> None:
    flags = ("N", "D", "G", "C", "A", "H", "M", "O")
    rows = []
    for p in range(_pairs(n)):
        pid = p + 1
        left, right = ODIR_KEYWORDS[p % len(ODIR_KEYWORDS)]
        for s, side in enumerate(SIDES):
            w.image(
                f"ODIR-5K/Training Images/{pid}_{side}.jpg",
                2 * p + s,
                eye=side,
                glaucoma="glaucoma" in (left, right)[s],
            )
        text = f"{left} {right}"
        on = {
            "D": "retinopathy" in text,
            "G": "glaucoma" in text,
            "C": "cataract" in text,
            "A": "degeneration" in text,
            "H": "hypertensive" in text,
            "M": "myopia" in text,
        }
        on["N"] = not any(on.values())
        rows.append(
            [
                pid,
                50 + p,
                ("Female", "Male")[p % 2],
                f"{pid}_left.jpg",
                f"{pid}_right.jpg",
                left,
                right,
                *[int(on.get(f, False)) for f in flags],
            ]
        )
    w.sheet(
        "ODIR-5K/data.xlsx",
        [
            "ID",
            "Patient Age",
            "Patient Sex",
            "Left-Fundus",
            "Right-Fundus",
            "Left-Diagnostic Keywords",
            "Right-Diagnostic Keywords",
            *flags,
        ],
        rows,
    )
    (w.root / "ODIR-5K/Testing Images").mkdir(parents=True, exist_ok=True)  # present in the release, unlabelled


RFMID1_CODES = (
    "DR",
    "ARMD",
    "MH",
    "DN",
    "MYA",
    "BRVO",
    "TSLN",
    "ERM",
    "LS",
    "MS",
    "CSR",
    "ODC",
    "CRVO",
    "TV",
    "AH",
    "ODP",
    "ODE",
    "ST",
    "AION",
    "PT",
    "RT",
    "RS",
    "CRS",
    "EDN",
    "RPEC",
    "MHL",
    "RP",
    "CWS",
    "CB",
    "ODPM",
    "PRH",
    "MNF",
    "HR",
    "CRAO",
    "TD",
    "CME",
    "PTCR",
    "CF",
    "VH",
    "MCA",
    "VS",
    "BRAO",
    "PLQ",
    "HPED",
    "CL",
)


def _rfmid(w: _Writer, n: int) -> None:
    parts = (
        ("Training_Set/Training_Set", "RFMiD_Training_Labels.csv", "Training"),
        ("Evaluation_Set/Evaluation_Set", "RFMiD_Validation_Labels.csv", "Validation"),
        ("Test_Set/Test_Set", "RFMiD_Testing_Labels.csv", "Test"),
    )
    _rfmid_parts(w, n, parts, ["ID", "Disease_Risk", *RFMID1_CODES], ".png")


def _rfmid2(w: _Writer, n: int) -> None:
    parts = (
        (".", "RFMiD_2_Training_labels.csv", "Training"),
        (".", "RFMiD_2_Validation_labels.csv", "Validation"),
        (".", "RFMiD_2_Testing_labels.csv", "Test"),
    )
    # as released: one code column named with a trailing no-break space, and an empty trailing column
    codes = ("DR", "ARMD", "BRVO", "CRVO", "MYA", "CNV", "RD", "TSLN", "ON\xa0", "HTN", "MH", "CSC", "")
    _rfmid_parts(w, n, parts, ["ID", "WNL", *codes], ".jpg")


def _rfmid_parts(w: _Writer, n: int, parts, header: list[str], suffix: str) -> None:
    # IDs restart at 1 in every split (as released); image i has code i (mod #codes), every 4th is normal
    per = [n - 2 * (n // 4), n // 4, n // 4]
    i = 0
    for (folder, labels, images), count in zip(parts, per):
        rows = []
        for k in range(count):
            codes = [0 if name else "" for name in header[2:]]
            if i % 4:  # image 1 has DR, 2 the next code, ...; every 4th is normal
                codes[(i - 1) % (len(codes) - (header[-1] == ""))] = 1
            w.image(f"{folder}/{images}/{k + 1}{suffix}", i, dr_grade=2 if codes[0] else 0)
            normal = int(not any(codes))
            rows.append([k + 1, normal if header[1] == "WNL" else 1 - normal, *codes])
            i += 1
        w.table(f"{folder}/{labels}", header, rows)


JSIEC_CLASSES = (
    "0.0.Normal",
    "0.3.DR1",
    "1.0.DR2",
    "1.1.DR3",
    "10.0.Possible glaucoma",
    "9.Pathological myopia",
    "29.1.Blur fundus with suspected PDR",
    "17.Myelinated nerve fiber",
    "2.0.BRVO",
    "0.1.Tessellated fundus",
)


def _jsiec(w: _Writer, n: int) -> None:
    for i in range(n):
        folder = JSIEC_CLASSES[i % len(JSIEC_CLASSES)]
        grade = {"0.3.DR1": 1, "1.0.DR2": 2, "1.1.DR3": 3}.get(folder, 0)
        w.image(f"{folder}/{i:04d}abcd-8d87-11e8-9daf-6045cb817f5b..JPG", i, dr_grade=grade)


BRSET_COLUMNS = (
    "image_id",
    "patient_id",
    "camera",
    "patient_age",
    "comorbidities",
    "diabetes_time_y",
    "insuline",
    "patient_sex",
    "exam_eye",
    "diabetes",
    "nationality",
    "optic_disc",
    "vessels",
    "macula",
    "DR_SDRG",
    "DR_ICDR",
    "focus",
    "iluminaton",
    "image_field",
    "artifacts",
    "diabetic_retinopathy",
    "macular_edema",
    "scar",
    "nevus",
    "amd",
    "vascular_occlusion",
    "hypertensive_retinopathy",
    "drusens",
    "hemorrhage",
    "retinal_detachment",
    "myopic_fundus",
    "increased_cup_disc",
    "other",
    "quality",
)


def _brset(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        p, eye = i // 2, (1, 2)[i % 2]  # exam_eye 1 = right, 2 = left
        grade = i % 5
        w.image(f"fundus_photos/img{i + 1:05d}.jpg", i, eye=("right", "left")[i % 2], dr_grade=grade)
        findings = {
            "diabetic_retinopathy": int(grade > 0),
            "macular_edema": int(grade >= 3),
            "amd": int(i == 1),
            "drusens": int(i == 1),
            "increased_cup_disc": int(i == 2),
        }
        row = {
            "image_id": f"img{i + 1:05d}",
            "patient_id": p + 1,
            "camera": "Canon CR",
            "patient_age": 48 + p,
            "patient_sex": (1, 2)[p % 2],
            "exam_eye": eye,
            "diabetes": "yes",
            "DR_SDRG": grade,
            "DR_ICDR": grade,
            "quality": "Adequate" if i != n - 1 else "Inadequate",
            # BRSET's own grading: 1 normal/adequate, 2 abnormal/inadequate
            "optic_disc": 2 if i == 2 else 1,
            "vessels": 1,
            "macula": 2 if grade >= 3 else 1,
            "focus": 2 if i == n - 1 else 1,
            "iluminaton": 1,
            "image_field": 1,
            "artifacts": 2 if i == n - 1 else 1,
            **findings,
        }
        rows.append([row.get(c, 0 if c in findings or c in ("scar", "nevus", "other") else "") for c in BRSET_COLUMNS])
    w.table("labels.csv", list(BRSET_COLUMNS), rows)


def _mbrset(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        p, k = i // 2 + 1, i % 2 + 1
        w.image(f"images/{p}.{k}.jpg", i, dr_grade=i % 5)
        rows.append(
            [
                f"{p}.{k}.jpg",
                p,
                55 + p,
                ("M", "F")[p % 2],
                10,
                "yes",
                ("right", "left")[i % 2],
                i % 5,
                ("no", "yes")[i % 5 >= 3],
                ("yes", "no")[i == n - 1],
            ]
        )
    w.table(
        "labels_mbrset.csv",
        [
            "file",
            "patient",
            "age",
            "sex",
            "dm_time",
            "insulin",
            "laterality",
            "final_icdr",
            "final_edema",
            "final_quality",
        ],
        rows,
    )


def _airogs(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        cid = f"TRAIN{i:06d}"
        w.image(f"{i % 2}/{cid}.jpg", i, glaucoma=i % 3 == 0)
        rows.append([cid, "RG" if i % 3 == 0 else "NRG"])
    w.table("train_labels.csv", ["challenge_id", "class"], rows)


def _justraigs(w: _Writer, n: int) -> None:
    codes = ("ANRS", "ANRI", "RNFLDS", "RNFLDI", "BCLVS", "BCLVI", "NVT", "DH", "LD", "LC")
    header = [
        "Eye ID",
        "Final Label",
        "Fellow Eye ID",
        "Age",
        "Label G1",
        "Label G2",
        "Label G3",
        *[f"G{g} {c}" for g in (1, 2, 3) for c in codes],
    ]
    rows = []
    for i in range(n):
        eid, fellow = f"TRAIN{i:06d}", f"TRAIN{i ^ 1:06d}"  # eyes 0/1, 2/3, ... are one patient
        label = ("RG", "NRG", "NRG", "RG")[i % 4]
        w.image(f"{i % 2}/{eid}.JPG", i, glaucoma=label == "RG")
        g3 = "RG" if i % 4 == 3 else ""  # graders 1 and 2 disagreed: grader 3 decided, with its own features
        marks = {"G1": (1, 0, 0, 0, 0, 0, 0, 0, 0, 1), "G2": (1,) + (0,) * 9, "G3": (0, 0, 1, 0, 0, 0, 0, 1, 0, 0)}
        feats = [(marks[f"G{g}"][k] if label == "RG" and (g < 3 or g3) else "") for g in (1, 2, 3) for k in range(10)]
        rows.append([eid, label, fellow if (i ^ 1) < n else "", 60 + i // 2, label, "NRG" if g3 else label, g3, *feats])
    w.table("JustRAIGS_Train_labels.csv", header, rows, sep=";")


def _refuge(w: _Writer, n: int) -> None:
    # REFUGE2 layout: train names g*/n*, val/test labels in index.json; masks beside the images
    import json

    n_train, i = n - 2 * (n // 4), 0
    for split, count, prefix in (("train", n_train, None), ("val", n // 4, "V"), ("test", n // 4, "T")):
        index = {}
        for k in range(count):
            glaucoma = k % 2 == 0
            name = (f"{'g' if glaucoma else 'n'}{k + 1:04d}" if prefix is None else f"{prefix}{k + 1:04d}") + ".jpg"
            w.image(f"{split}/Images/{name}", i, glaucoma=glaucoma)
            i += 1
            w.mask(f"{split}/Masks/{Path(name).stem}.png")
            index[str(k)] = {"ImgName": name, "Fovea_X": 40.5 + k, "Fovea_Y": 48.0, "Size_X": w.size, "Size_Y": w.size}
            if prefix is not None:
                index[str(k)]["Label"] = int(glaucoma)
        (w.root / split / "index.json").write_text(json.dumps(index))


def _origa(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        w.image(f"Images/{i + 1:03d}.jpg", i, glaucoma=i % 3 == 0, eye=("right", "left")[i % 2])
        rows.append([("OD", "OS")[i % 2], f"{i + 1:03d}.jpg", 0.4 + 0.05 * (i % 5), ("A", "B")[i % 2], int(i % 3 == 0)])
    w.table("OrigaList.csv", ["Eye", "Filename", "ExpCDR", "Set", "Glaucoma"], rows)


def _g1020(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        w.image(f"Images/image_{i}.jpg", i, glaucoma=i % 3 == 0)
        w.image(f"Images_Square/image_{i}.jpg", i, glaucoma=i % 3 == 0)  # derived copy, not listed
        rows.append([f"image_{i}.jpg", int(i % 3 == 0)])
    w.table("G1020.csv", ["imageID", "binaryLabels"], rows)


def _papila(w: _Writer, n: int) -> None:
    # as released: a group row and an "ID" row above the column names, whose first (ID) cell is empty
    above = [["", "", "", "", "Refractive error", "", "", "", "IOP", "", "", "", ""], ["ID"]]
    header = [
        "",
        "Age",
        "Gender",
        "Diagnosis",
        "dioptre_1",
        "dioptre_2",
        "astigmatism",
        "Phakic/Pseudophakic",
        "Pneumatic",
        "Perkins",
        "Pachymetry",
        "Axial_Length",
        "VF_MD",
    ]
    patients = [2 + 3 * p for p in range(_pairs(n))]
    for code, side in (("od", "right"), ("os", "left")):
        rows = []
        for p, pid in enumerate(patients):
            diagnosis = (p + (side == "left")) % 3  # 0 healthy, 1 glaucoma, 2 suspect
            w.image(
                f"FundusImages/RET{pid:03d}{code.upper()}.jpg",
                2 * p + (side == "left"),
                eye=side,
                glaucoma=diagnosis == 1,
            )
            rows.append([f"#{pid:03d}", 40 + p, p % 2, diagnosis, -1.5, -0.5, 0.25, 0, 14, 15, 540, 23.5, -1.2])
        w.sheet(f"ClinicalData/patient_data_{code}.xlsx", header, rows, above=above)


def _fives(w: _Writer, n: int) -> None:
    for i in range(n):
        split, k = ("train", i + 1) if i < n - n // 4 else ("test", i + 1)
        code = "ADGN"[i % 4]
        w.image(f"{split}/Original/{k}_{code}.png", i, glaucoma=code == "G", dr_grade=2 if code == "D" else 0)
        w.mask(f"{split}/Ground truth/{k}_{code}.png")


def _hrf(w: _Writer, n: int) -> None:
    for i in range(n):
        kind = ("dr", "g", "h")[i % 3]
        w.image(
            f"images/{i // 3 + 1:02d}_{kind}.{'JPG' if kind == 'dr' else 'jpg'}", i, dr_grade=2 if kind == "dr" else 0
        )
        w.mask(f"manual1/{i // 3 + 1:02d}_{kind}.tif")
        w.mask(f"mask/{i // 3 + 1:02d}_{kind}_mask.tif")


def _drive(w: _Writer, n: int) -> None:
    for i in range(n):
        split, k = ("training", 21 + i) if i < n - n // 4 else ("test", 1 + i)
        w.image(f"{split}/images/{k:02d}_{split}.tif", i)
        w.mask(f"{split}/mask/{k:02d}_{split}_mask.gif")
        if split == "training":
            w.mask(f"{split}/1st_manual/{k:02d}_manual1.gif")


STARE_LINES = (
    ("7", "Background Diabetic Retinopathy"),
    ("0", "Normal"),
    ("8 13", "Proliferative Diabetic Retinopathy AND Choroidal Neovascularization"),
    ("10", "Hypertensive Retinopathy"),
    ("5", "Central Retinal Vein Occlusion"),
    ("14", "Others: drusen"),
)


def _stare(w: _Writer, n: int) -> None:
    lines = []
    for i in range(n):
        codes, text = STARE_LINES[i % len(STARE_LINES)]
        w.image(f"all-images/im{i + 1:04d}.ppm", i, dr_grade=4 if "8" in codes.split() else 0)
        lines.append(f"im{i + 1:04d}\t{codes}\t{text}")
    w.text("all-mg-codes.txt", lines)


def _chase_db1(w: _Writer, n: int) -> None:
    for p in range(_pairs(n)):
        for s, side in enumerate("LR"):
            w.image(f"Image_{p + 1:02d}{side}.jpg", 2 * p + s, eye=SIDES[s])
            w.mask(f"Image_{p + 1:02d}{side}_1stHO.png")


def _table(w: _Writer, n: int) -> None:
    rows = []
    for i in range(n):
        w.image(f"photos/2024/exam{i:03d}.jpg", i, dr_grade=i % 5, eye=SIDES[i % 2])
        rows.append(
            [
                f"2024/exam{i:03d}.jpg",
                f"MRN{i // 2:04d}",
                ("OS", "OD")[i % 2],
                f"R{i % 5}",
                int(i % 4 == 1),
                ("glaucoma suspect; drusen" if i % 4 == 1 else "no abnormality"),
                61 + i // 2,
                ("train", "test")[i == n - 1],
            ]
        )
    w.table("exams.tsv", ["file", "mrn", "laterality", "icdr", "amd", "diagnosis", "age_years", "set"], rows, sep="\t")
    w.text(
        "mapping.yaml",
        [
            "labels: exams.tsv",
            'sep: "\\t"',
            "image: file",
            "images: photos",
            "columns: {patient_id: mrn, eye: laterality, dr_grade: icdr, age: age_years, findings: diagnosis, split: set}",
            "values: {eye: {OD: right, OS: left}, dr_grade: {R0: 0, R1: 1, R2: 2, R3: 3, R4: 4}, diseases: {amd: amd}}",
            "diseases: [amd]",
            "diseases_text: diagnosis",
        ],
    )


# -- issue 15 sources -------------------------------------------------------------------------------------------------


def _messidor1(w: _Writer, n: int) -> None:
    for b, base in enumerate(("Base11", "Base12")):
        rows = []
        for k in range((n + 1) // 2 if b == 0 else n // 2):
            i = b * ((n + 1) // 2) + k
            name = f"20051019_{38557 + i:05d}_0100_PP.tif"
            w.image(f"{base}/{name}", i, dr_grade=i % 4)
            rows.append([name, "Service Ophtalmologie Lariboisière", i % 4, i % 3])
        # the release's .xls, saved as CSV by the user (the adapter reads .xlsx or .csv)
        w.table(
            f"{base}/Annotation_{base}.csv",
            ["Image name", "Ophthalmologic department", "Retinopathy grade", "Risk of macular edema "],
            rows,
        )


def _diaretdb1(w: _Writer, n: int) -> None:
    """As `diaretdb1_v_1_1.zip` unpacks: `resources/images/ddb1_{fundusimages,groundtruth}/` and the official split
    lists under `resources/{traindatasets,testdatasets}/` (the zip's own folder is the root here)."""
    res = "resources"
    train, test = [], []
    for i in range(n):
        name = f"image{i + 1:03d}.png"
        w.image(f"{res}/images/ddb1_fundusimages/{name}", i, dr_grade=2 if i % 4 else 0)
        for k, kind in enumerate(("hardexudates", "softexudates", "hemorrhages", "redsmalldots")):
            level = 255 if (i % 4 and (i + k) % 2) else 64 if i % 4 else 0  # 64: one expert of four, below 0.75
            path = w.root / f"{res}/images/ddb1_groundtruth/{kind}/{name}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("L", (w.size, w.size), level).save(path)
        (train if i < n // 2 else test).append(name)
    w.mask(f"{res}/images/ddb1_fundusmask/fmask.bmp")
    w.text(f"{res}/traindatasets/trainset.txt", train)
    w.text(f"{res}/testdatasets/testset.txt", test)


def _e_ophtha(w: _Writer, n: int) -> None:
    """e-ophtha EX and MA side by side; MA images carry the release's `DS...` names with an upper-case `.JPG`."""
    for i in range(n):
        part = ("EX", "MA")[i % 2]
        kind = part if i % 4 < 2 else "healthy"
        exam = f"E{1000 + i // 2:07d}"
        name = f"C{2000 + i:07d}.jpg" if part == "EX" else f"DS{2000 + i:06d}.JPG"
        w.image(f"e_optha_{part}/{kind}/{exam}/{name}", i, dr_grade=2 if kind != "healthy" else 0)
        if kind != "healthy":
            w.mask(f"e_optha_{part}/Annotation_{part}/{exam}/{Path(name).stem}_{part}.png")


def _aria(w: _Writer, n: int) -> None:
    """The unpacked zips: `aria_{a,c,d}_markups/` (the diabetic one nested a level deeper, as some unzippers leave it),
    vessel markups `*_BDP.tif`, disc/fovea markups `*_dfd.tif`, and one `(NNNN)`-prefixed image name."""
    for i in range(n):
        group = "acd"[i % 3]
        folder = f"aria_{group}_markups" + (f"/aria_{group}_markups" if group == "d" else "")
        stem = f"aria_{group}_{i + 10}_{i % 2 + 1}" if i != n - 1 else f"({i + 1:04d})aria_{group}_{i + 10}"
        w.image(f"{folder}/{stem}.tif", i, dr_grade=2 if group == "d" else 0)
        w.mask(f"aria_{group}_markup_vessel/{stem}_BDP.tif")
        if group != "a":
            w.mask(f"aria_{group}_markupdiscfovea/{stem}_dfd.tif")


def _acrima(w: _Writer, n: int) -> None:
    for i in range(n):
        g = i % 2 == 0
        w.image(f"Database/Images/Im{i + 1:03d}{'_g' if g else ''}_ACRIMA.png", i, glaucoma=g)


def _lag(w: _Writer, n: int) -> None:
    """`LAG_database_part_1/` as released: two classes, each with `image/`, `attention_map/` and `label/NNNN.txt`."""
    for i in range(n):
        cls = ("suspicious_glaucoma", "non_glaucoma")[i % 2]
        base = f"LAG_database_part_1/{cls}"
        w.image(f"{base}/image/{i + 1}.jpg", i, glaucoma=cls == "suspicious_glaucoma")
        w.mask(f"{base}/attention_map/{i + 1}.jpg")
        w.text(f"{base}/label/{i + 1:04d}.txt", ["1" if cls == "suspicious_glaucoma" else "0"])


def _rim_one_dl(w: _Writer, n: int) -> None:
    """Both partitions of the images zip, and the reference-segmentations zip unpacked beside it (same class folders,
    disc and cup masks as PNG: they must not be listed)."""
    for i in range(n):
        split, cls = ("training_set", "test_set")[i % 4 // 3], ("glaucoma", "normal")[i % 2]
        name = f"r{i % 3 + 1}_Im{i + 100:03d}.png"
        for part in ("partitioned_by_hospital", "partitioned_randomly"):  # the same images, partitioned twice
            w.image(f"RIM-ONE_DL_images/{part}/{split}/{cls}/{name}", i, glaucoma=cls == "glaucoma")
        for structure in ("disc", "cup"):
            w.mask(f"RIM-ONE_DL_reference_segmentations/{cls}/{Path(name).stem}_{structure}.png")
    w.text(
        "RIM-ONE_DL_images/LICENSE.txt", ["Copy, redistribution, and any unauthorized commercial use are prohibited."]
    )


def _chaksu(w: _Writer, n: int) -> None:
    """Train/ and Test/ as the figshare zips unpack: per-camera extensions, the comparison sheets with their `Images`
    names (`Image1.jpg-Image1-1.jpg`, extension not the file's), the test set's `Glaucoma Decision` column and
    `Remedio` spelling, an expert's `GLAUCOMA  SUSUPECT`, and a measurement sheet in `Majority/` (not a decision)."""
    ext = {"Bosch": "JPG", "Forus": "png", "Remidio": "JPG"}
    experts = [f"Expert.{k}" for k in range(1, 6)]
    for split, ks in (("Train", range(n - n // 4)), ("Test", range(n - n // 4, n))):
        by_camera: dict[str, list] = {}
        for i in ks:
            camera = ("Bosch", "Forus", "Remidio")[i % 3]
            stem = f"Image{i + 1}"
            w.image(f"{split}/1.0_Original_Fundus_Images/{camera}/{stem}.{ext[camera]}", i, glaucoma=i % 2 == 0)
            vote = "GLAUCOMA SUSPECT" if i % 2 == 0 else "NORMAL"
            votes = [vote, vote, "GLAUCOMA  SUSUPECT" if vote != "NORMAL" else vote, vote, vote]
            by_camera.setdefault(camera, []).append([f"{stem}.jpg-{stem}-1.jpg", *votes, vote])
        for camera, rows in by_camera.items():
            test_style = split == "Test" and camera != "Bosch"
            spelled = "Remedio" if split == "Test" and camera == "Remidio" else camera
            w.table(
                f"{split}/6.0_Glaucoma_Decision/Glaucoma_Decision_Comparison_{spelled}_majority.csv",
                ["Images", *experts, "Glaucoma Decision" if test_style else "Majority Decision"],
                rows,
            )
            w.table(
                f"{split}/6.0_Glaucoma_Decision/Majority/{camera}.csv",
                ["Images", "Vertical CDR"],
                [[r[0], 0.5] for r in rows],
            )


def _glaucoma_det(w: _Writer, n: int) -> None:
    for i in range(n):
        split, cls = ("Train", "Validation")[i % 4 // 3], ("Glaucoma_Positive", "Glaucoma_Negative")[i % 2]
        w.image(f"Fundus_Train_Val_Data/Fundus_Scanes_Sorted/{split}/{cls}/{i + 1:03d}.jpg", i, glaucoma=i % 2 == 0)


def _adam(w: _Writer, n: int) -> None:
    for i in range(n):
        amd = i % 2 == 0
        w.image(f"Training400/{'AMD' if amd else 'Non-AMD'}/{'A' if amd else 'N'}{i + 1:04d}.jpg", i)
    w.mask("Training400-Fovea/Disc_Masks/A0001.bmp")


def _palm(w: _Writer, n: int) -> None:
    """The training zip's inner `PALM-Training400.zip` unpacks one level deeper; validation images (`V...`) are not
    in the name pattern and are not listed."""
    for i in range(n):
        w.image(f"PALM-Training400/PALM-Training400/{'HNP'[i % 3]}{i + 1:04d}.jpg", i)
    w.image("PALM-Validation400/V0001.jpg", n)
    w.mask("PALM-Training400-Annotation-D&F/Disc_Masks/H0001.bmp")


def _mmac(w: _Writer, n: int) -> None:
    """Task 1 as the challenge release unpacks: numbered folders and label files, with the patient columns."""
    task = "1. Classification of Myopic Maculopathy"
    header = ["image", "myopic_maculopathy_grade", "age", "sex", "height", "weight", "data_center"]
    for number, word, ks in (("1", "Training", range(n - n // 4)), ("2", "Validation", range(n - n // 4, n))):
        rows = []
        for i in ks:
            name = f"mmac_task_1_{'train' if word == 'Training' else 'val'}_{i + 1:04d}.png"
            w.image(f"{task}/1. Images/{number}. {word} Set/{name}", i)
            rows.append([name, i % 5, 40 + i if i % 4 else "", ("Male", "Female")[i % 2], 170, 65, i % 3])
        w.table(
            f"{task}/2. Groundtruths/{number}. MMAC2023_Myopic_Maculopathy_Classification_{word}_Labels.csv",
            header,
            rows,
        )


MURED_CODES = (
    "DR",
    "NORMAL",
    "MH",
    "ODC",
    "TSLN",
    "ARMD",
    "DN",
    "MYA",
    "BRVO",
    "ODP",
    "CRVO",
    "CNV",
    "RS",
    "ODE",
    "LS",
    "CSR",
    "HTR",
    "ASR",
    "CRS",
    "OTHER",
)


def _mured(w: _Writer, n: int) -> None:
    for name, ks in (("train_data.csv", range(n - n // 4)), ("val_data.csv", range(n - n // 4, n))):
        rows = []
        for i in ks:
            w.image(f"images/images/{i + 1}.png", i, dr_grade=2 if i % 3 == 0 else 0)  # the Kaggle copy nests them
            flags = [0] * len(MURED_CODES)
            flags[(0, 1, 5)[i % 3]] = 1  # DR, NORMAL, ARMD in turn
            if i % 3 == 0 and i % 2:
                flags[MURED_CODES.index("ODC")] = 1
            rows.append([i + 1, *flags])
        w.table(name, ["ID", *MURED_CODES], rows)


def _cataract(w: _Writer, n: int) -> None:
    for i in range(n):
        cls = ("1_normal", "2_cataract", "2_glaucoma", "3_retina_disease")[i % 4]
        w.image(f"dataset/{cls}/NL_{i + 1:03d}.png", i, glaucoma=cls == "2_glaucoma")


def _eye_diseases(w: _Writer, n: int) -> None:
    for i in range(n):
        cls = ("cataract", "diabetic_retinopathy", "glaucoma", "normal")[i % 4]
        w.image(f"dataset/{cls}/{i + 100}_left.jpg", i, dr_grade=2 if cls == "diabetic_retinopathy" else 0)


def _deepeyenet(w: _Writer, n: int) -> None:
    """The JSON files beside `eyenet0420/{train_set,val_set,test_set}/`; names repeat across the sets (the JSON path
    tells them apart)."""
    import json

    keywords = (
        "non-proliferative diabetic retinopathy, macular edema",
        "suspected glaucoma",
        "retinitis pigmentosa",
        "normal fundus",
    )
    third = max(1, n // 4)
    for split, name, ks in (
        ("train_set", "DeepEyeNet_train.json", range(n - 2 * third)),
        ("val_set", "DeepEyeNet_valid.json", range(n - 2 * third, n - third)),
        ("test_set", "DeepEyeNet_test.json", range(n - third, n)),
    ):
        entries = []
        for k, i in enumerate(ks):
            rel = f"eyenet0420/{split}/{k + 1}.jpg"
            w.image(rel, i, dr_grade=2 if i % 4 == 0 else 0)
            entries.append(
                {
                    rel: {
                        "keywords": keywords[i % 4],
                        "clinical-description": f"{40 + i}-year-old patient, follow-up visit",
                    }
                }
            )
        (w.root / name).write_text(json.dumps(entries))


WRITERS: dict[str, Callable[[_Writer, int], None]] = {
    "eyepacs": _eyepacs,
    "aptos": _aptos,
    "messidor2": _messidor2,
    "idrid": _idrid,
    "ddr": _ddr,
    "deepdrid": _deepdrid,
    "odir": _odir,
    "rfmid": _rfmid,
    "rfmid2": _rfmid2,
    "jsiec": _jsiec,
    "brset": _brset,
    "mbrset": _mbrset,
    "airogs": _airogs,
    "justraigs": _justraigs,
    "refuge": _refuge,
    "origa": _origa,
    "g1020": _g1020,
    "papila": _papila,
    "fives": _fives,
    "hrf": _hrf,
    "drive": _drive,
    "stare": _stare,
    "chase_db1": _chase_db1,
    "messidor1": _messidor1,
    "diaretdb1": _diaretdb1,
    "e_ophtha": _e_ophtha,
    "aria": _aria,
    "acrima": _acrima,
    "lag": _lag,
    "rim_one_dl": _rim_one_dl,
    "chaksu": _chaksu,
    "glaucoma_det": _glaucoma_det,
    "adam": _adam,
    "palm": _palm,
    "mmac": _mmac,
    "mured": _mured,
    "cataract": _cataract,
    "eye_diseases": _eye_diseases,
    "deepeyenet": _deepeyenet,
    "table": _table,
}


# ---------------------------------------------------------------------------------------------------------------------
# Variants: the same datasets as other releases and re-packs lay them out (the adapters accept each of these).


def write_variant(variant: str, root: Path, n: int = 8, seed: int | None = None, size: int = 96) -> Path:
    """Write the miniature `variant` layout (see `VARIANTS`) under `root`; returns the root to pass to its adapter
    (`VARIANTS[variant][0]`)."""
    if variant not in VARIANTS:
        raise SourceError(f"no miniature variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    root = Path(root)
    VARIANTS[variant][1](root, n, seed, size)
    return root


def _rfmid_official(root: Path, n: int, seed, size) -> None:
    """RFMiD 1.0 as the official release unpacks: `1. Original Images/{a. Training,b. Validation,c. Testing} Set/`
    and `2. Groundtruths/{a,b,c}. RFMiD_{Training,Validation,Testing}_Labels.csv`."""
    write_layout("rfmid", root / ".kaggle", n, seed, size)
    for (folder, labels, images), letter, name in zip(
        (
            ("Training_Set/Training_Set", "RFMiD_Training_Labels.csv", "Training"),
            ("Evaluation_Set/Evaluation_Set", "RFMiD_Validation_Labels.csv", "Validation"),
            ("Test_Set/Test_Set", "RFMiD_Testing_Labels.csv", "Test"),
        ),
        "abc",
        ("Training", "Validation", "Testing"),
    ):
        src = root / ".kaggle" / folder
        (root / "1. Original Images").mkdir(parents=True, exist_ok=True)
        (root / "2. Groundtruths").mkdir(parents=True, exist_ok=True)
        (src / images).rename(root / "1. Original Images" / f"{letter}. {name} Set")
        (src / labels).rename(root / "2. Groundtruths" / f"{letter}. {labels}")
    _rmtree(root / ".kaggle")


def _messidor2_kaggle(root: Path, n: int, seed, size) -> None:
    """The Kaggle re-release of Messidor-2: the same `messidor_data.csv` name with APTOS-style `id_code,diagnosis`
    (plus the DME and gradability columns under their own names), images in `messidor-2/preprocess/`."""
    write_layout("messidor2", root, n, seed, size)
    labels = root / "messidor_data.csv"
    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_code", "diagnosis", "adjudicated_dme", "adjudicated_gradable"])
        for r in rows:
            name = r["image_id"] if len(rows) % 2 else Path(r["image_id"]).stem  # copies spell it both ways
            w.writerow([name, r["adjudicated_dr_grade"], r["adjudicated_dme"], r["adjudicated_gradable"]])


def _eyepacs_flat(root: Path, n: int, seed, size) -> None:
    """EyePACS re-packed with every image beside `trainLabels.csv` (no `train/` or `test/` folder, one label file)."""
    write_layout("eyepacs", root, n, seed, size)
    for part in ("train", "test"):
        for f in sorted((root / part).iterdir()):
            f.rename(root / f.name)
        (root / part).rmdir()
    solution = (root / "retinopathy_solution.csv").read_text().splitlines()[1:]
    with (root / "trainLabels.csv").open("a") as fh:
        fh.writelines(",".join(line.split(",")[:2]) + "\n" for line in solution)
    (root / "retinopathy_solution.csv").unlink()


def _glaucoma_bundle(root: Path, n: int, seed, size) -> None:
    """The common Kaggle glaucoma bundle: G1020/, ORIGA/ and REFUGE/ side by side, each with its own `Images/`-style
    folder, so an adapter that looked for the first image folder below the root would take another dataset's."""
    write_layout("g1020", root / "G1020", n, seed, size)
    write_layout("origa", root / "ORIGA", n, seed, size)
    write_layout("refuge", root / "REFUGE", n, seed, size)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# variant -> (the adapter that reads it, its writer)
VARIANTS: dict[str, tuple[str, Callable[[Path, int, int | None, int], None]]] = {
    "rfmid-official": ("rfmid", _rfmid_official),
    "messidor2-kaggle": ("messidor2", _messidor2_kaggle),
    "eyepacs-flat": ("eyepacs", _eyepacs_flat),
    "glaucoma-bundle": ("origa", _glaucoma_bundle),  # also g1020 and refuge
}
