"""RFMiD 2.0: the same per-split layout as RFMiD 1.0 with the 2.0 file names and 51 codes (WNL = normal).

Layout: `RFMiD_2_{Training,Validation,Testing}_labels.csv` (ID,WNL,<codes>...) beside `Training/`, `Validation/`,
`Test/` (`*_set/` in some mirrors) holding `{ID}.jpg`. Quirks: a code column named with a trailing no-break space
(`ON\xa0`), an empty trailing column, and `id` spelled lower-case in some mirrors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import Record, SourceConfig, SourceInfo
from .rfmid import split_records

PARTS = (
    ("train", ("*[Tt]raining_[Ll]abels.csv",), ("[Tt]raining*", "[Tt]rain*")),
    ("validation", ("*[Vv]alidation_[Ll]abels.csv",), ("[Vv]alidation*", "[Vv]al*")),
    ("test", ("*[Tt]esting_[Ll]abels.csv", "*[Tt]est_[Ll]abels.csv"), ("[Tt]est*",)),
)


@dataclass
class Config(SourceConfig):
    pass


INFO = SourceInfo(
    name="rfmid2",
    title="RFMiD 2.0",
    expects="RFMiD_2_{Training,Validation,Testing}_labels.csv (ID,WNL,<codes>) + {Training,Validation,Test}[_set]/{ID}.jpg",
    labels=("diseases", "dr_grade", "split"),
    homepage="https://doi.org/10.3390/data7040051",
    patient_key="none (one image per row)",
    notes=("codes -> disease names; unknown codes keep the lower-cased code",),
)


def records(cfg: Config) -> Iterator[Record]:
    yield from split_records(cfg, "rfmid2", PARTS)
