"""The CLI surface and the shipped YAML files, as a user meets them."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retinalogos_hub.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    "curate",
    "sources",
    "caption",
    "purify",
    "push-dataset",
    "attach-images",
    "attach-labels",
    "train",
    "push-model",
    "push-state",
    "generate",
    "evaluate",
    "demo",
    "convert-official",
    "zoo",
    "app",
)
GROUPS = {
    "curate": ("run", "merge"),
    "caption": ("run", "merge"),
    "zoo": ("list", "build", "publish"),
    "evaluate": ("fid", "memorization", "fidelity", "clip-score", "downstream", "turing-kit", "turing-score"),
}


def test_help_lists_every_command():
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for command in COMMANDS:
        assert f" {command} " in out, command


@pytest.mark.parametrize("group", list(GROUPS))
def test_groups_have_real_sub_commands(group):
    out = CliRunner().invoke(app, [group, "--help"], env={"COLUMNS": "200"}).output
    for command in GROUPS[group]:
        assert f" {command} " in out, (group, command)


def test_shared_options_are_defined_once():
    """Options used by several commands have one definition, and so one default, in cli/_options.py."""
    import re

    for path in sorted((ROOT / "retinalogos_hub" / "cli").glob("*.py")):
        if path.name == "_options.py":
            continue
        for flag in ("--model", "--device", "--recipe", "--shard", "--token", "--seed", "--workers"):
            assert not re.search(rf'typer\.Option\(\s*"{flag}"', path.read_text()), f"{path.name} redefines {flag}"


@pytest.mark.slow  # over 5 s: keeps `make test-fast` under 3 minutes
def test_library_error_is_one_line_and_debug_shows_traceback(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text((ROOT / "recipes/tiny/lumina-next/step1_pretrain_full.yaml").read_text() + "\nlearning_rat: 1\n")
    cmd = [sys.executable, "-m", "retinalogos_hub.cli", "train", "--recipe", str(bad)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "unknown key 'learning_rat'" in p.stderr and "valid keys:" in p.stderr
    p = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "RETINALOGOS_DEBUG": "1"}
    )
    assert p.returncode == 1 and "Traceback" in p.stderr and "ConfigError" in p.stderr


def test_error_text_with_brackets_is_printed_verbatim(tmp_path, monkeypatch, capsys):
    """Messages quote values like `[left]` and paths like `a[/b]`: rich must not eat them or fail on them."""
    from retinalogos_hub import cli
    from retinalogos_hub.errors import InputError

    def boom():
        raise InputError("row eyepacs/[left] in /tmp/a[/b]: bad", hint="see [docs]")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "row eyepacs/[left] in /tmp/a[/b]: bad" in err and "hint: see [docs]" in err


def test_recipes_and_card_templates_ship_inside_the_package():
    from retinalogos_hub import SHIPPED

    for rel in (
        "recipes/demo/pipeline.yaml",
        "recipes/lumina-next/pipeline.yaml",
        "dataset_cards/dataset_card.md.j2",
        "model_cards/model_card.md.j2",
    ):
        assert (SHIPPED / rel).is_file(), rel
    assert '"_shipped/**/*"' in (ROOT / "pyproject.toml").read_text()  # so a wheel carries them too
