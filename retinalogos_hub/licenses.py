"""The one licence table: per source, its licence, whether images may be re-hosted, where to get it, and the citation.

`push-dataset` strips image bytes from rows whose source is not redistributable, and refuses sources not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LicenseError


@dataclass(frozen=True)
class License:
    license: str  # SPDX id where one exists, else a short name
    redistributable: bool  # may the images be re-hosted on the Hub?
    url: str  # where a user obtains the images
    citation: str
    private: bool = False  # an owner's own records (EHR): patient fields are never published


LICENSES: dict[str, License] = {
    "eyepacs": License(
        "Kaggle competition terms",
        False,
        "https://www.kaggle.com/c/diabetic-retinopathy-detection",
        "Cuadros J, Bresnick G. EyePACS: an adaptable telemedicine system for diabetic retinopathy screening. J Diabetes Sci Technol. 2009.",
    ),
    "aptos": License(
        "Kaggle competition terms",
        False,
        "https://www.kaggle.com/c/aptos2019-blindness-detection",
        "APTOS 2019 Blindness Detection, Asia Pacific Tele-Ophthalmology Society, Kaggle, 2019.",
    ),
    "messidor2": License(
        "Messidor-2 licence (research use, no redistribution)",
        False,
        "https://www.adcis.net/en/third-party/messidor2/",
        "Decencière E, et al. Feedback on a publicly distributed image database: the Messidor database. Image Anal "
        "Stereol. 2014;33(3):231-234. Grades: Krause J, et al. Grader variability and the importance of reference "
        "standards for evaluating machine learning models for diabetic retinopathy. Ophthalmology. 2018;125(8):1264-1272.",
    ),
    "idrid": License(
        "CC-BY-4.0",
        True,
        "https://idrid.grand-challenge.org/",
        "Porwal P, et al. Indian Diabetic Retinopathy Image Dataset (IDRiD): a database for diabetic retinopathy "
        "screening research. Data. 2018;3(3):25.",
    ),
    "ddr": License(
        "DDR terms (research use; redistribution not granted)",
        False,
        "https://github.com/nkicsl/DDR-dataset",
        "Li T, et al. Diagnostic assessment of deep learning algorithms for diabetic retinopathy screening. Inf Sci. "
        "2019;501:511-522.",
    ),
    "deepdrid": License(
        "CC-BY-SA-4.0",
        True,
        "https://github.com/deepdrdoc/DeepDRiD",
        "Liu R, et al. DeepDRiD: Diabetic Retinopathy-Grading and Image Quality Estimation Challenge. Patterns. "
        "2022;3(6):100512.",
    ),
    "odir": License(
        "ODIR-2019 terms (research use; redistribution not granted)",
        False,
        "https://odir2019.grand-challenge.org/dataset/",
        "Li N, et al. A benchmark of ocular disease intelligent recognition: one shot for multi-disease detection. "
        "Benchmarking, Measuring, and Optimizing (Bench 2020), LNCS 12614, 2021.",
    ),
    "rfmid": License(
        "IEEE DataPort terms (research use)",
        False,
        "https://ieee-dataport.org/open-access/retinal-fundus-multi-disease-image-dataset-rfmid",
        "Pachade S, et al. Retinal Fundus Multi-Disease Image Dataset (RFMiD): a dataset for multi-disease detection "
        "research. Data. 2021;6(2):14.",
    ),
    "rfmid2": License(
        "CC-BY-4.0",
        True,
        "https://doi.org/10.3390/data8020029",
        "Panchal S, et al. Retinal Fundus Multi-Disease Image Dataset (RFMiD) 2.0: a dataset of frequently and rarely "
        "identified diseases. Data. 2023;8(2):29.",
    ),
    "jsiec": License(
        "no stated licence (treated as all rights reserved)",
        False,
        "https://www.kaggle.com/datasets/linchundan/fundusimage1000",
        "Cen LP, et al. Automatic detection of 39 fundus diseases and conditions in retinal photographs using deep "
        "neural networks. Nat Commun. 2021;12:4828.",
    ),
    "brset": License(
        "PhysioNet Credentialed Health Data License 1.5.0",
        False,
        "https://physionet.org/content/brazilian-ophthalmological/",
        "Nakayama LF, et al. A Brazilian Multilabel Ophthalmological Dataset (BRSET). PhysioNet. 2023. "
        "doi:10.13026/xcxw-8198.",
    ),
    "mbrset": License(
        "PhysioNet Credentialed Health Data License 1.5.0",
        False,
        "https://physionet.org/content/mbrset/",
        "Nakayama LF, et al. mBRSET, a Mobile Brazilian Retinal Dataset. PhysioNet. 2024.",
    ),
    "airogs": License(
        "CC-BY-NC-ND-4.0",
        False,
        "https://airogs.grand-challenge.org/",
        "de Vente C, et al. AIROGS: Artificial Intelligence for RObust Glaucoma Screening challenge. IEEE Trans Med "
        "Imaging. 2024;43(1):542-557.",
    ),
    "justraigs": License(
        "CC-BY-NC-SA-4.0",
        False,
        "https://justraigs.grand-challenge.org/dataset/",
        "Lemij HG, et al. Characteristics of a large, labeled data set for the training of artificial intelligence "
        "for glaucoma screening with fundus photographs. Ophthalmol Sci. 2023;3(3):100300.",
    ),
    "refuge": License(
        "REFUGE challenge terms (research use)",
        False,
        "https://refuge.grand-challenge.org/",
        "Orlando JI, et al. REFUGE Challenge: a unified framework for evaluating automated methods for glaucoma "
        "assessment from fundus photographs. Med Image Anal. 2020;59:101570.",
    ),
    "origa": License(
        "CC-BY-4.0",
        True,
        "https://doi.org/10.1109/IEMBS.2010.5626137",
        "Zhang Z, et al. ORIGA-light: an online retinal fundus image database for glaucoma analysis and research. "
        "IEEE EMBC 2010:3065-3068.",
    ),
    "g1020": License(
        "CC-BY-4.0",
        True,
        "https://arxiv.org/abs/2006.09158",
        "Bajwa MN, et al. G1020: a benchmark retinal fundus image dataset for computer-aided glaucoma detection. "
        "IJCNN 2020.",
    ),
    "papila": License(
        "CC-BY-4.0",
        True,
        "https://doi.org/10.6084/m9.figshare.14798004",
        "Kovalyk O, et al. PAPILA: dataset with fundus images and clinical data of both eyes of the same patient for "
        "glaucoma assessment. Sci Data. 2022;9:291.",
    ),
    "fives": License(
        "CC-BY-4.0",
        True,
        "https://doi.org/10.6084/m9.figshare.19688169",
        "Jin K, et al. FIVES: a fundus image dataset for artificial intelligence based vessel segmentation. Sci Data. "
        "2022;9:475.",
    ),
    "hrf": License(
        "CC-BY-4.0",
        True,
        "https://www5.cs.fau.de/research/data/fundus-images/",
        "Budai A, et al. Robust vessel segmentation in fundus images. Int J Biomed Imaging. 2013;2013:154860.",
    ),
    "drive": License(
        "DRIVE terms (research use only)",
        False,
        "https://drive.grand-challenge.org/",
        "Staal J, et al. Ridge-based vessel segmentation in color images of the retina. IEEE Trans Med Imaging. "
        "2004;23(4):501-509.",
    ),
    "stare": License(
        "STARE terms (research use only)",
        False,
        "https://cecas.clemson.edu/~ahoover/stare/",
        "Hoover A, et al. Locating blood vessels in retinal images by piecewise threshold probing of a matched filter "
        "response. IEEE Trans Med Imaging. 2000;19(3):203-210.",
    ),
    "chase_db1": License(
        "CC-BY-4.0",
        True,
        "https://blogs.kingston.ac.uk/retinal/chasedb1/",
        "Fraz MM, et al. An ensemble classification-based approach applied to retinal blood vessel segmentation. "
        "IEEE Trans Biomed Eng. 2012;59(9):2538-2548.",
    ),
    # private / EHR tables: the owner's terms apply; never re-hosted unless the owner changes this entry
    "table": License(
        "data owner's terms", False, "", "Cite the data owner's publication or data-use agreement.", private=True
    ),
    "synthetic": License(  # images made by `retinalogos generate`: the generating model's card states its terms
        "see the generating model's card",
        True,
        "https://arxiv.org/abs/2505.12887",
        "Ning et al. RetinaLogos: Fine-Grained Synthesis of High-Resolution Retinal Images Through Captions. MICCAI 2025.",
    ),
}


def license_for(source: str) -> License:
    try:
        return LICENSES[source]
    except KeyError:
        raise LicenseError(
            f"source {source!r} has no licence entry in retinalogos_hub/licenses.py; add one before publishing"
        ) from None
