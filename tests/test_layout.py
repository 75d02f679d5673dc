"""Project shape: the data flows one way between stages, and the README's commands are real."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
# a stage imports only earlier stages plus the shared modules
STAGES = {"ingest": 0, "store": 1, "templates": 2, "anomaly": 2, "localize": 3, "kb": 4, "simulate": 4,
          "interfaces": 5}
SHARED = {"model", "config", "errors", "schema", "timeutil", "__init__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] == "rca"}


def test_stages_import_only_earlier_stages():
    bad = []
    for path in (ROOT / "rca").rglob("*.py"):
        parts = path.relative_to(ROOT / "rca").parts
        if len(parts) < 2 or parts[0] not in STAGES:
            continue
        mine = STAGES[parts[0]]
        for mod in _imports(path):
            top = mod.split(".")[1] if "." in mod else ""
            if top in SHARED or top == parts[0]:
                continue
            if top in STAGES and STAGES[top] > mine:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
            if top in STAGES and top == "simulate" and parts[0] != "interfaces":
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_commands_are_the_makefile_targets_and_ci_calls_the_test_one():
    readme = _readme()
    assert "make demo" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "rca demo" in makefile.split("\ndemo:")[1].split("\n\n")[0]
    ci = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()
          if ln.strip() and not ln.strip().startswith("#")]
    assert ci[-1] == "make test"
    assert "torch==2.13.0" in makefile


def test_every_rca_command_in_the_readme_exists_and_has_help():
    from rca.interfaces.cli.main import COMMANDS, cli

    used = set(re.findall(r"`rca ([a-z]+)", _readme()))
    assert used, "the README names no commands"
    unknown = used - set(COMMANDS)
    assert not unknown, f"README names unknown commands: {unknown}"
    runner = CliRunner()
    for name in sorted(used):
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)


@pytest.mark.parametrize("name", ["pyproject.toml", "README.md", "rca", "models", "tests", "datasets", "notebooks",
                                  "Dockerfile", ".ci/run"])
def test_layout_is_kept(name):
    assert (ROOT / name).exists()
