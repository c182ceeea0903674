"""MuReD (Multi-Label Retinal Diseases, Rodríguez et al. 2022): 2,208 images re-drawn from ARIA, STARE and RFMiD with
20 labels (dedup links them to their originals).

Layout: `images/*.png` (the Kaggle copy nests them as `images/images/`) + `train_data.csv` / `val_data.csv`
(ID,DR,NORMAL,MH,ODC,TSLN,ARMD,DN,MYA,BRVO,ODP,CRVO,CNV,RS,ODE,LS,CSR,HTR,ASR,CRS,OTHER; 0/1 per label). IDs are the
source images' names (`aria_c_25_1`), the files `{ID}.png` (some `.tif` / `.jpg`).
Layout facts: public MuReD loaders found with `find_string` / `search`
(github.com/stevenlinlinlin/Multilabel-Fundus-Image-Classificaiton `dataloaders/multilabel_dataset.py`: column 0 is
the ID, `{ID}.png|.tif|.jpg`, `MuReD/images/images`; a public README listing the 20 labels in this order and
`train_data.csv` / `val_data.csv`); the images folder is now searched below `images/`, and the homepage is the IEEE
DataPort record (https://ieee-dataport.org/documents/multi-label-retinal-disease-mured-dataset).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo, flag, image_index, locate, matched, near, read_table, require_dir
from .vocab import DR, RFMID_CODES, from_codes

PARTS = (("train", "train_data.csv"), ("validation", "val_data.csv"))
CODES = {
    **RFMID_CODES,
    "OTHER": "other",
    "ODP": "optic disc pallor",
    "ODE": "optic disc edema",
    "ODC": "optic disc cupping",
}


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="mured",
    title="MuReD (Multi-Label Retinal Diseases)",
    expects="images/*.png + train_data.csv, val_data.csv (ID,DR,NORMAL,MH,ODC,TSLN,ARMD,...,OTHER)",
    labels=("diseases", "dr_grade", "split"),
    homepage="https://ieee-dataport.org/documents/multi-label-retinal-disease-mured-dataset",
    patient_key="none published",
    notes=(
        "codes -> disease names (RFMiD's vocabulary); NORMAL -> no disease, DR grade 0",
        "re-hosts ARIA, STARE, RFMiD",
    ),
)


def records(cfg: Config) -> Iterator[Record]:
    root = require_dir(cfg.root, "mured")
    for split, name in PARTS:
        labels = locate(root, "mured", name, required=split == "train")
        if labels is None:
            continue
        images = image_index(near(labels, root, "mured", "images"), recursive=True)
        for row, path in matched(cfg, labels, read_table(labels, ("ID", "NORMAL"), strip_names=True), images, "ID"):
            codes = [c for c in row if c not in ("ID", "NORMAL") and flag(row[c])]
            diseases = from_codes(codes, CODES)
            yield {
                "path": str(path),
                "source_id": path.stem,
                "dr_grade": None if DR in diseases else 0 if flag(row["NORMAL"]) else None,
                "diseases": diseases,
                "split": split,
            }
