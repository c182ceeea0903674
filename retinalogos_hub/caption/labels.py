"""A row's labels as the captioner and the guard read them: unknown stays None, diseases lower-cased.

Demographics (age, age band, sex) enter a caption only when the row's source tier publishes patient metadata: a
caption is published under the captions field, and must not carry what the metadata field withholds."""

from __future__ import annotations

from ..licenses import LICENSES


def demographics(row: dict) -> tuple[float | None, str | None, str | None]:
    """(age, age band, sex "F"/"M") as a caption may state them; all None when the source's tier withholds them."""
    lic = LICENSES.get(row.get("source") or "")
    if lic is not None and "metadata" not in lic.publish:
        return None, None, None
    return row.get("age"), row.get("age_band"), row.get("sex") if row.get("sex") in ("F", "M") else None


class Labels:
    def __init__(self, row: dict):
        g = row.get("dr_grade")
        self.grade = None if g is None else int(g)
        d = row.get("dme")
        self.dme = None if d is None else int(d)
        self.glaucoma = row.get("glaucoma")
        self.eye = row.get("eye") if row.get("eye") in ("left", "right") else None
        self.diseases = [str(x).lower() for x in (row.get("diseases") or [])]
        self.findings = (row.get("findings") or "").strip() or None
        age, self.age_band, sex = demographics(row)
        self.age = age
        self.sex = {"F": "woman", "M": "man"}.get(sex or "")
        self.quality = row.get("quality")

    def has(self, *keys: str) -> bool:
        return any(k in d for d in self.diseases for k in keys)
