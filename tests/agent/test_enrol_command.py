"""Operators enrol an agent and rotate its keys from the command line, against a real registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from agent.cli import cli
from protocol.identifiers import oin_for_kvk
from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app
from registry.settings import RegistrySettings
from tests.conftest import free_port, write_agent_config, write_utrecht_config

TOKEN = "operator-token-for-enrol-tests-0123456789"
SUPPLIER_KVK = "12345678"
GEMEENTE_TYPES = [
    "alternative-delivered",
    "consent-withdrawn",
    "device-decision",
    "device-transfer",
    "dossier-cancelled",
    "dossier-offer",
    "dossier-request",
    "handover-progress",
    "supplier-status",
]
SUPPLIER_TYPES = [
    "consent-withdrawn",
    "continued-use",
    "departure-notice",
    "dossier-cancelled",
    "settlement-accept",
    "settlement-dispute",
    "settlement-offer",
    "takeover-order",
]


@dataclass
class RunningRegistry:
    url: str
    anchor: dict[str, Any]

    def operator(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            self.url + path, json=payload, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def entry(self, oin: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/v1/participants/{oin}").json()["data"]
        return data


@pytest.fixture
def running_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    key = generate_private_jwk("EdDSA")
    settings = RegistrySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
        signing_jwk=json.dumps(key),
        operator_token=TOKEN,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # readiness of the server itself, no fixed wait
            thread.join(0.05)
            assert thread.is_alive(), "the registry did not start"
        yield RunningRegistry(f"http://127.0.0.1:{port}", public_jwk(key))
    finally:
        server.should_exit = True
        thread.join()


def _environment(registry: RunningRegistry) -> dict[str, str]:
    return {
        "MEEVERHUIZEN_AGENT_REGISTRY_URL": registry.url,
        "MEEVERHUIZEN_AGENT_REGISTRY_TRUST_ANCHOR": json.dumps(registry.anchor),
    }


def _invoke(registry: RunningRegistry, *arguments: str) -> Any:
    result = CliRunner().invoke(cli, list(arguments), env=_environment(registry))
    assert result.exit_code == 0, result.output
    return result


def test_a_gemeente_enrols_listing_the_message_types_it_handles(
    running_registry: RunningRegistry, tmp_path: Path
) -> None:
    config = write_utrecht_config(
        tmp_path / "agent.toml", f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}"
    )
    code = running_registry.operator("/v1/enrolment-codes", {"gemeentecode": "0344"})["code"]
    result = _invoke(running_registry, "agent", "enrol", "--config", str(config), "--code", code)
    printed = json.loads(result.stdout)
    assert printed["messageTypes"] == GEMEENTE_TYPES
    entry = running_registry.entry("00000001002220647000")
    assert entry["endpoint"] == "http://utrecht.test"
    assert entry["messageTypes"] == GEMEENTE_TYPES
    key = json.loads((tmp_path / "key.jwk").read_text())
    assert [k["jwk"]["kid"] for k in entry["keys"]] == [key["kid"]]
    again = CliRunner().invoke(
        cli,
        ["agent", "enrol", "--config", str(config), "--code", code],
        env=_environment(running_registry),
    )
    assert again.exit_code == 1
    assert "enrolment_code_invalid" in again.output
    assert "Traceback" not in again.output


def test_a_supplier_enrols_listing_the_supplier_message_types(
    running_registry: RunningRegistry, tmp_path: Path
) -> None:
    oin = oin_for_kvk(SUPPLIER_KVK)
    supplier = {
        "oin": oin,
        "role": "supplier",
        "kvk_number": SUPPLIER_KVK,
        "name": "Hulpmiddelen BV",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'supplier.sqlite'}",
        "public_base_url": "http://supplier.test",
    }
    config = write_agent_config(tmp_path / "supplier.toml", supplier)
    running_registry.operator(
        "/v1/suppliers", {"oin": oin, "kvkNumber": SUPPLIER_KVK, "name": "Hulpmiddelen BV"}
    )
    code = running_registry.operator("/v1/enrolment-codes", {"supplierOin": oin})["code"]
    _invoke(running_registry, "agent", "enrol", "--config", str(config), "--code", code)
    assert running_registry.entry(oin)["messageTypes"] == SUPPLIER_TYPES


def test_keys_are_rotated_and_revoked_with_signed_changes(
    running_registry: RunningRegistry, tmp_path: Path
) -> None:
    config = write_utrecht_config(
        tmp_path / "agent.toml", f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}"
    )
    code = running_registry.operator("/v1/enrolment-codes", {"gemeentecode": "0344"})["code"]
    _invoke(running_registry, "agent", "enrol", "--config", str(config), "--code", code)
    old_kid = json.loads((tmp_path / "key.jwk").read_text())["kid"]
    new_key = tmp_path / "new.jwk"
    _invoke(running_registry, "keys", "generate", "--out", str(new_key))
    new_kid = json.loads(new_key.read_text())["kid"]
    published = _invoke(
        running_registry,
        "keys", "publish", "--config", str(config), "--new-key", str(new_key),
        "--overlap-days", "3",
    )  # fmt: skip
    assert json.loads(published.stdout)["published"] == new_kid
    keys = {k["jwk"]["kid"]: k for k in running_registry.entry("00000001002220647000")["keys"]}
    assert set(keys) == {old_kid, new_kid}
    assert keys[old_kid]["notAfter"] is not None
    assert keys[new_kid]["notAfter"] is None
    # The old key signs the revocation of the new one (the configured key is still the old).
    _invoke(
        running_registry,
        "keys", "revoke", "--config", str(config), "--kid", new_kid, "--reason", "lost",
    )  # fmt: skip
    history = httpx.get(f"{running_registry.url}/v1/participants/00000001002220647000/keys").json()[
        "data"
    ]
    revoked = next(key for key in history if key["jwk"]["kid"] == new_kid)
    assert revoked["revocationReason"] == "lost"
