"""The licence table: tiers per field, and the licence a trained model inherits from its base model and its data."""

from __future__ import annotations

import pytest

from retinalogos_hub import licenses
from retinalogos_hub.errors import LicenseError
from retinalogos_hub.licenses import BASE_MODELS, FIELDS, LICENSES, model_license


def test_every_entry_has_a_known_tier_and_unclear_licences_are_never_open():
    for name, lic in LICENSES.items():
        assert lic.publish <= set(FIELDS) and lic.tier in ("open", "derived", "reference"), name
        if lic.redistributable and name != "synthetic":  # open means a licence text that allows it
            assert lic.license in licenses.COMMERCIAL or lic.license.startswith("CC-BY"), name
        if any(w in lic.license.lower() for w in ("unclear", "not verified", "no licence", "no stated", "claimed")):
            assert not lic.redistributable, name
    for name in ("brset", "mbrset"):  # PhysioNet credentialed access: ids only
        assert LICENSES[name].tier == "reference" and LICENSES[name].withheld()
    for name in ("origa", "hrf", "g1020"):
        assert not LICENSES[name].redistributable
    assert LICENSES["table"].private and "metadata" not in LICENSES["table"].publish


def test_a_model_inherits_the_base_models_terms_and_every_sources():
    lic = model_license("lumina-next", {"idrid": 40, "airogs": 2})
    assert lic.license == "other" and not lic.commercial  # AIROGS is CC BY-NC-ND
    what = [t.what for t in lic.terms]
    assert any("Gemma" in w for w in what) and any("airogs (2 rows)" in w for w in what)
    assert {t.license for t in lic.terms} >= {"gemma", "CC-BY-NC-ND-4.0", "CC-BY-4.0"}
    # open data on an open base: still Gemma's terms beside Apache's, so never a bare apache-2.0
    assert model_license("lumina2", {"idrid": 1}).license == "other"
    assert model_license("lumina2", {"idrid": 1}).commercial
    assert not model_license("sana", {"idrid": 1}).commercial  # NVIDIA's terms on the Sana weights
    unknown = model_license("lumina-next", None)
    assert not unknown.commercial and any("not recorded" in t.what for t in unknown.terms)
    with pytest.raises(LicenseError, match="nosuch"):
        model_license("lumina-next", {"nosuch": 3})
    from retinalogos_hub.train.backbones import REGISTRY

    assert set(BASE_MODELS) == set(REGISTRY)  # a new backbone brings its base terms
