"""The architecture holds: import contracts kept, code map true, packages explained and small."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY

pytestmark = pytest.mark.quality

ARCHITECTURE = REPOSITORY / "docs" / "architecture.md"
_MAP_ROW = re.compile(r"^\| `(agent\.[a-z_]+)` \|", re.M)
# A module longer than this is split by what it does (docs/architecture.md).
_LONGEST_MODULE = 520


def test_the_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _agent_children() -> set[str]:
    package = importlib.import_module("agent")
    return {f"agent.{info.name}" for info in pkgutil.iter_modules(package.__path__)}


def test_the_code_map_lists_every_package_of_the_agent_and_nothing_else() -> None:
    mapped = set(_MAP_ROW.findall(ARCHITECTURE.read_text()))
    assert mapped == _agent_children()


def test_the_code_map_shows_the_layers_the_contract_checks() -> None:
    config = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["type"] == "layers"]
    text = ARCHITECTURE.read_text()
    block = text[text.index("```\ncli") + 4 : text.index("```", text.index("```\ncli") + 4)]
    assert [line.strip() for line in block.strip().splitlines()] == layers
    # Every child of agent is in one layer, so nothing escapes the contract.
    in_layers = {f"agent.{name.strip()}" for line in layers for name in line.split("|")}
    assert in_layers == _agent_children()


def _packages() -> list[Path]:
    return sorted(
        path.parent
        for root in ("protocol", "registry", "agent")
        for path in (REPOSITORY / root).rglob("__init__.py")
        if "versions" not in path.parts
    )


@pytest.mark.parametrize("package", _packages(), ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_package_says_what_it_owns(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    assert docstring, f"{package} has no docstring"


def test_no_module_of_the_agent_is_too_long_to_read() -> None:
    long_modules = {
        str(path.relative_to(REPOSITORY)): length
        for path in (REPOSITORY / "agent").rglob("*.py")
        if "versions" not in path.parts
        and (length := len(path.read_text().splitlines())) > _LONGEST_MODULE
    }
    assert long_modules == {}
