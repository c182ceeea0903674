"""`retinalogos curate run`, `curate merge` and `sources` through the real CLI, including its one-line errors."""

import json
import subprocess
import sys

import datasets
import pytest
from typer.testing import CliRunner

from retinalogos_hub import stage
from retinalogos_hub.cli import app, main
from retinalogos_hub.demo.layouts import write_layout
from retinalogos_hub.licenses import license_for
from retinalogos_hub.sources import REGISTRY


def _main(monkeypatch, capsys, *args):
    """Run `retinalogos ARGS` through main() (which maps library errors to one line + exit 1)."""
    monkeypatch.setattr(sys, "argv", ["retinalogos", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    cap = capsys.readouterr()
    return exit_.value.code, cap.out, cap.err


def test_curate_and_merge_commands(tmp_path):
    src = write_layout("eyepacs", tmp_path / "eyepacs", n=8)
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "curate",
            "run",
            "--source",
            f"eyepacs={src}",
            "--out",
            str(tmp_path / "out"),
            "--size",
            "48",
            "splits.test=0.25",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "kept: 8" in r.output and "excluded: 0" in r.output
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(ds) == 8 and ds[0]["image"].size == (48, 48)
    config = stage.read_provenance(tmp_path / "out")["config"]
    assert (config["size"], config["splits"]["test"]) == (48, 0.25)  # --size and the override, as resolved
    for i in range(2):
        r = runner.invoke(
            app,
            [
                "curate",
                "run",
                "-s",
                f"eyepacs={src}",
                "-o",
                str(tmp_path / f"p{i}"),
                "--size",
                "48",
                "--shard",
                f"{i}/2",
            ],
        )
        assert r.exit_code == 0, r.output
        assert "curate merge" in r.output
    r = runner.invoke(app, ["curate", "merge", str(tmp_path / "p0"), str(tmp_path / "p1"), "-o", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    merged = datasets.load_from_disk(str(tmp_path / "m"))
    assert sorted(merged["id"]) == sorted(ds["id"]) and merged[0]["image"].size == (48, 48)  # the shards' recipe
    assert stage.read_provenance(tmp_path / "m")["counts"]["kept"] == 8


def test_nonexistent_source_dir_is_one_line_without_traceback(tmp_path):
    # a real process: exactly what a user sees
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "retinalogos_hub.cli",
            "curate",
            "run",
            "--source",
            "eyepacs=/nonexistent",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines[0] == "error: eyepacs: directory not found: /nonexistent"


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--source", "eyepax=/tmp"], "unknown source 'eyepax' (did you mean 'eyepacs'?); known sources:"),
        (["--source", "eyepacs"], "expected NAME=PATH"),
        (["--source", "eyepacs=/tmp", "--shard", "2/2"], "expected i/N with 0 <= i < N"),
        (["--source", "eyepacs=/tmp", "dedup.phash_distanse=3"], "unknown key 'dedup.phash_distanse'"),
        (["--source", "eyepacs=/tmp", "--recipe", "no-such-folder/curate.yaml"], "recipe not found"),
    ],
)
def test_bad_arguments(monkeypatch, capsys, tmp_path, args, expected):
    code, _, err = _main(monkeypatch, capsys, "curate", "run", "--out", str(tmp_path / "out"), *args)
    assert code == 1 and expected in err and "Traceback" not in err


def test_merge_without_shards_says_how_to_make_them(monkeypatch, capsys, tmp_path):
    code, _, err = _main(monkeypatch, capsys, "curate", "merge", str(tmp_path), "--out", str(tmp_path / "m"))
    assert code == 1 and "no shard work found" in err and "curate run --shard i/N" in err


def test_wrong_label_columns_and_empty_dir(monkeypatch, capsys, tmp_path):
    src = write_layout("eyepacs", tmp_path / "eyepacs", n=2)
    (src / "trainLabels.csv").write_text("name,grade\n1_left,0\n")
    code, _, err = _main(monkeypatch, capsys, "curate", "run", "-s", f"eyepacs={src}", "-o", str(tmp_path / "o"))
    assert code == 1 and "trainLabels.csv: expected columns image, level" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _main(
        monkeypatch, capsys, "curate", "run", "-s", f"aptos={tmp_path / 'empty'}", "-o", str(tmp_path / "o2")
    )
    assert code == 1 and "aptos" in err and str(tmp_path / "empty") in err


def test_sources_table_fits_80_columns():
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["sources"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in REGISTRY:  # one line per adapter: its name, tier, licence and labels on it
        i, line = next((i, x) for i, x in enumerate(lines) if x.startswith(f"│ {name} "))
        assert f" {license_for(name).tier} " in line
        assert not lines[i + 1].startswith("│ ") or lines[i + 1].split("│")[1].strip()  # no wrapped second line
    assert "Kaggle competition" in r.output and "CC-BY-4.0" in r.output


def test_sources_long_and_json():
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["sources", "--long"])
    assert r.exit_code == 0, r.output
    assert "trainLabels.csv" in r.output and "patient_key:" in r.output and "Kaggle competition terms" in r.output
    r = CliRunner().invoke(app, ["sources", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["name"] for row in rows] == list(REGISTRY)
    eyepacs = rows[0]
    assert "trainLabels.csv" in eyepacs["expects"] and "dr_grade" in eyepacs["labels"]
    assert eyepacs["redistributable"] is False and eyepacs["license"] == "Kaggle competition terms"


def test_curate_group_lists_run_and_merge():
    r = CliRunner().invoke(app, ["curate", "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0 and " run " in r.output and " merge " in r.output
