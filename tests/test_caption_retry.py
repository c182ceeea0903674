"""Failed captions end to end: a run with failed rows, `--retry-failed`, then purify and push-dataset leave the rows
still without a caption out with their reason and a count (or refuse them by flag)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from datasets import load_from_disk
from test_caption import make_curated

from retinalogos_hub.caption import caption_dataset, shipped
from retinalogos_hub.caption.backends import TemplateBackend
from retinalogos_hub.errors import InputError
from retinalogos_hub.stage import read_provenance

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = shipped("template")
REAL_ANSWER = TemplateBackend.answer


def failing(monkeypatch, ids: set[str]):
    """The template backend, except that the requests for `ids` fail (as a refused HTTP request would)."""
    real = REAL_ANSWER
    calls: list[list[str]] = []

    def answer(self, items, attempt=0):
        calls.append([i.row["id"] for i in items])
        good = real(self, items, attempt)
        return [RuntimeError("HTTP 500 from the server") if i.row["id"] in ids else g for i, g in zip(items, good)]

    monkeypatch.setattr(TemplateBackend, "answer", answer)
    return calls


def test_failed_rows_carry_a_reason_and_retry_failed_redoes_only_them(tmp_path, monkeypatch):
    curated = make_curated(tmp_path / "curated", n=8)
    out = tmp_path / "captioned"
    failing(monkeypatch, {"demo/0002", "demo/0005"})
    r = caption_dataset(curated, out, TEMPLATE, progress=False)
    assert r.merged and r.failed == 2 and read_provenance(out)["counts"]["failed"] == 2
    ds = load_from_disk(str(out))
    for row in ds:
        if row["id"] in ("demo/0002", "demo/0005"):
            assert row["caption"] == "" and row["caption_issues"][0].startswith("request failed: HTTP 500")
            assert not row["caption_consistent"]
        else:
            assert row["caption"]
    # a plain rerun is a no-op; --retry-failed captions exactly the failed rows (one still fails)
    calls = failing(monkeypatch, {"demo/0005"})
    assert caption_dataset(curated, out, TEMPLATE, progress=False).failed == 2 and calls == []
    r = caption_dataset(curated, out, TEMPLATE, progress=False, retry_failed=True)
    assert calls == [["demo/0002", "demo/0005"]] and r.merged and r.failed == 1
    ds = load_from_disk(str(out))
    assert len(ds) == 8 and sum(not c for c in ds["caption"]) == 1
    assert ds[5]["caption_issues"][0].startswith("request failed") and ds[2]["caption"]

    # purify drops the row still without a caption, with its reason; --refuse-uncaptioned stops instead
    from retinalogos_hub.purify import purify

    recipe = ROOT / "recipes" / "purify" / "tiny.yaml"
    res = purify(out, recipe, tmp_path / "purified")
    purified = load_from_disk(str(res.out))
    assert res.uncaptioned == 1 and purified[5]["purify_reason"].startswith("uncaptioned: request failed")
    with pytest.raises(InputError, match="without a caption"):
        purify(out, recipe, tmp_path / "p2", refuse_uncaptioned=True)

    # push-dataset leaves it out with a count (the card says so), or refuses it by flag
    from retinalogos_hub import licenses
    from retinalogos_hub.hub.card import render_dataset_card
    from retinalogos_hub.hub.export import export_dataset

    monkeypatch.setitem(licenses.LICENSES, "demo", licenses.LICENSES["idrid"])  # a re-hostable licence for "demo"
    export = export_dataset(out, tmp_path / "hub")
    assert export.rows == 7 and export.uncaptioned == 1
    card = str(render_dataset_card(export, "me/fundus", gated=False))
    assert "1 row(s) were left out" in card and "come from the labels only" in card
    with pytest.raises(InputError, match="1 row\\(s\\) without a caption"):
        export_dataset(out, tmp_path / "hub2", refuse_uncaptioned=True)


def test_cli_retry_failed_flag_and_template_note(tmp_path, monkeypatch, capsys):
    from retinalogos_hub.cli import main

    curated = make_curated(tmp_path / "curated", n=4)
    failing(monkeypatch, {"demo/0001"})
    argv = ["retinalogos", "caption", "run", str(curated), "--out", str(tmp_path / "c")]
    argv += ["--recipe", str(ROOT / "recipes" / "caption" / "template.yaml")]
    for extra in ([], ["--retry-failed"]):
        monkeypatch.setattr(sys, "argv", argv + extra)
        with pytest.raises(SystemExit) as code:
            main()
        assert code.value.code in (0, None)
    out = capsys.readouterr().out
    assert "failed: 1 (retry with --retry-failed)" in out and "from the labels only" in out
