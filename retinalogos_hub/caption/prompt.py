"""Caption prompts: a label reference block plus instructions, rendered from versioned Jinja templates.

Templates live in `caption/prompts/<version>.j2`; the version is stored with every caption
(`caption_prompt_version`), so a changed prompt is a new file, never an edit of a published one.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from ..errors import InputError
from ..schema import CAPTION_FIELD_NAMES
from .labels import demographics

PROMPTS_DIR = Path(__file__).with_name("prompts")
JSON_KEYS = (*CAPTION_FIELD_NAMES, "caption")


def json_schema(max_words: int) -> dict:
    """JSON schema for guided decoding (OpenAI `response_format`, vLLM structured outputs). String lengths are
    bounded (generously, ~10 characters a word) so a runaway generation still closes the object."""
    limit = {k: 10 * max_words if k == "caption" else max(60, 4 * max_words) for k in JSON_KEYS}
    return {
        "type": "object",
        "properties": {k: {"type": "string", "minLength": 1, "maxLength": limit[k]} for k in JSON_KEYS},
        "required": list(JSON_KEYS),
        "additionalProperties": False,
    }


_ICDR = ("no apparent retinopathy", "mild NPDR", "moderate NPDR", "severe NPDR", "proliferative DR")


def versions() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.j2"))


@cache
def template(version: str):
    import jinja2

    path = PROMPTS_DIR / f"{version}.j2"
    if not path.is_file():
        raise InputError(f"unknown prompt version {version!r}; available: {', '.join(versions())}")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(path.read_text())


def reference_lines(row: dict) -> list[str]:
    """The row's known labels as 'Label: value' lines (unknown labels are left out, not guessed)."""
    lines = []
    if row.get("eye") in ("left", "right"):
        lines.append(f"Eye: {row['eye']} ({'OD' if row['eye'] == 'right' else 'OS'})")
    if row.get("quality"):
        lines.append(f"Image quality: {row['quality']}")
    g = row.get("dr_grade")
    if g is not None:
        lines.append(f"Diabetic retinopathy (ICDR): grade {int(g)}, {_ICDR[int(g)]}")
    if row.get("dme") is not None:
        lines.append(f"Diabetic macular oedema: {'absent' if int(row['dme']) == 0 else 'present'}")
    if row.get("glaucoma") is not None:
        lines.append(f"Glaucoma: {'yes' if row['glaucoma'] else 'no'}")
    if row.get("diseases"):
        lines.append(f"Diseases: {', '.join(row['diseases'])}")
    if row.get("findings"):
        lines.append(f"Report / findings: {row['findings']}")
    age, band, sex = demographics(row)
    who = [
        f"age {int(age)}" if age is not None else f"age {band}" if band else "",
        {"F": "female", "M": "male"}.get(sex or "", ""),
    ]
    if any(who):
        lines.append(f"Patient: {', '.join(w for w in who if w)}")
    return lines


def build_prompt(row: dict, *, version: str, min_words: int, max_words: int) -> str:
    """The user-turn text for `row` (the image goes beside it in the chat message)."""
    ref = reference_lines(row) or ["none recorded"]
    return template(version).render(ref=ref, keys=JSON_KEYS, min_words=min_words, max_words=max_words).strip()


def messages(prompt: str, image_url: str | None = None) -> list[dict]:
    """Chat messages in the transformers / OpenAI multimodal format (one image, then the text)."""
    image = {"type": "image_url", "image_url": {"url": image_url}} if image_url else {"type": "image"}
    return [{"role": "user", "content": [image, {"type": "text", "text": prompt}]}]


def parse_response(text: str) -> tuple[str, dict[str, str]]:
    """(caption, fields) from a model answer; ValueError naming what is wrong when it is not the JSON asked for."""
    body = re.sub(r"^\s*```(?:json)?|```\s*$", "", text.strip()).strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the answer")
    try:
        obj = json.loads(body[start : end + 1], strict=False)  # tolerate raw newlines/tabs inside strings
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(obj, dict):
        raise ValueError("the JSON answer is not an object")
    missing = [k for k in JSON_KEYS if not isinstance(obj.get(k), str) or not obj[k].strip()]
    if missing:
        raise ValueError(f"JSON answer lacks string key(s) {', '.join(missing)}")
    return obj["caption"].strip(), {k: obj[k].strip() for k in CAPTION_FIELD_NAMES}
