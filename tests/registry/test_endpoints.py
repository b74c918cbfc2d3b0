"""Endpoints in production: https on a public address, unless the operator's allow-list names it.

Over real HTTP against a registry process. An endpoint is checked before anything is written, so
a refused enrolment leaves its one-time code usable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from agent.local.processes import ServerProcess, free_port
from protocol.jwk import generate_private_jwk, public_jwk
from registry.client import RegistryClient
from registry.errors import EndpointNotAllowed
from registry.operator import OperatorClient
from registry.server_kit.endpoints import EndpointRules

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

GEMEENTE_OIN = "00000001002220647000"
OPERATOR_TOKEN = "operator-token-for-endpoint-tests-0123456789"
ALLOWED_ADDRESS = "10.20.30.40"
ALLOWED_NAME = "agent.test-network.example"
REFUSED = {
    "cloud metadata (link-local)": "http://169.254.169.254/latest/meta-data",
    "IPv6 loopback": "https://[::1]:19051",
    "a name resolving to loopback": "https://localhost:22",
    "unspecified": "https://0.0.0.0:19001",
    "private 10/8": "https://10.1.2.3",
    "private 192.168/16": "https://192.168.1.10:8443",
    "multicast": "https://224.0.0.1",
    "IPv6 link-local": "https://[fe80::1]:443",
    "IPv4-mapped loopback": "https://[::ffff:127.0.0.1]",
    "plain http to a public address": "http://93.184.216.34",
}


@dataclass
class Registry:
    url: str
    http: httpx.AsyncClient
    anchor: dict[str, Any]

    async def enrol(self, endpoint: str, *, code: str, key: dict[str, Any]) -> None:
        await RegistryClient(self.url, self.anchor, http=self.http).enrol(
            code=code,
            oin=GEMEENTE_OIN,
            endpoint=endpoint,
            protocol_versions=["1.0"],
            message_types=["dossier-offer"],
            public_jwks=[public_jwk(key)],
        )

    async def code(self) -> str:
        operator = OperatorClient(self.url, OPERATOR_TOKEN, http=self.http)
        return await operator.issue_enrolment_code(gemeentecode="0344")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def registry(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Registry]:
    folder: Path = tmp_path_factory.mktemp("endpoints")
    key = generate_private_jwk("EdDSA")
    (folder / "registry-key.json").write_text(json.dumps(key))
    (folder / "registry-key.json").chmod(0o600)  # production refuses a key others can read
    port = free_port()
    server = ServerProcess(
        name="registry",
        arguments=(
            "registry",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            f"sqlite+aiosqlite:///{folder / 'registry.sqlite'}",
            "--key-file",
            str(folder / "registry-key.json"),
        ),
        port=port,
        log_path=folder / "registry.log",
        health_path="/v1/status",
        environment={
            "MEEVERHUIZEN_REGISTRY_ENVIRONMENT": "production",
            "MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "MEEVERHUIZEN_REGISTRY_ENDPOINT_ALLOW_LIST": json.dumps(
                [ALLOWED_ADDRESS, ALLOWED_NAME]
            ),
        },
    )
    server.start()
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            await server.wait_ready(http)
            yield Registry(server.base_url, http, public_jwk(key))
    finally:
        server.stop()


@pytest.mark.parametrize("endpoint", list(REFUSED.values()), ids=list(REFUSED))
async def test_an_internal_or_plain_http_endpoint_is_refused_at_enrolment(
    registry: Registry, endpoint: str
) -> None:
    code = await registry.code()
    with pytest.raises(EndpointNotAllowed):
        await registry.enrol(endpoint, code=code, key=generate_private_jwk("EdDSA"))


async def test_the_allow_list_lets_a_named_host_and_address_through(registry: Registry) -> None:
    key = generate_private_jwk("EdDSA")
    code = await registry.code()
    refused_first = "https://[::1]:19051"
    with pytest.raises(EndpointNotAllowed):
        await registry.enrol(refused_first, code=code, key=key)
    # The refusal wrote nothing: the same code still enrols, on an allow-listed name over http.
    await registry.enrol(f"http://{ALLOWED_NAME}:8080", code=code, key=key)
    client = RegistryClient(registry.url, registry.anchor, http=registry.http)
    changed = await client.update_own_entry(
        oin=GEMEENTE_OIN, private_jwk=key, endpoint=f"http://{ALLOWED_ADDRESS}:8080"
    )
    assert changed.endpoint == f"http://{ALLOWED_ADDRESS}:8080"
    with pytest.raises(EndpointNotAllowed):
        await client.update_own_entry(
            oin=GEMEENTE_OIN, private_jwk=key, endpoint="http://169.254.169.254/latest"
        )
    entry = await client.participant(GEMEENTE_OIN)
    assert entry.endpoint == f"http://{ALLOWED_ADDRESS}:8080"


def _resolves_to(addresses: tuple[str, ...]) -> Any:
    async def resolver(host: str) -> tuple[str, ...]:
        return addresses

    return resolver


@pytest.mark.parametrize(
    ("addresses", "allowed"),
    [
        (("93.184.216.34",), True),
        (("93.184.216.34", "127.0.0.1"), False),  # one internal answer is enough to refuse
        (("10.0.0.7",), False),
        ((), False),  # does not resolve
    ],
)
async def test_a_name_is_judged_by_every_address_it_resolves_to(
    addresses: tuple[str, ...], allowed: bool
) -> None:
    rules = EndpointRules(resolver=_resolves_to(addresses))
    if allowed:
        await rules.check("https://agent.example.nl/base")
    else:
        with pytest.raises(EndpointNotAllowed):
            await rules.check("https://agent.example.nl/base")


@pytest.mark.parametrize(
    ("endpoint", "addresses", "allow_list", "url", "host", "server_name"),
    [
        (
            "https://agent.example.nl/base",
            ("93.184.216.34",),
            [],
            "https://93.184.216.34/base/v1/messages",
            "agent.example.nl",
            "agent.example.nl",
        ),
        (
            "https://agent.example.nl:8443",
            ("2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"),
            [],
            "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/v1/messages",
            "agent.example.nl:8443",
            "agent.example.nl",
        ),
        # A test network over plain http: pinned too, without a TLS server name.
        (
            "http://agent-a:9000",
            ("10.20.0.5",),
            ["10.20.0.0/16"],
            "http://10.20.0.5:9000/v1/messages",
            "agent-a:9000",
            None,
        ),
        # An address needs no pinning; a host named in the allow-list is reached by name.
        ("https://93.184.216.34", (), [], "https://93.184.216.34/v1/messages", None, None),
        ("http://agent.test", (), [".test"], "http://agent.test/v1/messages", None, None),
    ],
)
async def test_a_request_goes_to_the_checked_address_with_the_host_name_for_http_and_tls(
    endpoint: str,
    addresses: tuple[str, ...],
    allow_list: list[str],
    url: str,
    host: str | None,
    server_name: str | None,
) -> None:
    checked = await EndpointRules(allow_list, resolver=_resolves_to(addresses)).check(endpoint)
    target = checked.target("/v1/messages")
    assert target.url == url
    assert target.headers.get("Host") == host
    assert target.extensions.get("sni_hostname") == server_name
