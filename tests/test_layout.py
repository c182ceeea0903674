"""The layout stays honest: no import crosses a rule of docs/architecture.md (read from its rules table)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "retinalogos_hub"


def read_rules(doc: Path) -> list[tuple[list[str], list[str]]]:
    """(importers, forbidden) pairs from the table between the layout-rules markers."""
    text = doc.read_text()
    block = text.split("<!-- layout-rules:begin -->")[1].split("<!-- layout-rules:end -->")[0]
    rules = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue  # header and separator rows
        rules.append((re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[1])))
    return rules


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, including those inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]  # `from .. import caption`
    return [(n, m) for n, m in out if m == PACKAGE or m.startswith(PACKAGE + ".")]


def covers(name: str, module: str) -> bool:
    """`caption` covers retinalogos_hub.caption and everything under it."""
    full = f"{PACKAGE}.{name}"
    return module == full or module.startswith(full + ".")


def violations(package_dir: Path, rules) -> list[str]:
    """One line per offending import statement: `path:line imports X (rule)`."""
    found: dict[tuple[Path, int], str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for importers, forbidden in rules:
            applies = any(covers(i, module) for i in importers if i != "*") or (
                "*" in importers and not covers("cli", module)
            )
            if not applies:
                continue
            for line, target in imports(path, module):
                bad = [f for f in forbidden if covers(f, target) and not covers(f, module)]
                if bad:
                    found[(path.relative_to(package_dir.parent), line)] = f"imports {target} ({bad[0]} is off limits)"
    return [f"{path}:{line} {why}" for (path, line), why in sorted(found.items())]


RULES = read_rules(ROOT / "docs" / "architecture.md")


def test_rules_are_read_from_the_architecture_doc():
    assert len(RULES) >= 10
    assert (["*"], ["cli"]) in RULES
    train = dict((tuple(i), f) for i, f in RULES)[("train",)]
    assert {"curate", "caption", "sources", "purify"} <= set(train)
    named = {n for i, f in RULES for n in (*i, *f) if n != "*"}
    for name in named:  # every name in the table is a real module or package, so a rule cannot silently rot
        top = ROOT / PACKAGE / name.replace(".", "/")
        assert top.is_dir() or top.with_suffix(".py").is_file(), name


def test_no_import_crosses_a_rule():
    assert violations(ROOT / PACKAGE, RULES) == []


@pytest.mark.parametrize(
    "planted,code",
    [
        ("train/planted.py", "from ..caption import run"),  # training reaching into captioning
        (
            "train/backbones/planted.py",
            "def f():\n    from ...curate.pipeline import curate",
        ),  # a lazy import counts too
        ("tiny/planted.py", "from .. import purify"),  # a shared room depending on a stage
        ("evaluate/planted.py", "import retinalogos_hub.cli"),  # the library importing the CLI
    ],
)
def test_a_planted_forbidden_import_fails(tmp_path, planted, code):
    """The checker on a copy of the package with one forbidden import added."""
    import shutil

    copy = tmp_path / PACKAGE
    shutil.copytree(ROOT / PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_shipped"))
    (copy / planted).write_text(code + "\n")
    found = violations(copy, RULES)
    assert len(found) == 1 and found[0].startswith(f"{PACKAGE}/{planted}:"), found
