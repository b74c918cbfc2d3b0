"""``meeverhuizen registry``: key creation, serving, operator commands, readable errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from agent.cli import cli
from protocol.jwk import load_private_jwk_from_pem, public_jwk
from tests.conftest import free_port
from tests.registry.conftest import OPERATOR_TOKEN, SUPPLIER_KVK, SUPPLIER_OIN


def test_init_key_writes_private_pem_and_prints_trust_anchor(tmp_path: Path) -> None:
    key_file = tmp_path / "registry.pem"
    result = CliRunner().invoke(cli, ["registry", "init-key", str(key_file)])
    assert result.exit_code == 0, result.output
    anchor = json.loads(result.output)
    assert "d" not in anchor
    assert anchor == public_jwk(load_private_jwk_from_pem(key_file.read_bytes()))
    assert key_file.stat().st_mode & 0o077 == 0
    again = CliRunner().invoke(cli, ["registry", "init-key", str(key_file)])
    assert again.exit_code != 0
    assert "exists" in again.output


def _utrecht_enrolment_code(runner: CliRunner, *options: str) -> Result:
    """``registry enrolment-code`` for gemeente 0344 with a made-up token, plus ``options``."""
    command = ["registry", "enrolment-code", "--token", "t", "--gemeentecode", "0344", *options]
    return runner.invoke(cli, command)


def test_operator_command_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    both = _utrecht_enrolment_code(runner, "--supplier-oin", SUPPLIER_OIN)
    assert both.exit_code != 0
    assert "exactly one" in both.output
    unreachable = _utrecht_enrolment_code(runner, "--registry-url", "http://127.0.0.1:9")
    assert unreachable.exit_code == 1
    assert unreachable.output.strip() == (
        "Error: registry_unavailable: registry unreachable (ConnectError)"
    )
    missing_key = runner.invoke(
        cli, ["registry", "serve", "--key-file", str(tmp_path / "none.pem")]
    )
    assert missing_key.exit_code == 1
    assert "does not exist" in missing_key.output


@pytest.fixture
def served_registry(tmp_path: Path) -> Iterator[str]:
    key_file = tmp_path / "registry.pem"
    assert CliRunner().invoke(cli, ["registry", "init-key", str(key_file)]).exit_code == 0
    port = free_port()
    environment = {
        **os.environ,
        "MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "MEEVERHUIZEN_REGISTRY_ENVIRONMENT": "production",
    }
    command = [
        sys.executable,
        "-c",
        "from agent.cli import main; main()",
        "registry",
        "serve",
        "--port",
        str(port),
        "--key-file",
        str(key_file),
        "--database-url",
        f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
    ]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/v1/status").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_operator_commands_against_a_served_registry(served_registry: str) -> None:
    runner = CliRunner(env={"MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": OPERATOR_TOKEN})
    base = ["--registry-url", served_registry]
    onboard = runner.invoke(
        cli,
        [
            "registry",
            "onboard-supplier",
            *base,
            "--oin",
            SUPPLIER_OIN,
            "--kvk-number",
            SUPPLIER_KVK,
            "--name",
            "Hulpmiddelen BV",
        ],
    )
    assert onboard.exit_code == 0, onboard.output
    code = runner.invoke(cli, ["registry", "enrolment-code", *base, "--gemeentecode", "0344"])
    assert code.exit_code == 0
    assert len(code.output.strip()) >= 30
    contract = runner.invoke(
        cli,
        [
            "registry",
            "add-contract",
            *base,
            "--gemeentecode",
            "0344",
            "--supplier-oin",
            SUPPLIER_OIN,
            "--iso-prefix",
            "12 22",
            "--valid-from",
            "2025-01-01",
        ],
    )
    assert contract.exit_code == 0, contract.output
    bad = runner.invoke(
        cli,
        [
            "registry",
            "revoke-key",
            *base,
            "--oin",
            SUPPLIER_OIN,
            "--kid",
            "nope",
            "--reason",
            "test",
        ],
    )
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: registry_key_unknown:")
    wrong_token = runner.invoke(
        cli, ["registry", "enrolment-code", *base, "--token", "x" * 20, "--gemeentecode", "0344"]
    )
    assert wrong_token.exit_code == 1
    assert "operator_credential_required" in wrong_token.output
    response = httpx.get(f"{served_registry}/v1/gemeenten/0344")
    assert response.headers["api-version"] == "1.0.0"
