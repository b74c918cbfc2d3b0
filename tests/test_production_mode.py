"""Production mode of the agent and the registry: what each refuses, what development warns.

Both services share one helper (``registry.server_kit.deployment``); a refusal names every
setting that is wrong, so an operator fixes them in one go.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from agent.app import create_app
from agent.settings import AgentSettings, hash_token
from agent.storage.database import Database
from protocol.jwk import generate_private_jwk, public_jwk
from registry._db import create_engine
from registry.app import create_app as create_registry_app
from registry.server_kit.deployment import uvicorn_proxy_options
from registry.settings import RegistrySettings
from tests.agent.conftest import agent_settings

UTRECHT_OIN = "00000001002220647000"


async def _start_and_stop(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


def _private_file(path: Path, content: str = "x", mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def _production(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A complete production configuration of a gemeente's agent; ``changes`` break it."""
    values: dict[str, Any] = {
        "environment": "production",
        "oin": UTRECHT_OIN,
        "gemeentecode": "0344",
        "name": "Gemeente Utrecht",
        "signing_key_file": _private_file(tmp_path / "signing.pem"),
        "registry_url": "https://registry.example",
        "registry_trust_anchor": public_jwk(generate_private_jwk("EdDSA")),
        "public_base_url": "https://meeverhuizen.utrecht.example",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}",
        "tls_certificate_file": _private_file(tmp_path / "server.crt", mode=0o644),
        "tls_key_file": _private_file(tmp_path / "server.key"),
        "tls_client_ca_file": _private_file(tmp_path / "client-ca.pem", mode=0o644),
        "tls_client_auth": "required",
        "outgoing_tls_certificate_file": _private_file(tmp_path / "client.crt", mode=0o644),
        "outgoing_tls_key_file": _private_file(tmp_path / "client.key"),
        "case_system_token_sha256": hash_token("case-system-token-0123456789abcdef"),
        "operator_token_sha256": hash_token("operator-token-0123456789abcdef"),
    }
    return values | changes


def _refusal(values: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        AgentSettings(**values)
    message = str(caught.value)
    assert "the agent refuses to start in production" in message
    return message


def test_a_complete_production_configuration_is_accepted(tmp_path: Path) -> None:
    settings = AgentSettings(**_production(tmp_path))
    assert settings.environment == "production"
    behind_proxy = _production(
        tmp_path,
        tls_certificate_file=None,
        tls_key_file=None,
        tls_client_ca_file=None,
        tls_client_auth="none",
        tls_terminated_by_proxy=True,
        trusted_proxies=["10.0.0.5"],
    )
    assert AgentSettings(**behind_proxy).tls_terminated_by_proxy


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"registry_url": "http://registry.example"}, "registry_url must be an https:// URL"),
        ({"public_base_url": "http://utrecht.example"}, "public_base_url must be an https://"),
        ({"webhook_url": "http://backoffice.example/events"}, "webhook_url must be an https://"),
        ({"brp_feed_url": "http://brp.example/feed"}, "brp_feed_url must be an https://"),
        ({"tls_client_auth": "optional"}, "mutual TLS: set tls_client_auth = required"),
        (
            {"outgoing_tls_certificate_file": None, "outgoing_tls_key_file": None},
            "mutual TLS: set outgoing_tls_certificate_file",
        ),
        ({"operator_token_sha256": None}, "operator_token_sha256 is required"),
        ({"case_system_token_sha256": None}, "case_system_token_sha256 is required"),
        (
            {"operator_token_sha256": hash_token("changethis")},
            "operator_token_sha256 is the hash of a placeholder token",
        ),
        (
            {"brp_token_sha256": hash_token("changethis")},
            "brp_token_sha256 is the hash of a placeholder token",
        ),
        (
            {"operator_token_sha256": hash_token("case-system-token-0123456789abcdef")},
            "tokens must differ",
        ),
    ],
)
def test_production_refuses_an_open_door_and_names_it(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    assert named in _refusal(_production(tmp_path, **changes))


@pytest.mark.parametrize(
    "name", ["signing.pem", "server.key", "client.key", "agent.sqlite"], ids=str
)
def test_production_refuses_key_and_database_files_others_can_read(
    tmp_path: Path, name: str
) -> None:
    values = _production(tmp_path)
    _private_file(tmp_path / name, mode=0o644)
    assert f"{tmp_path / name} can be read or written by other users (mode 644)" in _refusal(values)


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    message = _refusal(
        _production(tmp_path, registry_url="http://r.example", operator_token_sha256=None)
    )
    assert "registry_url" in message
    assert "operator_token_sha256 is required" in message


async def test_development_accepts_all_of_it_and_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}",
        gemeente="utrecht",
        operator_token_sha256=hash_token("changethis"),
    )
    assert settings.environment == "development"
    caplog.set_level(logging.WARNING)
    await _start_and_stop(create_app(settings))
    assert [record.getMessage() for record in caplog.records].count("development_mode") == 1


async def test_production_starts_without_the_development_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    values = _production(tmp_path) | {"signing_jwk": generate_private_jwk("EdDSA")}
    values |= {"signing_key_file": None, "scheduler_enabled": False}
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient() as http:  # the files above are no real certificates
        await _start_and_stop(create_app(AgentSettings(**values), http=http))
    assert "development_mode" not in [record.getMessage() for record in caplog.records]


# --- files are created for their owner only -----------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which SQLite itself would create files readable by all."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
async def test_the_agent_creates_its_sqlite_database_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await database.create_tables()
    finally:
        await database.dispose()
    assert _mode(path) == 0o600


@pytest.mark.usefixtures("usual_umask")
async def test_the_registry_creates_its_sqlite_database_for_its_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await engine.dispose()
    assert _mode(path) == 0o600


# --- the registry -------------------------------------------------------------------------------


async def test_the_registry_in_development_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RegistrySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
        operator_token="changethis",
    )
    caplog.set_level(logging.WARNING)
    await _start_and_stop(create_registry_app(settings))
    assert "development_mode" in [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"operator_token_sha256": hash_token("changethis")}, "hash of a placeholder token"),
        ({"signing_key_file": "readable"}, "can be read or written by other users"),
    ],
)
def test_the_registry_in_production_refuses_placeholders_and_readable_keys(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    key = _private_file(tmp_path / "registry-key.json", '{"kty": "OKP"}')
    if changes.get("signing_key_file") == "readable":
        changes = changes | {"signing_key_file": _private_file(key, mode=0o644)}
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
        "signing_key_file": key,
    }
    with pytest.raises(ValidationError, match=named):
        RegistrySettings(**(values | changes))


# --- forwarded headers --------------------------------------------------------------------------


def test_forwarded_headers_are_ignored_unless_proxies_are_configured(tmp_path: Path) -> None:
    settings = agent_settings(f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite'}", gemeente="utrecht")
    assert uvicorn_proxy_options(settings) == {"proxy_headers": False, "forwarded_allow_ips": []}
    behind = settings.model_copy(update={"trusted_proxies": ["10.0.0.5", "10.1.0.0/16"]})
    assert uvicorn_proxy_options(behind) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16"],
    }
