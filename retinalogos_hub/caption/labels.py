"""A row's labels as the captioner and the guard read them: unknown stays None, diseases lower-cased."""

from __future__ import annotations


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
        self.age = row.get("age")
        self.sex = {"F": "woman", "M": "man"}.get(row.get("sex") or "")
        self.quality = row.get("quality")

    def has(self, *keys: str) -> bool:
        return any(k in d for d in self.diseases for k in keys)
