"""The one licence table: per source, its licence, what of its rows may be published (its tier), where to get it, and
the citation.

A row has four kinds of content, and a tier says which of them a source's licence lets us publish:
- `images`: the pixels;
- `labels`: the source's own annotations (eye, grades, diseases, quality, findings text);
- `captions`: what `caption` and `purify` wrote (they derive from the image and the labels);
- `metadata`: patient fields (patient_id, age, age_band, sex).
Ids, splits, sizes and the licence columns are always published: they are what `attach-images` / `attach-labels` use
to put back, from a user's own copy, what a tier withheld. `push-dataset` follows the tier field by field, refuses a
source not listed here, and the dataset card explains each source's tier.

Tiers were set from the licence text where one could be found; an unclear licence means not redistributable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LicenseError

FIELDS = ("images", "labels", "captions", "metadata")
# the columns each field covers (curated + caption + purify columns; the rest is always published)
COLUMNS = {
    "images": ("image",),
    "labels": ("eye", "dr_grade", "dme", "glaucoma", "diseases", "findings", "quality"),
    "captions": (
        "caption",
        "caption_fields",
        "caption_model",
        "caption_prompt_version",
        "caption_consistent",
        "caption_issues",
        "purify_score",
        "purify_keep",
        "purify_reason",
        "prompt",
    ),
    "metadata": ("patient_id", "age", "age_band", "sex"),
}

# Open licences (CC BY, CC BY-SA, CC0): everything, with attribution.
OPEN = frozenset(FIELDS)
# Research-use terms that forbid re-hosting the images (or no licence text for them): the labels and our captions.
DERIVED = frozenset({"labels", "captions"})
# Credentialed access (PhysioNet), competition data rules that forbid passing the data on, or no licence at all:
# nothing but the ids, so a user with access can attach their own copy.
REFERENCE = frozenset()
TIER_NAMES = {OPEN: "open", DERIVED: "derived", REFERENCE: "reference"}
# SPDX ids whose terms allow commercial use (anything else, e.g. CC-BY-NC-*, or a custom licence, does not)
COMMERCIAL = frozenset({"CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "Apache-2.0", "MIT"})


@dataclass(frozen=True)
class License:
    license: str  # SPDX id where one exists, else a short name
    publish: frozenset[str]  # the tier: which FIELDS of a row may be published
    url: str  # where a user obtains the data
    citation: str
    private: bool = False  # the owner's own records (EHR): identifiers and free text are protected at curation

    @property
    def redistributable(self) -> bool:  # may the images be re-hosted on the Hub?
        return "images" in self.publish

    @property
    def commercial(self) -> bool:
        return self.license in COMMERCIAL

    @property
    def tier(self) -> str:
        return TIER_NAMES.get(self.publish, "+".join(f for f in FIELDS if f in self.publish) or "reference")

    def withheld(self) -> tuple[str, ...]:
        """The columns of this source's rows that may not be published."""
        return tuple(c for f in FIELDS if f not in self.publish for c in COLUMNS[f])


LICENSES: dict[str, License] = {
    "eyepacs": License(
        "Kaggle competition terms",
        REFERENCE,
        "https://www.kaggle.com/c/diabetic-retinopathy-detection",
        "Cuadros J, Bresnick G. EyePACS: an adaptable telemedicine system for diabetic retinopathy screening. J Diabetes Sci Technol. 2009.",
    ),
    "aptos": License(
        "Kaggle competition terms",
        REFERENCE,
        "https://www.kaggle.com/c/aptos2019-blindness-detection",
        "APTOS 2019 Blindness Detection, Asia Pacific Tele-Ophthalmology Society, Kaggle, 2019.",
    ),
    "messidor2": License(
        "Messidor-2 licence (research use, no redistribution)",
        DERIVED,
        "https://www.adcis.net/en/third-party/messidor2/",
        "Decencière E, et al. Feedback on a publicly distributed image database: the Messidor database. Image Anal "
        "Stereol. 2014;33(3):231-234. Grades: Krause J, et al. Grader variability and the importance of reference "
        "standards for evaluating machine learning models for diabetic retinopathy. Ophthalmology. 2018;125(8):1264-1272.",
    ),
    "idrid": License(  # CC BY 4.0: the release's LICENSE.txt
        "CC-BY-4.0",
        OPEN,
        "https://idrid.grand-challenge.org/",
        "Porwal P, et al. Indian Diabetic Retinopathy Image Dataset (IDRiD): a database for diabetic retinopathy "
        "screening research. Data. 2018;3(3):25.",
    ),
    "ddr": License(
        "DDR terms (research use; redistribution not granted)",
        DERIVED,
        "https://github.com/nkicsl/DDR-dataset",
        "Li T, et al. Diagnostic assessment of deep learning algorithms for diabetic retinopathy screening. Inf Sci. "
        "2019;501:511-522.",
    ),
    "deepdrid": License(
        "CC BY-SA 4.0 claimed; no licence text in the release (treated as research use, no redistribution)",
        DERIVED,
        "https://github.com/deepdrdoc/DeepDRiD",
        "Liu R, et al. DeepDRiD: Diabetic Retinopathy-Grading and Image Quality Estimation Challenge. Patterns. "
        "2022;3(6):100512.",
    ),
    "odir": License(
        "ODIR-2019 terms (research use; redistribution not granted)",
        DERIVED,
        "https://odir2019.grand-challenge.org/dataset/",
        "Li N, et al. A benchmark of ocular disease intelligent recognition: one shot for multi-disease detection. "
        "Benchmarking, Measuring, and Optimizing (Bench 2020), LNCS 12614, 2021.",
    ),
    "rfmid": License(
        "IEEE DataPort terms (research use)",
        DERIVED,
        "https://ieee-dataport.org/open-access/retinal-fundus-multi-disease-image-dataset-rfmid",
        "Pachade S, et al. Retinal Fundus Multi-Disease Image Dataset (RFMiD): a dataset for multi-disease detection "
        "research. Data. 2021;6(2):14.",
    ),
    "rfmid2": License(
        "CC BY 4.0 for the data article; the data record's own licence not verified (treated as research use)",
        DERIVED,
        "https://doi.org/10.3390/data8020029",
        "Panchal S, et al. Retinal Fundus Multi-Disease Image Dataset (RFMiD) 2.0: a dataset of frequently and rarely "
        "identified diseases. Data. 2023;8(2):29.",
    ),
    "jsiec": License(
        "no stated licence (treated as all rights reserved)",
        REFERENCE,
        "https://www.kaggle.com/datasets/linchundan/fundusimage1000",
        "Cen LP, et al. Automatic detection of 39 fundus diseases and conditions in retinal photographs using deep "
        "neural networks. Nat Commun. 2021;12:4828.",
    ),
    "brset": License(
        "PhysioNet Credentialed Health Data License 1.5.0",
        REFERENCE,
        "https://physionet.org/content/brazilian-ophthalmological/",
        "Nakayama LF, et al. A Brazilian Multilabel Ophthalmological Dataset (BRSET). PhysioNet. 2023. "
        "doi:10.13026/xcxw-8198.",
    ),
    "mbrset": License(
        "PhysioNet Credentialed Health Data License 1.5.0",
        REFERENCE,
        "https://physionet.org/content/mbrset/",
        "Nakayama LF, et al. mBRSET, a Mobile Brazilian Retinal Dataset. PhysioNet. 2024.",
    ),
    "airogs": License(
        "CC-BY-NC-ND-4.0",
        DERIVED,
        "https://airogs.grand-challenge.org/",
        "de Vente C, et al. AIROGS: Artificial Intelligence for RObust Glaucoma Screening challenge. IEEE Trans Med "
        "Imaging. 2024;43(1):542-557.",
    ),
    "justraigs": License(
        "CC-BY-NC-SA-4.0",
        DERIVED,
        "https://justraigs.grand-challenge.org/dataset/",
        "Lemij HG, et al. Characteristics of a large, labeled data set for the training of artificial intelligence "
        "for glaucoma screening with fundus photographs. Ophthalmol Sci. 2023;3(3):100300.",
    ),
    "refuge": License(
        "REFUGE challenge terms (research use)",
        DERIVED,
        "https://refuge.grand-challenge.org/",
        "Orlando JI, et al. REFUGE Challenge: a unified framework for evaluating automated methods for glaucoma "
        "assessment from fundus photographs. Med Image Anal. 2020;59:101570.",
    ),
    "origa": License(  # the EMBC paper gives no licence for the images; no licence text was found
        "no licence text found (treated as research use, no redistribution)",
        DERIVED,
        "https://doi.org/10.1109/IEMBS.2010.5626137",
        "Zhang Z, et al. ORIGA-light: an online retinal fundus image database for glaucoma analysis and research. "
        "IEEE EMBC 2010:3065-3068.",
    ),
    "g1020": License(  # the paper states no licence for the data; no licence text was found
        "no licence text found (treated as research use, no redistribution)",
        DERIVED,
        "https://arxiv.org/abs/2006.09158",
        "Bajwa MN, et al. G1020: a benchmark retinal fundus image dataset for computer-aided glaucoma detection. "
        "IJCNN 2020.",
    ),
    "papila": License(
        "CC BY 4.0 for the data article; the figshare record's licence not verified (treated as research use)",
        DERIVED,
        "https://doi.org/10.6084/m9.figshare.14798004",
        "Kovalyk O, et al. PAPILA: dataset with fundus images and clinical data of both eyes of the same patient for "
        "glaucoma assessment. Sci Data. 2022;9:291.",
    ),
    "fives": License(
        "CC BY 4.0 for the data article; the figshare record's licence not verified (treated as research use)",
        DERIVED,
        "https://doi.org/10.6084/m9.figshare.19688169",
        "Jin K, et al. FIVES: a fundus image dataset for artificial intelligence based vessel segmentation. Sci Data. "
        "2022;9:475.",
    ),
    "hrf": License(  # the download page gives no licence text
        "no licence text found (treated as research use, no redistribution)",
        DERIVED,
        "https://www5.cs.fau.de/research/data/fundus-images/",
        "Budai A, et al. Robust vessel segmentation in fundus images. Int J Biomed Imaging. 2013;2013:154860.",
    ),
    "drive": License(
        "DRIVE terms (research use only)",
        DERIVED,
        "https://drive.grand-challenge.org/",
        "Staal J, et al. Ridge-based vessel segmentation in color images of the retina. IEEE Trans Med Imaging. "
        "2004;23(4):501-509.",
    ),
    "stare": License(
        "STARE terms (research use only)",
        DERIVED,
        "https://cecas.clemson.edu/~ahoover/stare/",
        "Hoover A, et al. Locating blood vessels in retinal images by piecewise threshold probing of a matched filter "
        "response. IEEE Trans Med Imaging. 2000;19(3):203-210.",
    ),
    "chase_db1": License(
        "CC BY 4.0 claimed; the data portal's licence text not verified (treated as research use)",
        DERIVED,
        "https://blogs.kingston.ac.uk/retinal/chasedb1/",
        "Fraz MM, et al. An ensemble classification-based approach applied to retinal blood vessel segmentation. "
        "IEEE Trans Biomed Eng. 2012;59(9):2538-2548.",
    ),
    # none of these is marked open until its licence text is checked (an unclear licence means not redistributable)
    "messidor1": License(
        "Messidor licence (research use, no redistribution)",
        DERIVED,
        "https://www.adcis.net/en/third-party/messidor/",
        "Decencière E, et al. Feedback on a publicly distributed image database: the Messidor database. Image Anal Stereol. 2014;33(3):231-234.",
    ),
    "diaretdb1": License(
        "DIARETDB1 terms (research use; redistribution not granted)",
        DERIVED,
        "https://www.it.lut.fi/project/imageret/diaretdb1/",
        "Kauppi T, et al. The DIARETDB1 diabetic retinopathy database and evaluation protocol. BMVC 2007.",
    ),
    "e_ophtha": License(
        "e-ophtha licence (research use, no redistribution)",
        DERIVED,
        "https://www.adcis.net/en/third-party/e-ophtha/",
        "Decencière E, et al. TeleOphta: machine learning and image processing methods for teleophthalmology. IRBM. 2013;34(2):196-203.",
    ),
    "aria": License(
        "ARIA terms (research use; licence unclear)",
        DERIVED,
        "https://www.damianjjfarnell.com/?page_id=276",
        "Farnell DJJ, et al. Enhancement of blood vessels in digital fundus photographs via the application of multiscale line operators. J Franklin Inst. 2008;345(7):748-765.",
    ),
    "acrima": License(
        "ACRIMA terms (figshare record; licence not verified here)",
        DERIVED,
        "https://figshare.com/s/c2d31f850af14c5b5232",
        "Diaz-Pinto A, et al. CNNs for automatic glaucoma assessment using fundus images: an extensive validation. Biomed Eng Online. 2019;18:29.",
    ),
    "lag": License(  # github.com/smilell/AG-CNN README
        "LAG terms (academic use only; re-uploading the database is not allowed)",
        REFERENCE,
        "https://github.com/smilell/AG-CNN",
        "Li L, et al. Attention based glaucoma detection: a large-scale database and CNN model. CVPR 2019.",
    ),
    "rim_one_dl": License(  # github.com/miag-ull/rim-one-dl LICENSE.txt
        "RIM-ONE DL licence (copy and redistribution prohibited)",
        REFERENCE,
        "https://github.com/miag-ull/rim-one-dl",
        "Fumero Batista FJ, et al. RIM-ONE DL: a unified retinal image database for assessing glaucoma using deep learning. Image Anal Stereol. 2020;39(3):161-167.",
    ),
    "chaksu": License(
        "Chaksu terms (figshare record; licence not verified here)",
        DERIVED,
        "https://doi.org/10.6084/m9.figshare.20123135",
        "Kumar JRH, et al. Chákṣu: a glaucoma specific fundus image database. Sci Data. 2023;10:70.",
    ),
    "glaucoma_det": License(
        "no licence stated (Kaggle upload)",
        REFERENCE,
        "https://www.kaggle.com/datasets/sshikamaru/glaucoma-detection",
        "Glaucoma detection fundus scans, Kaggle (sshikamaru).",
    ),
    "adam": License(
        "ADAM / iChallenge-AMD challenge terms (research use)",
        DERIVED,
        "https://amd.grand-challenge.org/",
        "Fang H, et al. ADAM challenge: detecting age-related macular degeneration from fundus images. IEEE Trans Med Imaging. 2022;41(10):2828-2847.",
    ),
    "palm": License(
        "PALM / iChallenge-PM challenge terms (research use)",
        DERIVED,
        "https://palm.grand-challenge.org/",
        "Fang H, et al. Open fundus photograph dataset with pathologic myopia recognition and anatomical structure annotation. Sci Data. 2024;11:99.",
    ),
    "mmac": License(
        "MMAC 2023 challenge terms (stated CC BY-NC-ND 4.0; not verified here)",
        DERIVED,
        "https://codalab.lisn.upsaclay.fr/competitions/12441",
        "Qian B, et al. A competition for the diagnosis of myopic maculopathy by artificial intelligence algorithms. JAMA Ophthalmol. 2024.",
    ),
    "mured": License(
        "MuReD terms (re-hosts ARIA, STARE and RFMiD: their licences apply)",
        DERIVED,
        "https://ieee-dataport.org/documents/multi-label-retinal-disease-mured-dataset",
        "Rodríguez MA, AlMarzouqi H, Liatsis P. Multi-label retinal disease classification using transformers. IEEE J Biomed Health Inform. 2023;27(6):2739-2750.",
    ),
    "cataract": License(
        "no licence stated (Kaggle upload)",
        REFERENCE,
        "https://www.kaggle.com/datasets/jr2ngb/cataractdataset",
        "Cataract dataset, Kaggle (jr2ngb).",
    ),
    "eye_diseases": License(
        "no licence stated (Kaggle upload re-hosting other datasets)",
        REFERENCE,
        "https://www.kaggle.com/datasets/gunavenkatdoddi/eye-diseases-classification",
        "Eye Diseases Classification, Kaggle (gunavenkatdoddi).",
    ),
    "deepeyenet": License(  # the DeepOpht repository README
        "DeepEyeNet terms (access by request under a non-disclosure agreement)",
        REFERENCE,
        "https://github.com/Jhhuangkay/DeepOpht-Medical-Report-Generation-for-Retinal-Images-via-Deep-Models-and-Visual-Explanation",
        "Huang J-H, et al. DeepOpht: medical report generation for retinal images via deep models and visual explanation. WACV 2021.",
    ),
    # added with the HEI-MED, ROC, Drishti-GS1, DRIONS-DB, SUSTech-SYSU, JICHI and Paraguay adapters (docs/sources.md)
    "hei_med": License(  # README "Conditions of use": https://github.com/lgiancaUTH/HEI-MED#conditions-of-use
        "HEI-MED conditions of use (non-commercial research only)",
        DERIVED,
        "https://github.com/lgiancaUTH/HEI-MED",
        "Giancardo L, et al. Exudate-based diabetic macular edema detection in fundus images using publicly available "
        "datasets. Med Image Anal. 2012;16(1):216-226.",
    ),
    "roc": License(  # annotations XML header: "copyrighted material owned by the University of Iowa", use per ROC rules
        "ROC terms (University of Iowa copyright; use per the challenge rules)",
        REFERENCE,
        "http://webeye.ophth.uiowa.edu/ROC/",
        "Niemeijer M, et al. Retinopathy Online Challenge: automatic detection of microaneurysms in digital color fundus "
        "photographs. IEEE Trans Med Imaging. 2010;29(1):185-195.",
    ),
    "drishti_gs": License(  # no licence text found: http://cvit.iiit.ac.in/projects/mip/drishti-gs/mip-dataset2/Home.php
        "no licence text found (treated as research use, no redistribution)",
        DERIVED,
        "http://cvit.iiit.ac.in/projects/mip/drishti-gs/mip-dataset2/Home.php",
        "Sivaswamy J, et al. A comprehensive retinal image dataset for the assessment of glaucoma from the optic nerve "
        "head analysis. JSM Biomed Imaging Data Pap. 2015;2(1):1004.",
    ),
    "drions_db": License(  # no licence text found: http://www.ia.uned.es/~ejcarmona/DRIONS-DB.html
        "no licence text found (treated as research use, no redistribution)",
        DERIVED,
        "http://www.ia.uned.es/~ejcarmona/DRIONS-DB.html",
        "Carmona EJ, et al. Identification of the optic nerve head with genetic algorithms. Artif Intell Med. "
        "2008;43(3):243-259.",
    ),
    "sustech_sysu": License(  # CC BY 4.0 stated by catalogues of https://doi.org/10.6084/m9.figshare.12570770; text not seen
        "CC-BY-4.0 as stated by secondary catalogues (licence text not verified here)",
        DERIVED,
        "https://doi.org/10.6084/m9.figshare.12570770",
        "Lin L, et al. The SUSTech-SYSU dataset for automated exudate detection and diabetic retinopathy grading. Sci "
        "Data. 2020;7:409.",
    ),
    "jichi": License(  # figshare record, licence not verified: https://doi.org/10.6084/m9.figshare.4879853
        "JICHI figshare record (licence not verified here)",
        DERIVED,
        "https://figshare.com/articles/figure/Davis_Grading_of_One_and_Concatenated_Figures/4879853/1",
        "Takahashi H, et al. Applying artificial intelligence to disease staging: deep learning for improved staging of "
        "diabetic retinopathy. PLoS One. 2017;12(6):e0179790.",
    ),
    "paraguay": License(  # Zenodo record, licence not verified: https://zenodo.org/record/4647952
        "Paraguay DR Zenodo record (licence not verified here)",
        DERIVED,
        "https://zenodo.org/record/4647952",
        "Fundus images of the Paraguay DR grading set, Zenodo record 4647952.",
    ),
    # private / EHR tables: the owner's terms apply; structured labels and captions only, unless the owner changes this
    "table": License(
        "data owner's terms",
        DERIVED,
        "",
        "Cite the data owner's publication or data-use agreement.",
        private=True,
    ),
    "synthetic": License(  # images made by `retinalogos generate`: the generating model's card states its terms
        "see the generating model's card",
        OPEN,
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


# ---------------------------------------------------------------------------------------------------------------------
# Model licences: a trained model inherits the terms of every component of its base model and of every source it
# was trained on. Base-model terms as the base repos state them (check the base model's card before relying on it).


@dataclass(frozen=True)
class Terms:
    what: str  # the component or source it covers
    license: str  # Hub licence id where one exists, else a short name
    commercial: bool  # do these terms allow commercial use?
    link: str


BASE_MODELS: dict[str, tuple[Terms, ...]] = {  # backbone -> the terms of its base weights, component by component
    "lumina-next": (
        Terms("transformer and pipeline (Lumina-Next)", "apache-2.0", True, "https://huggingface.co/Alpha-VLLM"),
        Terms("text encoder (Gemma-2B)", "gemma", True, "https://ai.google.dev/gemma/terms"),
    ),
    "lumina2": (
        Terms("transformer and pipeline (Lumina-Image-2.0)", "apache-2.0", True, "https://huggingface.co/Alpha-VLLM"),
        Terms("text encoder (Gemma-2-2B)", "gemma", True, "https://ai.google.dev/gemma/terms"),
    ),
    "sana": (  # the Sana repos carry NVIDIA's own LICENSE.txt: treated as non-commercial
        Terms("transformer, VAE and pipeline (Sana)", "other", False, "https://huggingface.co/Efficient-Large-Model"),
        Terms("text encoder (Gemma-2-2B)", "gemma", True, "https://ai.google.dev/gemma/terms"),
    ),
}


@dataclass(frozen=True)
class ModelLicense:
    license: str  # the card's `license:`: the one id all terms share, else "other"
    license_name: str | None  # with "other": a short name for the combination
    commercial: bool  # False as soon as one component or one training source forbids commercial use
    terms: tuple[Terms, ...]  # every component's and every training source's terms


def model_license(backbone: str, sources: dict[str, int] | None) -> ModelLicense:
    """The licence a model trained from `backbone`'s base weights on `sources` (name -> rows) must carry. An unknown
    backbone or training data of unknown sources is named as such, never assumed open."""
    base = BASE_MODELS.get(backbone) or (Terms(f"base model ({backbone})", "other", False, ""),)
    data = tuple(
        Terms(f"training data: {name} ({n} rows)", lic.license, lic.commercial, lic.url)
        for name, n in sorted((sources or {}).items())
        for lic in [license_for(name)]
    ) or (Terms("training data (sources not recorded)", "unknown", False, ""),)
    terms = base + data
    ids = {t.license for t in terms}
    if len(ids) == 1 and "other" not in ids and "unknown" not in ids:
        return ModelLicense(ids.pop(), None, all(t.commercial for t in terms), terms)
    commercial = all(t.commercial for t in terms)
    return ModelLicense("other", "base-model-and-training-data-terms", commercial, terms)


def training_sources(run: dict) -> dict[str, int] | None:
    """Rows per source a trained model learnt from: its own (run.json `sources`) and its base model's, down the
    chain of steps (`base_sources`)."""
    merged: dict[str, int] = {}
    for part in (run.get("sources"), run.get("base_sources")):
        for name, n in (part or {}).items():
            merged[name] = merged.get(name, 0) + n
    return merged or None


def run_license(run: dict) -> ModelLicense:
    """The licence of the model a training run (its run.json) exported."""
    return model_license(run["backbone"], training_sources(run))


def license_label(lic: ModelLicense) -> str:
    """One short line for tables: the id and whether commercial use is allowed."""
    return f"{lic.license_name or lic.license}{'' if lic.commercial else ' (non-commercial)'}"
