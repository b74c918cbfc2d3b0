"""Mutual TLS on loopback: real uvicorn servers with a test CA made by trustme."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from agent.app import create_app as create_agent_app
from agent.runtime import open_service, outgoing_http_client
from agent.settings import AgentSettings
from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app as create_registry_app
from registry.client import RegistryClient
from registry.errors import ParticipantUnknown, RegistryUnavailable
from registry.server_kit.tls import client_ssl_context, uvicorn_tls_options
from registry.settings import RegistrySettings

UNKNOWN_OIN = "00000001999999999000"


@dataclass(frozen=True)
class Credentials:
    """PEM files of one certificate with its key, and of the CA that issued it."""

    certificate: Path
    key: Path
    ca: Path


def _write(ca: trustme.CA, directory: Path, name: str, *identities: str) -> Credentials:
    directory.mkdir(parents=True, exist_ok=True)
    issued = ca.issue_cert(*identities)
    certificate = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    ca_file = directory / "ca.pem"
    issued.private_key_pem.write_to_path(str(key))
    certificate.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    return Credentials(certificate=certificate, key=key, ca=ca_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Credentials]:
    """Server and client certificates from the test CA, and a client from another CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    return {
        "server": _write(ca, directory / "ca", "server", "127.0.0.1", "localhost"),
        "client": _write(ca, directory / "ca", "client", "agent.gemeente.test"),
        "stranger": _write(other, directory / "other", "stranger", "agent.stranger.test"),
    }


class _Server:
    """A uvicorn server in a thread on a loopback port chosen by the OS."""

    def __init__(self, app: FastAPI, options: dict[str, Any]) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="error", lifespan="on", **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, args=([self._socket],))

    def __enter__(self) -> _Server:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "server stopped while starting"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _registry_settings(tmp_path: Path, pki: dict[str, Credentials]) -> RegistrySettings:
    return RegistrySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
        signing_jwk=_REGISTRY_KEY_TEXT,
        tls_certificate_file=pki["server"].certificate,
        tls_key_file=pki["server"].key,
        tls_client_ca_file=pki["client"].ca,
        tls_client_auth="required",
    )


_REGISTRY_KEY = generate_private_jwk("EdDSA")
_REGISTRY_KEY_TEXT = json.dumps(_REGISTRY_KEY)


@pytest.fixture
def registry_server(tmp_path: Path, pki: dict[str, Credentials]) -> Iterator[_Server]:
    settings = _registry_settings(tmp_path, pki)
    options = dict(uvicorn_tls_options(settings))
    with _Server(create_registry_app(settings), options) as server:
        yield server


def _client(pki: dict[str, Credentials], who: str | None) -> httpx.AsyncClient:
    context = client_ssl_context(
        certificate_file=None if who is None else pki[who].certificate,
        key_file=None if who is None else pki[who].key,
        ca_file=pki["server"].ca,
    )
    return httpx.AsyncClient(verify=context, timeout=5.0)


def _agent_settings(tmp_path: Path, registry_url: str, **fields: Any) -> AgentSettings:
    return AgentSettings(
        oin="00000001002220647000",
        gemeentecode="0344",
        name="Gemeente Utrecht",
        signing_jwk=generate_private_jwk("EdDSA"),
        registry_url=registry_url,
        registry_trust_anchor=public_jwk(_REGISTRY_KEY),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}",
        public_base_url="https://127.0.0.1:1",
        scheduler_enabled=False,
        **fields,
    )


def test_uvicorn_options_follow_the_settings(tmp_path: Path, pki: dict[str, Credentials]) -> None:
    options = uvicorn_tls_options(_registry_settings(tmp_path, pki))
    assert options == {
        "ssl_certfile": str(pki["server"].certificate),
        "ssl_keyfile": str(pki["server"].key),
        "ssl_ca_certs": str(pki["client"].ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    assert uvicorn_tls_options(RegistrySettings()) == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tls_certificate_file": Path("server.pem")}, "tls_key_file"),
        ({"tls_client_auth": "required"}, "needs HTTPS"),
        (
            {
                "tls_certificate_file": Path("s.pem"),
                "tls_key_file": Path("s.key"),
                "tls_client_auth": "optional",
            },
            "tls_client_ca_file",
        ),
    ],
)
def test_incomplete_tls_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegistrySettings(**fields)


def test_agent_refuses_an_outgoing_certificate_without_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="outgoing_tls_key_file"):
        _agent_settings(
            tmp_path, "https://registry.test", outgoing_tls_certificate_file=Path("c.pem")
        )


async def test_a_client_with_a_valid_certificate_is_served(
    registry_server: _Server, pki: dict[str, Credentials]
) -> None:
    async with _client(pki, "client") as http:
        response = await http.get(f"{registry_server.url}/v1/status")
    assert response.status_code == 200


@pytest.mark.parametrize("who", [None, "stranger"])
async def test_a_client_without_a_trusted_certificate_is_refused(
    registry_server: _Server, pki: dict[str, Credentials], who: str | None
) -> None:
    async with _client(pki, who) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"{registry_server.url}/v1/status")


async def test_a_server_outside_the_trusted_cas_is_refused(
    registry_server: _Server, pki: dict[str, Credentials]
) -> None:
    context = client_ssl_context(
        certificate_file=pki["client"].certificate,
        key_file=pki["client"].key,
        ca_file=pki["stranger"].ca,
    )
    async with httpx.AsyncClient(verify=context) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(f"{registry_server.url}/v1/status")


async def test_the_agent_serves_https_with_required_client_certificates(
    tmp_path: Path, pki: dict[str, Credentials]
) -> None:
    settings = _agent_settings(
        tmp_path,
        "https://registry.invalid",
        tls_certificate_file=pki["server"].certificate,
        tls_key_file=pki["server"].key,
        tls_client_ca_file=pki["client"].ca,
        tls_client_auth="required",
    )
    options = dict(uvicorn_tls_options(settings))
    with _Server(create_agent_app(settings), options) as server:
        async with _client(pki, "client") as http:
            assert (await http.get(f"{server.url}/v1/health")).json() == {"status": "ok"}
        async with _client(pki, "stranger") as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{server.url}/v1/health")


async def test_the_agents_outgoing_client_presents_its_certificate(
    tmp_path: Path, registry_server: _Server, pki: dict[str, Credentials]
) -> None:
    settings = _agent_settings(
        tmp_path,
        registry_server.url,
        outgoing_tls_certificate_file=pki["client"].certificate,
        outgoing_tls_key_file=pki["client"].key,
        outgoing_tls_ca_file=pki["server"].ca,
    )
    async with open_service(settings) as service:
        # A signed "unknown participant" answer: TLS both ways worked and the answer verified.
        with pytest.raises(ParticipantUnknown):
            await service.directory.participant(UNKNOWN_OIN)


@pytest.mark.parametrize("who", [None, "stranger"])
async def test_the_agent_without_a_trusted_certificate_cannot_reach_the_registry(
    tmp_path: Path, registry_server: _Server, pki: dict[str, Credentials], who: str | None
) -> None:
    fields: dict[str, Any] = {"outgoing_tls_ca_file": pki["server"].ca}
    if who is not None:
        fields |= {
            "outgoing_tls_certificate_file": pki[who].certificate,
            "outgoing_tls_key_file": pki[who].key,
        }
    settings = _agent_settings(tmp_path, registry_server.url, **fields)
    async with outgoing_http_client(settings) as http:
        registry = RegistryClient(settings.registry_url, settings.trust_anchor(), http=http)
        with pytest.raises(RegistryUnavailable):
            await registry.participant(UNKNOWN_OIN)
