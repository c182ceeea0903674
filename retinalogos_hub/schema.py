"""The one row schema every stage reads and writes (as HF `Features`).

Stages add columns; they never rename or drop these. `id` is `{source}/{source_id}` and is the join key everywhere.
"""

from __future__ import annotations

from datasets import Features, Image, List, Value

from .errors import InputError

# Curated rows (output of `curate`).
CURATED = Features(
    {
        "image": Image(),
        "id": Value("string"),
        "source": Value("string"),
        "source_id": Value("string"),
        "patient_id": Value("string"),  # nullable; the key for leakage-free splits
        "eye": Value("string"),  # "left" | "right" | None
        "dr_grade": Value("int8"),  # ICDR 0-4 or None (ungradable / unknown)
        "dme": Value("int8"),  # 0 none, 1 present (2 = clinically significant where graded) or None
        "glaucoma": Value("bool"),  # None when unknown
        "diseases": List(Value("string")),  # normalised names, e.g. "diabetic retinopathy", "amd", "myopia"
        "findings": Value("string"),  # source free text: ODIR keywords, reports; None when absent
        "age": Value("float32"),
        "age_band": Value("string"),  # e.g. "60-69", top-coded "90+"; private sources keep only this
        "sex": Value("string"),  # "F" | "M" | None
        "quality": Value("string"),  # the source's own label: "good" | "usable" | "reject" | None
        "quality_score": Value("float32"),  # our fast score in [0, 1] (FOV fraction, illumination, focus)
        "width": Value("int32"),
        "height": Value("int32"),
        "split": Value("string"),  # "train" | "validation" | "test"
        "official_split": Value("string"),  # the split the source published the image in; None when it has none
        "license": Value("string"),
        "redistributable": Value("bool"),
    }
)

CAPTION_FIELD_NAMES = ("optic_disc", "vessels", "macula", "nerve_fibre_layer", "lesions", "impression")

# Columns `caption` adds.
CAPTION_COLUMNS = Features(
    {
        "caption": Value("string"),
        "caption_fields": {name: Value("string") for name in CAPTION_FIELD_NAMES},
        "caption_model": Value("string"),
        "caption_prompt_version": Value("string"),
        "caption_consistent": Value("bool"),
        "caption_issues": List(Value("string")),
    }
)
CAPTIONED = Features({**CURATED, **CAPTION_COLUMNS})

# Columns `purify` adds.
PURIFY_COLUMNS = Features(
    {
        "purify_score": Value("float32"),
        "purify_keep": Value("bool"),
        "purify_reason": Value("string"),
    }
)
PURIFIED = Features({**CAPTIONED, **PURIFY_COLUMNS})

# Columns `generate` adds to a synthetic set (same schema otherwise, so push-dataset can publish it).
SYNTHETIC_COLUMNS = Features(
    {
        "synthetic": Value("bool"),
        "seed": Value("int64"),
        "model": Value("string"),
        "prompt": Value("string"),
    }
)


def make_id(source: str, source_id: str) -> str:
    return f"{source}/{source_id}"


def require_columns(column_names, required, where: str) -> None:
    """Raise one InputError naming `where` and every missing column."""
    missing = [c for c in required if c not in column_names]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(column_names)}")
