"""The one licence table: per source, its licence, whether images may be re-hosted, where to get it, and the citation.

`push-dataset` strips image bytes from rows whose source is not redistributable, and refuses sources not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LicenseError


@dataclass(frozen=True)
class License:
    license: str  # SPDX id where one exists, else a short name
    redistributable: bool  # may the images be re-hosted on the Hub?
    url: str  # where a user obtains the images
    citation: str


LICENSES: dict[str, License] = {
    "eyepacs": License(
        "Kaggle competition terms", False, "https://www.kaggle.com/c/diabetic-retinopathy-detection",
        "Cuadros J, Bresnick G. EyePACS: an adaptable telemedicine system for diabetic retinopathy screening. J Diabetes Sci Technol. 2009.",
    ),
    "aptos": License(
        "Kaggle competition terms", False, "https://www.kaggle.com/c/aptos2019-blindness-detection",
        "APTOS 2019 Blindness Detection, Asia Pacific Tele-Ophthalmology Society, Kaggle, 2019.",
    ),
    "synthetic": License(  # images made by `retinalogos generate`: the generating model's card states its terms
        "see the generating model's card", True, "https://arxiv.org/abs/2505.12887",
        "Ning et al. RetinaLogos: Fine-Grained Synthesis of High-Resolution Retinal Images Through Captions. MICCAI 2025.",
    ),
}


def license_for(source: str) -> License:
    try:
        return LICENSES[source]
    except KeyError:
        raise LicenseError(
            f"source {source!r} has no licence entry in retinalogos_hub/sources/licenses.py; add one before publishing"
        ) from None
