"""The CLI surface and the shipped YAML files, as a user meets them."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retinalogos_hub.cli import app
from retinalogos_hub.config import load_config
from retinalogos_hub.curate.settings import CurateConfig
from retinalogos_hub.evaluate.downstream import DownstreamRecipe
from retinalogos_hub.generate import Conditions
from retinalogos_hub.purify import PurifyConfig
from retinalogos_hub.train.config import PipelineConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("curate", "curate-merge", "sources", "caption", "purify", "push-dataset", "attach-images", "train",
            "push-model", "generate", "evaluate", "demo")


def loader_for(path: Path):
    """The dataclass each shipped YAML is read with (None: not a recipe of ours, e.g. accelerate's own format)."""
    rel = path.relative_to(ROOT / "recipes")
    if rel.parts[0] == "accelerate":
        return None
    if path.name == "pipeline.yaml":
        return PipelineConfig
    if path.name.startswith(("step1_", "step3_")):
        return TrainConfig
    if path.name == "step2_purify.yaml":
        return PurifyConfig
    return {"curate": CurateConfig, "eval": DownstreamRecipe, "generate": Conditions}[rel.parts[0]]


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").rglob("*.yaml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_yaml_loads_and_says_how_to_run_it(path):
    cls = loader_for(path)
    if cls is not None:
        assert load_config(cls, path) is not None
    assert path.read_text().startswith("#"), "each YAML starts with a comment giving its launch command"


def test_help_lists_every_command():
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for command in COMMANDS:
        assert f" {command} " in out, command


def test_library_error_is_one_line_and_debug_shows_traceback(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text((ROOT / "recipes/tiny/lumina-next/step1_pretrain_full.yaml").read_text() + "\nlearning_rat: 1\n")
    cmd = [sys.executable, "-m", "retinalogos_hub.cli", "train", "--recipe", str(bad)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "unknown key 'learning_rat'" in p.stderr and "valid keys:" in p.stderr
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "RETINALOGOS_DEBUG": "1"})
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

    for rel in ("recipes/demo/pipeline.yaml", "recipes/lumina-next/pipeline.yaml",
                "dataset_cards/dataset_card.md.j2", "model_cards/model_card.md.j2"):
        assert (SHIPPED / rel).is_file(), rel
    assert '"_shipped/**/*"' in (ROOT / "pyproject.toml").read_text()  # so a wheel carries them too
