"""Both OpenAPI documents pass the NL GOV API Design Rules linter (Spectral) without an error.

Spectral is an npm package; ``npm ci`` installs the version that ``tests/api_design`` locks into
that folder when it is not there yet (``.ci/run`` does the same before the tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent.app import create_app as create_agent_app
from registry.app import create_app as create_registry_app
from registry.settings import RegistrySettings
from tests.agent.conftest import FakeDirectory, agent_settings

TOOLS = Path(__file__).parent / "api_design"
RULESET = TOOLS / "adr-ruleset.yaml"
SPECTRAL = TOOLS / "node_modules" / ".bin" / "spectral"
ERROR = 0  # Spectral's severity of an error (1 warning, 2 information, 3 hint)


def _spectral() -> Path:
    if not SPECTRAL.exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the API Design Rules linter (Spectral)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(TOOLS)],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return SPECTRAL


async def _document(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
        response = await http.get("/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _lint(document: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    path = folder / "openapi.json"
    path.write_text(json.dumps(document))
    report = folder / "spectral.json"
    report.unlink(missing_ok=True)
    command = [str(_spectral()), "lint", "--ruleset", str(RULESET), "--format", "json"]
    completed = subprocess.run(
        [*command, "--output", str(report), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert report.exists(), completed.stdout + completed.stderr
    results: list[dict[str, Any]] = json.loads(report.read_text())
    return results


def _errors(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"{result['code']} at {'.'.join(map(str, result['path']))}: {result['message']}"
        for result in results
        if result["severity"] == ERROR
    ]


@pytest.fixture
def registry_app(tmp_path: Path) -> FastAPI:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}"
    return create_registry_app(RegistrySettings(database_url=url))


@pytest.fixture
def agent_app(tmp_path: Path) -> FastAPI:
    settings = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}", gemeente="utrecht"
    )
    return create_agent_app(settings, registry=FakeDirectory())


async def test_registry_document_follows_the_design_rules(
    registry_app: FastAPI, tmp_path: Path
) -> None:
    assert _errors(_lint(await _document(registry_app), tmp_path)) == []


async def test_agent_document_follows_the_design_rules(agent_app: FastAPI, tmp_path: Path) -> None:
    assert _errors(_lint(await _document(agent_app), tmp_path)) == []


async def test_the_linter_finds_what_the_rules_forbid(
    registry_app: FastAPI, tmp_path: Path
) -> None:
    # The same document with the faults the rules exist for: the linter must name each one.
    document = await _document(registry_app)
    del document["servers"]
    del document["info"]["contact"]
    operation = document["paths"]["/gemeenten"]["get"]
    del operation["responses"]["200"]["headers"]
    operation["responses"]["422"] = {
        "description": "validation",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    contracts = document["paths"]["/contracts"]["post"]
    del contracts["responses"]["400"]
    document["paths"]["/Contract_Items"] = document["paths"].pop("/contracts")
    codes = {result["code"] for result in _lint(document, tmp_path) if result["severity"] == 0}
    assert {
        "oas3-api-servers",
        "info-contact",
        "adr-answers-have-headers",
        "adr-problem-media-type",
        "adr-invalid-input-answer",
        "adr-kebab-case-paths",
    } <= codes
