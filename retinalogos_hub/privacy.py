"""Private sources (the licence table's `private`, e.g. an EHR export through `table`): what of a record may go on.

Applied to every record of a private source at curation, before anything is stored, so no later stage (captioning,
purification, publishing) ever sees more:
- ids: the published `source_id` and `patient_id` are keyed hashes (HMAC-SHA256 with a secret the user keeps in an
  environment variable). The mapping back to file names and record numbers is written to `OUT/private/ids.csv`,
  which no stage reads and nothing publishes;
- ages become coarse bands (`age_band`, top-coded), the exact age is dropped; dates are never mapped;
- free text (`findings`: reports, notes) is dropped, unless the user opts the source in (`privacy.free_text`), in
  which case it passes through presidio-analyzer's recognisers (e-mail, phone, dates, URLs, ...) plus deny-lists built
  from the source's own identifier columns, and every span found is replaced by its entity type. The card says so.
Structured labels (eye, grade, DME, glaucoma, diseases, quality) pass unchanged: they drive the captions.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, InputError

MAPPING_FILE = "private/ids.csv"  # under a curate OUT: local only


@dataclass(frozen=True)
class PrivacyConfig:
    """How private sources are protected (values: `privacy:` in recipes/curate/default.yaml)."""

    key_env: str  # environment variable holding the secret for id hashing (never stored or logged)
    age_band: int  # years per age band
    top_age: int  # ages at or above this become "<top_age>+"
    free_text: tuple[str, ...]  # private sources whose free text is kept after PII scrubbing (opt-in, per source)
    nlp_model: str  # spaCy pipeline presidio uses for names and places; "blank" = pattern recognisers only
    min_score: float  # presidio score from which a span is redacted

    def __post_init__(self):
        object.__setattr__(self, "free_text", tuple(self.free_text))
        if self.age_band < 1 or self.top_age < 1:
            raise ValueError(f"age_band ({self.age_band}) and top_age ({self.top_age}) must be >= 1")

    def key(self) -> bytes:
        """The id-hashing secret, or one line saying what to set."""
        secret = os.environ.get(self.key_env, "")
        if len(secret) < 16:
            raise ConfigError(
                f"a private source needs a secret for id hashing: set {self.key_env} to a random string of at least 16 "
                f'characters (e.g. `export {self.key_env}=$(python -c "import secrets; print(secrets.token_hex(32))")`) '
                "and keep it: the same secret gives the same ids on a re-run"
            )
        return secret.encode()

    def check(self, private_sources: list[str]) -> None:
        """Fail fast (before any heavy import) when private sources cannot be protected as configured."""
        if not private_sources:
            return
        self.key()
        opted = [s for s in self.free_text if s in private_sources]
        if opted and not _installed("presidio_analyzer"):  # found, not imported: its spaCy import takes seconds
            raise ConfigError(
                f"privacy.free_text opts in {', '.join(opted)}: its text must pass a PII scrubber, and "
                "presidio-analyzer is not installed; `pip install 'retinalogos-hub[privacy]'` or remove them "
                "from privacy.free_text (their free text is then dropped)"
            )


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def pseudonym(key: bytes, value: str) -> str:
    """A stable keyed hash of `value`: nobody without the key can link it back or recompute it from a guess."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]


def age_band(age: float | None, width: int, top: int) -> str | None:
    if age is None:
        return None
    if age >= top:
        return f"{top}+"
    low = int(age // width) * width
    return f"{low}-{min(low + width, top) - 1}"


def band_of(age: float | None, cfg: PrivacyConfig) -> str | None:
    return age_band(age, cfg.age_band, cfg.top_age)


class Protector:
    """Applies the rules above to the records of one private source (`protect`), remembering the id mapping."""

    def __init__(self, source: str, cfg: PrivacyConfig):
        self.source, self.cfg, self.key = source, cfg, cfg.key()
        self.scrubber = Scrubber(cfg) if source in cfg.free_text else None
        self.mapping: list[tuple[str, str, str]] = []  # (published id, original source_id, original patient_id)

    def protect(self, rec: dict, known: list) -> dict:
        """`rec` with hashed ids, an age band only and scrubbed (or no) free text; `known`: the record's identifier
        values (names, clinic, address columns), which are redacted from its free text."""
        original, patient = rec["source_id"], rec.get("patient_id")
        out = dict(rec)
        out["source_id"] = pseudonym(self.key, f"{self.source}/image/{original}")
        out["patient_id"] = pseudonym(self.key, f"{self.source}/patient/{patient}") if patient else None
        out["age_band"] = band_of(rec.get("age"), self.cfg)
        out["age"] = None
        text = rec.get("findings")
        known = [original, patient or "", *(str(v) for v in known if v)]
        out["findings"] = self.scrubber.scrub(text, known) if text and self.scrubber else None
        self.mapping.append((out["source_id"], original, patient or ""))
        return out


# Patterns presidio has no recogniser for without a NER model (pattern recognisers, added through its own API):
# titled names ("Dr. A Bcd"), street addresses, and record/ID numbers after a label.
_EXTRA = {
    "PERSON": r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Sr|Sra)\.?\s+(?:[A-Z][a-z'’-]+|[A-Z]\.)(?:\s+[A-Z][a-z'’-]+)*",
    "LOCATION": r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|"
    r"Way|Court|Ct|Place|Pl|Square|Sq)\b\.?(?:,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)?",
    # the number must hold a digit, so "Patient reports" is not one
    "RECORD_NUMBER": r"(?i:\b(?:mrn|record|patient|chart|id|nhs|case)\b)(?:\s*(?:no|number|#|id))?\.?\s*[:#]?\s*"
    r"(?=[A-Z-]*\d)[A-Z0-9-]{4,}",
}


class Scrubber:
    """presidio-analyzer over free text: every span it finds (at `min_score` or above) becomes `<ENTITY>`."""

    def __init__(self, cfg: PrivacyConfig):
        import spacy
        import tldextract
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        # tldextract (behind presidio's e-mail and URL recognisers) would fetch the public-suffix list from the
        # network; its bundled snapshot is enough and keeps curation offline
        tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
        model = cfg.nlp_model
        if model != "blank" and not (spacy.util.is_package(model) or os.path.isdir(model)):
            # presidio would try to download it: refuse instead (these machines are offline by design)
            raise ConfigError(
                f"privacy.nlp_model {model!r} is not an installed spaCy pipeline; install it or use blank"
            )

        class _Engine(SpacyNlpEngine):
            def load(self) -> None:
                self.nlp = {"en": spacy.blank("en") if model == "blank" else spacy.load(model)}

        engine = _Engine(models=[{"lang_code": "en", "model_name": model}])
        engine.load()
        self.analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
        for entity, regex in _EXTRA.items():
            self.analyzer.registry.add_recognizer(
                PatternRecognizer(  # case-sensitive: a capital letter is what marks a name here
                    supported_entity=entity, patterns=[Pattern(entity.lower(), regex, 0.9)], global_regex_flags=0
                )
            )
        self.recognizer = PatternRecognizer  # deny-lists are per record (its own identifiers): built in `scrub`
        self.min_score = cfg.min_score

    def scrub(self, text: str, known: list[str]) -> str:
        known = sorted({k.strip() for k in known if k and len(k.strip()) >= 3}, key=len, reverse=True)
        extra = [self.recognizer(supported_entity="IDENTIFIER", deny_list=known)] if known else []
        found = self.analyzer.analyze(
            text=text, language="en", ad_hoc_recognizers=extra, score_threshold=self.min_score
        )
        spans = sorted(((r.start, r.end, r.entity_type) for r in found), key=lambda s: (s[0], -s[1]))
        out, at = [], 0
        for start, end, kind in spans:  # overlapping spans: the first (longest at a position) wins
            if start < at:
                if end > at:
                    at = end
                continue
            out += [text[at:start], f"<{kind}>"]
            at = end
        out.append(text[at:])
        return re.sub(r"\s+", " ", "".join(out)).strip()


def read_mapping(out_dir) -> list[tuple[str, str, str]]:
    path = Path(out_dir) / MAPPING_FILE
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [(r[0], r[1], r[2]) for r in list(csv.reader(f))[1:]]


def write_mapping(out_dir, rows: list[tuple[str, str, str]]) -> None:
    """`OUT/private/ids.csv`: published id -> original file id and patient id, merged with what is there. Local only
    (see the module doc); readable by its owner alone."""
    if not rows:
        return
    path = Path(out_dir) / MAPPING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    seen = {r[0]: r for r in read_mapping(out_dir)}
    for r in rows:
        seen[r[0]] = r
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source_id", "original_source_id", "original_patient_id"])
        w.writerows(sorted(seen.values()))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def require_private_key(sources: list[str], cfg: PrivacyConfig) -> None:
    """For the CLI's fast checks: the private sources among `sources` can be protected (key set, scrubber there)."""
    from .licenses import LICENSES

    private = [s for s in sources if s in LICENSES and LICENSES[s].private]
    unknown = [s for s in cfg.free_text if s not in LICENSES]
    if unknown:
        raise InputError(f"privacy.free_text names unknown source(s) {', '.join(unknown)}")
    cfg.check(private)
