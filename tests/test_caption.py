"""Captioning without a model: recipes, template captions, the label guard, prompts, part files, sharded runs,
provenance and the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from retinalogos_hub import __version__
from retinalogos_hub.caption import CaptionConfig, caption_dataset, load, merge_shards, shipped
from retinalogos_hub.caption.guard import check
from retinalogos_hub.caption.prompt import JSON_KEYS, build_prompt, parse_response, reference_lines
from retinalogos_hub.caption.shards import ShardWriter, read_records
from retinalogos_hub.caption.template import TemplateCaptioner
from retinalogos_hub.errors import ConfigError, HubError, InputError
from retinalogos_hub.schema import CAPTION_FIELD_NAMES, CAPTIONED, CURATED
from retinalogos_hub.shards import parse_shard
from retinalogos_hub.stage import folder_fingerprint

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "caption"
TEMPLATE = shipped("template")

AREAS = {  # words a caption must use for each of the four areas (plus the impression)
    "optic_disc": ("optic disc",),
    "vessels": ("vessel", "arter", "arcade", "vein"),
    "nerve_fibre_layer": ("nerve fibre",),
    "macula": ("macula", "fovea"),
    "lesions": ("microaneurysm", "haemorrhage", "exudate", "lesion", "new vessels", "neovascular"),
}


def make_curated(path, n=12, size=32, fundus=None, bad=()):
    """A CURATED dataset dir of procedural fundus rows covering every grade, both eyes and unknown labels."""
    from retinalogos_hub.demo.fundus import fundus_image

    rows = []
    for k in range(n):
        g, eye = k % 5, ("left", "right")[k % 2]
        image = fundus_image(size, seed=k, dr_grade=g, eye=eye)
        if k in bad:
            image = {"bytes": b"not an image", "path": None}
        rows.append(
            dict.fromkeys(CURATED)  # columns this test does not set stay None
            | dict(
                image=image,
                id=f"demo/{k:04d}",
                source="demo",
                source_id=f"{k:04d}",
                patient_id=str(k // 2),
                eye=eye,
                dr_grade=None if k % 7 == 6 else g,
                dme=None if k % 3 == 0 else int(g >= 3),
                glaucoma=None if k % 4 == 0 else k % 4 == 1,
                diseases=["diabetic retinopathy"] if g else [],
                findings="odir keywords: moderate non proliferative retinopathy" if g == 2 else None,
                age=40.0 + k,
                sex="FM"[k % 2],
                quality="good",
                quality_score=0.9,
                width=size,
                height=size,
                split="train",
                license="CC-BY-4.0",
                redistributable=True,
            )
        )
    Dataset.from_list(rows, features=CURATED).save_to_disk(str(path))
    return path


# ---- recipes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)  # one per backend
def test_every_caption_recipe_loads_and_says_how_to_run_it(path):
    cfg = load(path)
    assert isinstance(cfg, CaptionConfig) and cfg.backend == path.stem
    head = path.read_text().splitlines()[:4]
    assert head[0].startswith("#") and any(f"--recipe recipes/caption/{path.name}" in line for line in head)
    assert any("e.g.:" in line and "=" in line.partition("e.g.:")[2] for line in head), "one override example"
    assert "sk-" not in path.read_text()


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda t: t.replace("max_words: 200\n", ""), "missing required key 'max_words'"),
        (lambda t: t + "max_word: 150\n", "unknown key 'max_word' (did you mean 'max_words'?)"),
    ],
)
def test_a_missing_or_unknown_recipe_key_is_one_line_naming_it(tmp_path, edit, needle):
    bad = tmp_path / "r.yaml"
    bad.write_text(edit((RECIPES / "template.yaml").read_text()))
    with pytest.raises(ConfigError) as e:
        load(bad)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["min_words=300"], "min_words <= max_words"),
        (["backend=gpt"], "backend must be one of 'template', 'transformers', 'openai'"),
        (["backend=openai"], "needs a valid `openai:` section"),
        (["prompt_version=v999"], "prompt_version 'v999' is unknown"),
        (["commit_every=0"], "commit_every must be >= 1"),
        (["seed=x"], "seed must be int"),
    ],
)
def test_recipe_values_are_validated(overrides, needle):
    with pytest.raises(ConfigError) as e:
        load(RECIPES / "template.yaml", overrides)
    assert needle in str(e.value)


def test_settings_bind_what_changes_a_caption_not_how_fast_it_is_made():
    cfg = shipped("openai", "openai.concurrency=64", "commit_every=8")
    assert cfg.settings() == shipped("openai").settings()
    assert shipped("openai", "max_words=150").settings()["max_words"] == 150
    assert "openai.api_key_env" not in cfg.settings() and not any(k.startswith("transformers") for k in cfg.settings())
    assert cfg.model is None and shipped("transformers").model == "Qwen/Qwen2.5-VL-7B-Instruct"


# ---- template + guard -------------------------------------------------------------------------------------------


def label_grid():
    for g, eye, glaucoma, dme, diseases, age, sex in itertools.product(
        (None, 0, 1, 2, 3, 4),
        ("left", "right", None),
        (None, True, False),
        (None, 0, 1),
        ([], ["amd"], ["hypertension", "myopia"]),
        (None, 63.0),
        (None, "F"),
    ):
        yield dict(
            id=f"x/{g}{eye}{glaucoma}{dme}{diseases}{age}{sex}",
            dr_grade=g,
            eye=eye,
            glaucoma=glaucoma,
            dme=dme,
            diseases=diseases,
            age=age,
            sex=sex,
            quality="usable",
            findings=None,
        )


@pytest.mark.parametrize("stride", [pytest.param(7, id="every-7th"), pytest.param(1, id="all", marks=pytest.mark.slow)])
def test_template_covers_all_areas_and_passes_the_guard_for_every_label_combination(stride):
    tc = TemplateCaptioner(seed=0)
    for row in list(label_grid())[::stride]:
        prose, fields = tc.caption(row)
        assert set(fields) == set(CAPTION_FIELD_NAMES) and all(fields.values())
        assert check(prose, row) == [], (row, prose)
        low = prose.lower()
        for area, words in AREAS.items():
            assert any(w in low for w in words), (area, prose)
            assert any(w in fields[area].lower() for w in words) or area == "lesions", (area, fields[area])
        assert 80 <= len(prose.split()) <= 200
        if row["eye"]:
            assert f"{row['eye']} eye" in low


def test_template_is_seeded_per_row_and_length_configurable():
    rows = [dict(id=f"demo/{k}", dr_grade=2, eye="left", glaucoma=False, dme=0, diseases=[]) for k in range(12)]
    a = [TemplateCaptioner(seed=0).caption(r)[0] for r in rows]
    assert a == [TemplateCaptioner(seed=0).caption(r)[0] for r in rows]  # reproducible
    assert len(set(a)) >= 6  # varied across rows with the same labels
    assert a != [TemplateCaptioner(seed=1).caption(r)[0] for r in rows]
    long = TemplateCaptioner(seed=0, min_words=150, max_words=220).caption(rows[0])[0]
    short = TemplateCaptioner(seed=0, min_words=20, max_words=90).caption(rows[0])[0]
    assert len(long.split()) >= 150 and len(short.split()) <= 90 and len(long.split()) > len(short.split())


@pytest.mark.parametrize(
    "caption,row,expect",
    [
        ("Scattered dot haemorrhages and hard exudates are present.", dict(dr_grade=0), "dr_grade 0"),
        ("The disc shows glaucomatous cupping.", dict(glaucoma=False), "glaucoma-negative"),
        ("The cup-to-disc ratio is 0.8.", dict(glaucoma=False), "cup-to-disc"),
        ("A photograph of the right eye.", dict(eye="left"), "eye is left"),
        ("There are no lesions.", dict(dr_grade=2), "dr_grade 2"),
        ("Normal fundus.", dict(dr_grade=3), "dr_grade 3"),
        ("No microaneurysms, haemorrhages or exudates are seen.", dict(dr_grade=2), "denies every"),
        ("Macular oedema is present.", dict(dme=0), "dme 0"),
        ("There is no macular oedema.", dict(dme=1), "dme 1"),
        ("Proliferative diabetic retinopathy.", dict(dr_grade=2), "states grade 4"),
        ("Severe non-proliferative diabetic retinopathy.", dict(dr_grade=1), "states grade 3"),
        ("No haemorrhages are present, but microaneurysms are visible.", dict(dr_grade=0), "microaneurysms"),
        ("Unremarkable fundus.", dict(diseases=["amd"]), "amd"),
        ("", {}, "empty"),
    ],
)
def test_guard_catches_contradictions(caption, row, expect):
    issues = check(caption, row)
    assert any(expect in i for i in issues), issues


def test_guard_reports_a_normal_fundus_claim_once():
    row = dict(dr_grade=2, diseases=["diabetic retinopathy", "glaucoma"])
    assert check("A normal fundus.", row) == ["dr_grade 2 but the caption calls the fundus normal / lesion-free"]


@pytest.mark.parametrize(
    "caption,row",
    [
        ("No haemorrhages, microaneurysms or exudates are seen.", dict(dr_grade=0)),
        ("Haemorrhages are absent and exudates are not seen.", dict(dr_grade=0)),
        (
            "There is no glaucomatous cupping; the disc is non-glaucomatous with a cup-to-disc ratio of 0.3.",
            dict(glaucoma=False),
        ),
        ("There is no macular oedema.", dict(dme=0)),
        ("Moderate non-proliferative diabetic retinopathy with dot haemorrhages.", dict(dr_grade=2)),
        ("Left eye. Enlarged cup, cup-to-disc ratio 0.8.", dict(eye="left", glaucoma=True)),
        ("Haemorrhages are seen.", dict(dr_grade=None, eye=None)),  # unknown labels are never checked
    ],
)
def test_guard_accepts_consistent_and_negated_statements(caption, row):
    assert check(caption, row) == []


# ---- prompt -----------------------------------------------------------------------------------------------------


def test_prompt_has_reference_block_areas_and_json_keys():
    row = dict(
        eye="right",
        quality="good",
        dr_grade=3,
        dme=1,
        glaucoma=False,
        diseases=["diabetic retinopathy", "cataract"],
        findings="severe NPDR; cataract",
        age=61.0,
        sex="M",
    )
    text = build_prompt(row, version="v1", min_words=90, max_words=150)
    for line in reference_lines(row):
        assert line in text
    for needle in (
        "Eye: right (OD)",
        "grade 3",
        "Diabetic macular oedema: present",
        "Glaucoma: no",
        "cataract",
        "age 61, male",
        "optic disc",
        "vessels",
        "nerve fibre layer",
        "lesions",
        "90 to 150 words",
        "Never contradict",
    ):
        assert needle in text, needle
    assert all(k in text for k in JSON_KEYS)
    assert "Glaucoma" not in build_prompt(dict(dr_grade=0), version="v1", min_words=80, max_words=200)  # not guessed
    with pytest.raises(InputError, match="unknown prompt version"):
        build_prompt(row, version="v999", min_words=80, max_words=200)


def test_parse_response_accepts_fenced_json_and_rejects_malformed():
    good = {k: f"{k} text" for k in JSON_KEYS}
    caption, fields = parse_response("```json\n" + json.dumps(good) + "\n```")
    assert caption == "caption text" and fields["lesions"] == "lesions text"
    for bad, why in [
        ("the disc is pink", "no JSON"),
        ('{"caption": "x"', "no JSON"),
        ("{'caption': 1}", "malformed"),
        (json.dumps({"caption": "x"}), "lacks"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_response(bad)


# ---- part files -------------------------------------------------------------------------------------------------


def test_shard_writer_commits_every_k_and_cuts_a_torn_tail(tmp_path):
    part = tmp_path / "part-0.jsonl"
    w = ShardWriter(part, commit_every=3)
    w.add([{"id": "a"}, {"id": "b"}])
    assert part.read_bytes() == b""  # not yet committed
    w.add([{"id": "c"}])
    assert len(part.read_bytes().splitlines()) == 3
    w._fh.write(b'{"id": "d", "capt')  # a job killed mid-write (its lock goes with it)
    w._fh.flush()
    assert set(read_records(tmp_path)[0]) == {"a", "b", "c"}
    with pytest.raises(InputError, match="another job is captioning this shard"):
        ShardWriter(part, commit_every=1)  # while the first writer lives
    w._fh.close()
    w2 = ShardWriter(part, commit_every=1)
    w2.add([{"id": "d"}])
    w2.close()
    records, dups = read_records(tmp_path)
    assert list(records) == ["a", "b", "c", "d"] and dups == 0
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None
    for bad in ("4/4", "x/2", "1", "-1/3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


# ---- caption_dataset (template backend) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    return make_curated(tmp_path_factory.mktemp("curated") / "ds", n=14)


def test_template_run_writes_captioned_schema_and_provenance(curated, tmp_path):
    r = caption_dataset(curated, tmp_path / "out", TEMPLATE, progress=False)
    ds = load_from_disk(str(tmp_path / "out"))
    assert r.merged and r.rows == len(ds) == 14 and r.flagged == 0
    assert ds.features == CAPTIONED
    assert ds["id"] == load_from_disk(str(curated))["id"]
    assert all(ds["caption_consistent"]) and all(m == "template" for m in ds["caption_model"])
    assert set(ds["caption_prompt_version"]) == {"v1"}
    for row in ds.select_columns([c for c in CAPTIONED if c != "image"]):
        assert check(row["caption"], row) == [] and all(row["caption_fields"].values())
    prov = json.loads((tmp_path / "out" / "retinalogos.json").read_text())
    assert prov["stage"] == "caption" and prov["version"] == __version__
    assert prov["config"]["backend"] == "template" and prov["config"]["max_words"] == 200
    assert load(RECIPES / "template.yaml") == CaptionConfig(**prov["config"])  # the resolved config, in full
    assert prov["inputs"]["curated"] == {"fingerprint": folder_fingerprint(curated), "ref": str(curated)}
    assert prov["counts"] == {
        "rows": 14,
        "flagged": 0,
        "unreadable": 0,
        "malformed": 0,
        "request_failed": 0,
        "failed": 0,
        "models": ["template"],
        "note": "template captions come from the labels only: the images were not read",
    }
    assert r.note == prov["counts"]["note"]  # the CLI prints it too
    assert prov["started"] <= prov["finished"]
    assert list((tmp_path / "out" / ".work" / "caption").glob("part-*.jsonl"))  # the work stays: a rerun is a no-op


def test_rerun_of_a_finished_job_is_a_no_op(curated, tmp_path, monkeypatch):
    first = caption_dataset(curated, tmp_path / "out", TEMPLATE, progress=False)
    stamp = (tmp_path / "out" / "retinalogos.json").read_text()
    import retinalogos_hub.caption.run as run

    monkeypatch.setattr(run, "make_backend", lambda cfg: pytest.fail("a finished job must not caption again"))
    monkeypatch.setattr(run, "merge_shards", lambda *a, **k: pytest.fail("a finished job must not merge again"))
    again = caption_dataset(curated, tmp_path / "out", shipped("template", "commit_every=7"), progress=False)
    assert (again.rows, again.flagged, again.merged) == (first.rows, first.flagged, True)
    assert (tmp_path / "out" / "retinalogos.json").read_text() == stamp


def test_sharded_runs_merge_to_the_same_dataset_as_one_run(curated, tmp_path):
    single = caption_dataset(curated, tmp_path / "single", TEMPLATE, progress=False)
    cfg = shipped("template", "commit_every=2")
    results = [caption_dataset(curated, tmp_path / "sharded", cfg, shard=f"{i}/3", progress=False) for i in (2, 0, 1)]
    assert [r.merged for r in results] == [False, False, True]  # the last shard to finish merges
    assert [r.rows for r in results[:2]] == [5, 4]  # contiguous shards [0,4) [4,9) [9,14)
    a, b = load_from_disk(str(single.out)), load_from_disk(str(tmp_path / "sharded"))
    assert a["id"] == b["id"] and a["caption"] == b["caption"]
    records, dups = read_records(tmp_path / "sharded" / ".work" / "caption")
    assert len(records) == 14 and dups == 0
    assert merge_shards(tmp_path / "sharded").rows == 14  # merge is repeatable
    assert json.loads((tmp_path / "sharded" / "retinalogos.json").read_text())["config"]["commit_every"] == 2


def test_incomplete_merge_and_changed_settings_fail_clearly(curated, tmp_path):
    caption_dataset(curated, tmp_path / "o", TEMPLATE, shard="0/2", progress=False)
    with pytest.raises(InputError, match=r"7 of 14 rows have no caption yet.*caption merge --out"):
        merge_shards(tmp_path / "o")
    with pytest.raises(InputError, match=r"max_words=200 \(now 150\)") as e:
        caption_dataset(curated, tmp_path / "o", shipped("template", "max_words=150"), shard="1/2", progress=False)
    assert "seed" not in str(e.value)  # only what differs is named
    with pytest.raises(InputError, match=r"seed=0 \(now 3\)"):
        caption_dataset(curated, tmp_path / "o", shipped("template", "seed=3"), shard="1/2", progress=False)
    with pytest.raises(InputError, match="not a dataset directory"):
        caption_dataset(tmp_path / "missing", tmp_path / "o2", TEMPLATE, progress=False)
    with pytest.raises(InputError, match="no caption work here"):
        merge_shards(tmp_path / "nothing")


def test_merge_refuses_a_changed_input_and_waits_its_turn(tmp_path):
    from retinalogos_hub.stage import WorkDir

    src = make_curated(tmp_path / "ds", n=4)
    assert caption_dataset(src, tmp_path / "o", TEMPLATE, shard="0/2", progress=False).merged is False
    with WorkDir(tmp_path / "o", "caption").lock("caption merge"):  # another job is merging
        r = caption_dataset(src, tmp_path / "o", TEMPLATE, shard="1/2", progress=False)
        assert r.merged is False and not (tmp_path / "o" / "retinalogos.json").exists()
    assert merge_shards(tmp_path / "o").rows == 4
    make_curated(tmp_path / "ds", n=5)  # the input is rewritten after captioning
    with pytest.raises(InputError, match="changed since"):
        merge_shards(tmp_path / "o")


def test_unreachable_server_fails_fast_before_any_work(curated, tmp_path):
    import time

    import openai  # noqa: F401  (what is timed is the probe, not the import)

    cfg = shipped("openai", "openai.base_url=http://127.0.0.1:9/v1")
    t = time.monotonic()
    with pytest.raises(HubError, match=r"http://127.0.0.1:9/v1"):
        caption_dataset(curated, tmp_path / "o", cfg, progress=False)
    assert time.monotonic() - t < 2.0
    assert not (tmp_path / "o").exists()  # no work folder, no state: a later run may use other settings


def test_server_refusing_the_key_never_prints_it(curated, tmp_path, monkeypatch, refusing_server):
    monkeypatch.setenv("CAPTION_TEST_KEY", "sk-secret-456")
    cfg = shipped("openai", f"openai.base_url={refusing_server}", "openai.api_key_env=CAPTION_TEST_KEY")
    with pytest.raises(HubError, match="refused the API key") as err:
        caption_dataset(curated, tmp_path / "o", cfg, progress=False)
    assert "sk-secret-456" not in str(err.value) and "CAPTION_TEST_KEY" in err.value.hint


def test_cli_caption_run_and_merge_subcommands(curated, tmp_path):
    from typer.testing import CliRunner

    from retinalogos_hub.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    run = ["caption", "run", str(curated), "--out", str(out), "--recipe", str(RECIPES / "template.yaml")]
    r0 = runner.invoke(app, [*run, "--shard", "0/2", "max_words=120"])
    assert r0.exit_code == 0, r0.output
    assert "caption merge --out" in r0.output
    r1 = runner.invoke(app, ["caption", "merge", "--out", str(out)])
    assert r1.exit_code == 1 and "no caption yet" in str(r1.exception)
    r2 = runner.invoke(app, [*run, "--shard", "1/2", "max_words=120"])
    assert r2.exit_code == 0 and "rows: 14" in r2.output, r2.output
    ds = load_from_disk(str(out))
    assert max(len(c.split()) for c in ds["caption"]) <= 120
    r3 = runner.invoke(app, ["caption", "merge", "--out", str(out)])
    assert r3.exit_code == 0 and "Merged" in r3.output and "rows: 14" in r3.output, r3.output
    r4 = runner.invoke(app, ["caption", "run", str(curated), "--out", str(tmp_path / "x")])
    assert r4.exit_code == 2 and "--recipe" in r4.output  # no silent default backend
    helps = runner.invoke(app, ["caption", "--help"], env={"COLUMNS": "200"}).output
    assert " run " in helps and " merge " in helps
