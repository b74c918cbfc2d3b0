"""CLI: import with readable line-numbered errors, dossiers list, keys generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.register.imports import CSV_COLUMNS
from tests.agent.conftest import DATA
from tests.conftest import write_utrecht_config


def _config(tmp_path: Path) -> Path:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}"
    return write_utrecht_config(tmp_path / "agent.toml", database_url)


def test_import_and_list(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "--config", str(config), str(DATA / "clients.json")])
    assert result.exit_code == 0, result.output
    assert "imported 1 clients with 3 devices" in result.output
    listed = runner.invoke(cli, ["dossiers", "list", "--config", str(config)])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == []


def test_import_errors_are_readable_with_lines(tmp_path: Path) -> None:
    config = _config(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"bsn": "999993653"}\n]\n')
    result = CliRunner().invoke(cli, ["import", "--config", str(config), str(bad)])
    assert result.exit_code != 0
    assert "line 2: name: " in result.output
    assert "nothing was applied" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "huge.json",
            b'[\n  {"bsn": "999993653"},\n  {"bsn": ' + b"7" * 5000 + b"}\n]\n",
            "line 3:",
        ),
        ("deep.json", b"[\n\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n]\n", "line 3:"),
        (
            "long.csv",
            ",".join(CSV_COLUMNS).encode() + b'\n"' + b"x" * (129 * 1024) + b'"\n',
            "line 2: not valid CSV: field larger than field limit",
        ),
    ],
)
def test_an_import_beyond_the_limits_is_refused_with_its_line(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    config = _config(tmp_path)
    bad = tmp_path / name
    bad.write_bytes(content)
    result = CliRunner().invoke(cli, ["import", "--config", str(config), str(bad)])
    assert result.exit_code != 0
    assert expected in result.output
    assert "nothing was applied" in result.output
    assert "Traceback" not in result.output


def test_keys_generate_writes_a_private_key_and_prints_the_public_one(tmp_path: Path) -> None:
    out = tmp_path / "new.jwk"
    result = CliRunner().invoke(cli, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert "d" not in printed
    assert json.loads(out.read_text())["kid"] == printed["kid"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    again = CliRunner().invoke(cli, ["keys", "generate", "--out", str(out)])
    assert again.exit_code != 0
