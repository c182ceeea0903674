"""purify: tiny CLIP + tiny LM judge + caption guard; every row kept with a verdict; resumable; recipe thresholds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from retinalogos_hub import __version__
from retinalogos_hub import purify as purify_mod
from retinalogos_hub.errors import ConfigError, InputError
from retinalogos_hub.purify import parse_verdict, purify
from retinalogos_hub.schema import CAPTION_FIELD_NAMES, CAPTIONED, PURIFIED
from retinalogos_hub.stage import folder_fingerprint, read_provenance

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "purify" / "tiny.yaml"


def captioned(tmp_path: Path, fundus, n: int = 10) -> Path:
    rows = []
    for i in range(n):
        grade = i % 5
        # every third caption contradicts its label (claims a normal fundus for a graded eye, or DR for grade 0)
        wrong = i % 3 == 0
        caption = (
            (
                "A normal fundus without any lesions."
                if grade
                else "Proliferative diabetic retinopathy with new vessels."
            )
            if wrong
            else f"Colour fundus photograph of the right eye. Vessels are of normal calibre. ICDR grade {grade}."
        )
        rows.append(
            {
                **dict.fromkeys(CAPTIONED),  # columns other stages add stay None
                "image": fundus(40, seed=i, dr_grade=grade),
                "id": f"{'eyepacs aptos'.split()[i % 2]}/{i}",
                "source": "eyepacs aptos".split()[i % 2],
                "source_id": str(i),
                "patient_id": None,
                "eye": "right",
                "dr_grade": grade,
                "dme": None,
                "glaucoma": None,
                "diseases": [],
                "findings": None,
                "age": None,
                "age_band": None,
                "sex": None,
                "quality": None,
                "quality_score": 0.8,
                "width": 40,
                "height": 40,
                "split": "train",
                "official_split": None,  # schema.CURATED column (issue 15)
                "license": "x",
                "redistributable": False,
                "caption": caption,
                "caption_fields": {k: "" for k in CAPTION_FIELD_NAMES},
                "caption_model": "template",
                "caption_prompt_version": "v1",
                "caption_consistent": not wrong,
                "caption_issues": [],
            }
        )
    out = tmp_path / "captioned"
    Dataset.from_list(rows, features=CAPTIONED).save_to_disk(str(out))
    return out


def test_every_row_kept_with_a_reason_for_each_drop(tmp_path, fundus):
    src = captioned(tmp_path, fundus)
    res = purify(src, RECIPE, tmp_path / "purified")
    ds = load_from_disk(str(res.out))
    assert len(ds) == 10 and all(ds.features[k] == v for k, v in PURIFIED.items())
    assert res.kept + res.dropped == 10 and res.kept == sum(ds["purify_keep"])
    for row in ds:
        assert -1.0 <= row["purify_score"] <= 1.0
        if row["purify_keep"]:
            assert row["purify_reason"] is None
        else:
            assert row["purify_reason"] and row["purify_reason"].startswith(("clip", "guard", "judge"))
    # the guard catches exactly the contradicting captions (the tiny recipe lets CLIP and judge noise through)
    dropped = {r["id"] for r in ds if not r["purify_keep"]}
    assert dropped == {r["id"] for r in ds if not r["caption_consistent"]}
    assert all("guard:" in r["purify_reason"] for r in ds if not r["purify_keep"])
    # summary: kept/dropped by source and reason, adding up to all rows
    assert sum(n for *_, n in res.summary) == 10
    assert {(s, k, r) for s, k, r, _ in res.summary} >= {("eyepacs", False, "guard"), ("aptos", True, "-")}
    assert not (tmp_path / "purified" / ".work").exists()  # the work is gone once the result is in place
    # provenance: stage, version, the resolved recipe, the input's fingerprint and counts that add up
    prov = read_provenance(res.out)
    assert prov["stage"] == "purify" and prov["version"] == __version__
    assert prov["config"]["clip"]["model"] == "tiny:clip" and prov["config"]["chunk_rows"] == 16
    assert prov["inputs"]["captioned"]["fingerprint"] == folder_fingerprint(src)
    assert prov["counts"]["rows"] == 10 and prov["counts"]["kept"] == res.kept
    assert sum(prov["counts"]["by_reason"].values()) == 10 and prov["started"] <= prov["finished"]


def test_recipe_thresholds_decide(tmp_path, fundus):
    src = captioned(tmp_path, fundus, n=4)
    res = purify(
        src, RECIPE, tmp_path / "strict", ["keep.min_clip_score=1.0", "keep.guard=false", "keep.judge_margin=100"]
    )
    ds = load_from_disk(str(res.out))
    assert res.kept == 0
    for r in ds:
        assert r["purify_reason"].startswith("clip: alignment") and "judge prefers DROP" in r["purify_reason"]
    res = purify(src, RECIPE, tmp_path / "lax", ["keep.guard=false", "judge.backend=none"])
    assert res.kept == 4
    with pytest.raises(ConfigError, match="keep.min_clip"):
        purify(src, RECIPE, tmp_path / "bad", ["keep.min_clip=0.3"])


def test_killed_run_resumes_without_redoing_chunks(tmp_path, fundus, monkeypatch):
    src = captioned(tmp_path, fundus, n=8)
    calls = []
    real = purify_mod._chunk

    def dying(ds, start, end, *args):
        calls.append(start)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while scoring the second chunk
        return real(ds, start, end, *args)

    monkeypatch.setattr(purify_mod, "_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        purify(src, RECIPE, tmp_path / "out", ["chunk_rows=3"])
    assert calls == [0, 3] and not (tmp_path / "out" / "dataset_info.json").exists()  # no half result
    assert len(list((tmp_path / "out" / ".work" / "purify").glob("*/chunk-*.json"))) == 1
    calls.clear()
    monkeypatch.setattr(
        purify_mod, "_chunk", lambda ds, start, end, *a: calls.append(start) or real(ds, start, end, *a)
    )
    res = purify(src, RECIPE, tmp_path / "out", ["chunk_rows=3"])
    assert calls == [3, 6]  # chunk 0 was committed before the kill
    assert len(load_from_disk(str(res.out))) == 8


def test_bad_input(tmp_path, fundus):
    with pytest.raises(InputError, match="not a stage directory"):
        purify(tmp_path / "nope", RECIPE, tmp_path / "out")
    src = captioned(tmp_path, fundus, n=2)
    with pytest.raises(InputError, match="is the input directory"):
        purify(src, RECIPE, src)
    with pytest.raises(ConfigError, match="judge.base_url"):
        purify(src, RECIPE, tmp_path / "out", ["judge.backend=openai"])


@pytest.mark.parametrize(
    "text,expected",
    [
        ("KEEP", (True, "")),
        (
            "DROP: the caption reports haemorrhages but the grade is 0",
            (False, "the caption reports haemorrhages but the grade is 0"),
        ),
        ('{"keep": false, "reason": "wrong eye"}', (False, "wrong eye")),
        ('Sure. {"verdict": "KEEP"}', (True, "")),
        ("maybe", (None, "maybe")),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_cli_prints_summary(tmp_path, fundus, monkeypatch, capsys):
    from retinalogos_hub.cli import main

    src = captioned(tmp_path, fundus, n=4)
    monkeypatch.setattr(
        sys, "argv", ["retinalogos", "purify", str(src), "--recipe", str(RECIPE), "--out", str(tmp_path / "p")]
    )
    with pytest.raises(SystemExit) as code:
        main()
    out = capsys.readouterr().out
    assert code.value.code in (0, None) and "Purified" in out and "guard" in out and "kept" in out


def test_openai_compatible_judge(tmp_path, fundus, monkeypatch):
    """The judge as a served model: a minimal OpenAI-compatible /chat/completions on loopback answers in text/JSON."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Chat(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body["model"]))
            prompt = body["messages"][-1]["content"]
            answer = (
                '{"keep": false, "reason": "caption denies the graded retinopathy"}'
                if "normal fundus" in prompt
                else "KEEP"
            )
            data = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                    ],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = HTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    try:
        src = captioned(tmp_path, fundus, n=6)
        res = purify(
            src,
            RECIPE,
            tmp_path / "out",
            [
                "judge.backend=openai",
                f"judge.base_url=http://127.0.0.1:{server.server_port}/v1",
                "judge.model=served-judge",
                "judge.api_key_env=JUDGE_KEY",
                "keep.guard=false",
            ],
        )
    finally:
        server.shutdown()
    ds = load_from_disk(str(res.out))
    assert seen and all(
        p.endswith("chat/completions") and auth == "Bearer sk-test" and m == "served-judge" for p, auth, m in seen
    )
    for r in ds:
        if r["caption"].startswith("A normal fundus"):
            assert not r["purify_keep"] and r["purify_reason"] == "judge: caption denies the graded retinopathy"
        else:
            assert r["purify_keep"]


def test_openai_judge_refusing_the_key_never_prints_it(tmp_path, fundus, monkeypatch, refusing_server):
    from retinalogos_hub.errors import HubError

    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    with pytest.raises(HubError, match="refused the API key") as err:
        purify(
            captioned(tmp_path, fundus, n=2),
            RECIPE,
            tmp_path / "out",
            ["judge.backend=openai", f"judge.base_url={refusing_server}", "judge.api_key_env=JUDGE_KEY"],
        )
    assert "sk-secret-123" not in str(err.value) and "JUDGE_KEY" in err.value.hint


def test_one_purify_recipe_serves_every_backbone_and_names_its_model():
    import yaml

    from retinalogos_hub.config import load_config
    from retinalogos_hub.purify import PurifyConfig

    pipelines = sorted(ROOT.glob("recipes/**/pipeline.yaml"))
    targets = {(p.parent / yaml.safe_load(p.read_text())["steps"]["step2"]).resolve() for p in pipelines}
    assert targets == {(ROOT / "recipes/purify/default.yaml").resolve(), (ROOT / "recipes/purify/tiny.yaml").resolve()}
    for path in sorted(ROOT.glob("recipes/purify/*.yaml")):
        cfg = load_config(PurifyConfig, path)
        assert cfg.keep.guard and cfg.judge.backend in ("lm", "openai", "none")
        assert path.read_text().startswith("# retinalogos purify ")
        assert cfg.clip.model.startswith("tiny:") == (path.name == "tiny.yaml")
    # a recipe without a CLIP model is an error, never a random-weight default
    with pytest.raises(ConfigError, match="missing required key 'clip.model'"):
        load_config(PurifyConfig, RECIPE, ["clip={batch_size: 4}"])


# ---- whole-caption alignment, per-source thresholds, rows without a caption, the judge's answer tokens ----------


def test_captions_differing_only_after_word_100_score_differently(fundus):
    from retinalogos_hub.scorers import ClipScorer

    clip = ClipScorer("tiny:clip")
    head = " ".join(f"The vessels of segment {k} have normal calibre." for k in range(15))  # 105 words
    assert len(head.split()) > 100
    a = head + " Microaneurysms are scattered at the posterior pole."
    b = head + " Neovascularisation arises from the optic disc."
    image = fundus(40, seed=0)
    sa, sb = clip.segment_scores([image, image], [a, b])
    assert [t for t, _ in sa][:-1] == [t for t, _ in sb][:-1] and sa[-1][0] != sb[-1][0]  # every sentence is read
    mean = lambda s: sum(v for _, v in s) / len(s)  # noqa: E731
    assert sa[-1][1] != sb[-1][1] and mean(sa) != mean(sb)  # so the mean differs too
    assert clip([image], [a]) == clip([image], [b])  # the old truncated score cannot tell them apart


def test_sentence_scores_are_recorded_and_aggregated_by_the_recipe(tmp_path, fundus):
    src = captioned(tmp_path, fundus, n=4)
    ds = load_from_disk(str(purify(src, RECIPE, tmp_path / "mean").out))
    for row in ds:
        scores = [s["score"] for s in row["purify_sentences"]]
        assert [s["text"] for s in row["purify_sentences"]][0] in row["caption"]
        assert row["purify_score"] == pytest.approx(sum(scores) / len(scores), abs=1e-5)
    low = load_from_disk(str(purify(src, RECIPE, tmp_path / "min", ["clip.aggregate=min"]).out))
    assert all(r["purify_score"] == pytest.approx(min(s["score"] for s in r["purify_sentences"])) for r in low)
    old = load_from_disk(str(purify(src, RECIPE, tmp_path / "trunc", ["clip.segments=truncate"]).out))
    assert all(len(r["purify_sentences"]) == 1 and r["purify_sentences"][0]["text"] == r["caption"] for r in old)


def test_per_source_percentile_and_zscore_thresholds_with_the_distribution(tmp_path, fundus):
    src = captioned(tmp_path, fundus, n=10)
    res = purify(src, RECIPE, tmp_path / "p", ["keep.guard=false", "keep.min_clip_percentile=50"])
    ds = load_from_disk(str(res.out))
    for source in ("eyepacs", "aptos"):
        d = res.distribution[source]
        assert d["rows"] == 5 and d["min"] <= d["p50"] <= d["max"] and "percentile_threshold" in d
        rows = [r for r in ds if r["source"] == source]
        dropped = [r for r in rows if not r["purify_keep"]]
        assert len(dropped) == 2  # below the median of its own source (5 rows: 2 below)
        assert all(f"< p50 of {source}" in r["purify_reason"] for r in dropped)
    assert read_provenance(res.out)["counts"]["alignment"] == res.distribution
    res = purify(src, RECIPE, tmp_path / "z", ["keep.guard=false", "keep.min_clip_zscore=0.0"])
    assert 0 < res.dropped < 10 and "zscore_threshold" in res.distribution["aptos"]
    assert all("z-score" in r["purify_reason"] for r in load_from_disk(str(res.out)) if not r["purify_keep"])


def test_rows_without_a_caption_are_dropped_with_their_reason_or_refused(tmp_path, fundus):
    src = captioned(tmp_path, fundus, n=6)
    ds = load_from_disk(str(src))
    caps, issues = list(ds["caption"]), list(ds["caption_issues"])
    caps[1], issues[1] = "", ["request failed: HTTP 413 image too large"]
    caps[4] = ""
    broken = tmp_path / "broken"
    ds.remove_columns(["caption", "caption_issues"]).add_column("caption", caps).add_column(
        "caption_issues", issues
    ).cast(CAPTIONED).save_to_disk(str(broken))
    res = purify(broken, RECIPE, tmp_path / "out")
    out = load_from_disk(str(res.out))
    assert res.uncaptioned == 2 and read_provenance(res.out)["counts"]["uncaptioned"] == 2
    assert out[1]["purify_reason"] == "uncaptioned: request failed: HTTP 413 image too large"
    assert out[4]["purify_reason"] == "uncaptioned: empty caption" and not out[4]["purify_keep"]
    assert out[1]["purify_score"] is None and out[1]["purify_sentences"] == []
    assert ("aptos", False, "uncaptioned", 1) in [tuple(r) for r in res.summary]
    with pytest.raises(InputError, match="2 row\\(s\\) without a caption.*--retry-failed"):
        purify(broken, RECIPE, tmp_path / "refused", refuse_uncaptioned=True)


def test_lm_judge_scores_only_answer_tokens_and_matches_the_full_computation():
    import torch

    from retinalogos_hub.config import load_config
    from retinalogos_hub.purify import LMJudge, PurifyConfig

    judge = LMJudge(load_config(PurifyConfig, RECIPE).judge)
    rows = [
        {"caption": "Normal fundus." * k, "dr_grade": k % 5, "eye": "left", "diseases": [], "source": "x"}
        for k in range(1, 5)
    ]
    batched = judge.log_odds(rows)  # left-padded batch, logits only at the answer positions
    for row, odds in zip(rows, batched):  # reference: one row at a time, full log-softmax over every position
        scores = []
        for ans in judge.answer_ids:
            ids = torch.tensor([judge.prompt_ids(row) + ans])
            with torch.inference_mode():
                logp = judge.model(input_ids=ids).logits.float().log_softmax(-1)[0]
            n = ids.shape[1]
            scores.append(sum(float(logp[n - len(ans) - 1 + u, t]) for u, t in enumerate(ans)))
        assert odds == pytest.approx(scores[0] - scores[1], abs=1e-3)


def test_openai_judge_keeps_several_requests_in_flight(tmp_path, fundus):
    """judge.concurrency requests at once: each request waits (bounded) until a second one arrives."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock, active, peak, arrived = threading.Lock(), [0], [0], threading.Event()

    class Chat(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                if active[0] >= 2:
                    arrived.set()
            arrived.wait(timeout=5)  # a serial client never sends a second request while this one waits
            with lock:
                active[0] -= 1
            msg = {"role": "assistant", "content": "KEEP"}
            data = json.dumps(
                {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop", "message": msg}]}
            ).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        over = ["judge.backend=openai", f"judge.base_url=http://127.0.0.1:{server.server_port}/v1", "keep.guard=false"]
        res = purify(captioned(tmp_path, fundus, n=4), RECIPE, tmp_path / "out", [*over, "judge.concurrency=4"])
    finally:
        server.shutdown()
    assert res.kept == 4 and peak[0] >= 2
