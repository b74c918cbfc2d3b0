"""The agent checks a peer's endpoint again before it connects, and follows no redirect.

The registry refuses internal endpoints when they are registered; a name can still resolve to an
internal address later, or the registry can be wrong. The agent then makes no connection at all,
and the message waits (retried) until the registry gives an endpoint it may call. The connection
goes to the address the check found, with the peer's name in ``Host`` and in TLS (real HTTPS
with a trustme certificate below), so a second, different answer for the name is never used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest
import trustme
from fastapi import FastAPI, Request
from httpx_aiohttp import AiohttpTransport

from agent.service import OutboxEntry
from registry.server_kit.endpoints import EndpointRules, system_resolver
from registry.server_kit.tls import client_ssl_context
from tests.agent.conftest import AMSTERDAM_OIN, Agents
from tests.test_tls import Credentials, _Server, _write

INTERNAL = [
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:19051",
    "http://localhost:22",
    "http://0.0.0.0:19001",
    "https://10.0.0.5",
    "https://192.168.1.1",
    "https://224.0.0.1",
]


async def _offer_queued(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)


async def _offer(agents: Agents) -> OutboxEntry:
    return next(e for e in await agents.departing.outbox.list() if e.kind == "message")


@pytest.mark.parametrize("endpoint", INTERNAL)
async def test_no_connection_is_made_to_an_internal_endpoint(agents: Agents, endpoint: str) -> None:
    entry = agents.directory.entries[AMSTERDAM_OIN]
    agents.directory.entries[AMSTERDAM_OIN] = dataclasses.replace(entry, endpoint=endpoint)
    await _offer_queued(agents)
    await agents.departing.deliver_due()
    host = httpx.URL(endpoint).host
    assert [r for r in agents.network.requests if r.url.host == host] == []
    offer = await _offer(agents)
    assert offer.state == "pending"
    assert (offer.last_error or "").startswith("endpoint:")


async def test_a_redirect_is_not_followed(agents: Agents) -> None:
    async def redirect(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "amsterdam.test":
            return None
        return httpx.Response(307, headers={"Location": "http://utrecht.test/v1/messages"})

    agents.network.fault = redirect
    await _offer_queued(agents)
    await agents.departing.deliver_due()
    assert [r.url.host for r in agents.network.requests if r.url.path == "/v1/messages"] == [
        "amsterdam.test"
    ]
    offer = await _offer(agents)
    assert offer.state == "pending"
    assert offer.attempts == 1


# --- DNS rebinding: the connection goes to the address that was checked -------------------------

# A public address (example.com's): the in-memory network answers for it, nothing is sent.
PUBLIC_ADDRESS = "93.184.216.34"
PEER_HOST = "amsterdam.example.nl"


class Rebinding:
    """A name server that answers a public address for the peer once, and loopback afterwards."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, host: str) -> Sequence[str]:
        if host != PEER_HOST:
            return await system_resolver(host)
        self.asked += 1
        return (PUBLIC_ADDRESS,) if self.asked == 1 else ("127.0.0.1",)


@pytest.fixture
def peer_resolver() -> Rebinding:
    return Rebinding()


async def test_the_connection_goes_to_the_checked_address_not_to_a_later_answer(
    agents: Agents, peer_resolver: Rebinding
) -> None:
    entry = agents.directory.entries[AMSTERDAM_OIN]
    agents.directory.entries[AMSTERDAM_OIN] = dataclasses.replace(
        entry, endpoint=f"https://{PEER_HOST}"
    )
    agents.network.routes[PUBLIC_ADDRESS] = agents.network.routes["amsterdam.test"]
    connected: list[str] = []

    async def connect(request: httpx.Request) -> httpx.Response | None:
        # As a socket would: an address is used as it is, a name is looked up now.
        host = request.url.host
        if host.endswith(".test"):
            return None
        address = host if host == PUBLIC_ADDRESS else (await peer_resolver(host))[0]
        connected.append(address)
        if address != PUBLIC_ADDRESS:
            raise httpx.ConnectError(f"connected to {address}", request=request)
        return None

    agents.network.fault = connect
    await _offer_queued(agents)
    await agents.departing.deliver_due()

    assert connected == [PUBLIC_ADDRESS]
    assert peer_resolver.asked == 1  # the check's look-up only
    sent = next(r for r in agents.network.requests if r.url.path == "/v1/messages")
    assert sent.headers["Host"] == PEER_HOST
    assert sent.extensions["sni_hostname"] == PEER_HOST
    offer = await _offer(agents)
    assert offer.state == "delivered", offer.last_error


# --- https to a named host: the certificate is verified for the name, not the address ------------


@pytest.fixture(scope="module")
def peer_certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Credentials]:
    folder = tmp_path_factory.mktemp("peer-pki")
    ca = trustme.CA()
    return {
        "peer": _write(ca, folder, "peer", PEER_HOST),
        "other": _write(ca, folder, "other", "someone-else.example.nl"),
    }


def _health_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/health")
    async def health(request: Request) -> dict[str, str | None]:
        return {"host": request.headers.get("host")}

    return app


def _agent_transport(ca_file: Path) -> httpx.AsyncBaseTransport:
    context = client_ssl_context(certificate_file=None, key_file=None, ca_file=ca_file)
    return AiohttpTransport(verify=context)


def _httpx_transport(ca_file: Path) -> httpx.AsyncBaseTransport:
    context = client_ssl_context(certificate_file=None, key_file=None, ca_file=ca_file)
    return httpx.AsyncHTTPTransport(verify=context)


# The agent's own transport (aiohttp) and httpx's: both take the TLS server name from the request.
TRANSPORTS = pytest.mark.parametrize("transport", [_agent_transport, _httpx_transport])
Transport = Callable[[Path], httpx.AsyncBaseTransport]


async def _call_checked(server: _Server, transport: httpx.AsyncBaseTransport) -> httpx.Response:
    async def resolve(host: str) -> Sequence[str]:
        return ("127.0.0.1",) if host == PEER_HOST else ()

    # A test network: the peer's name resolves to loopback, which the allow-list lets through.
    rules = EndpointRules(["127.0.0.0/8"], resolver=resolve)
    checked = await rules.check(f"https://{PEER_HOST}:{server.port}")
    target = checked.target("/v1/health")
    assert httpx.URL(target.url).host == "127.0.0.1"
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
        return await http.get(
            target.url, headers=dict(target.headers), extensions=dict(target.extensions)
        )


def _serving(credentials: Credentials) -> _Server:
    options = {"ssl_certfile": str(credentials.certificate), "ssl_keyfile": str(credentials.key)}
    return _Server(_health_app(), options)


@TRANSPORTS
async def test_https_to_a_named_host_verifies_its_certificate_for_the_name(
    peer_certificates: dict[str, Credentials], transport: Transport
) -> None:
    peer = peer_certificates["peer"]
    with _serving(peer) as server:
        answer = await _call_checked(server, transport(peer.ca))
    assert answer.status_code == 200
    assert answer.json() == {"host": f"{PEER_HOST}:{server.port}"}


@TRANSPORTS
async def test_a_certificate_for_another_name_is_refused_at_the_checked_address(
    peer_certificates: dict[str, Credentials], transport: Transport
) -> None:
    other = peer_certificates["other"]
    with _serving(other) as server, pytest.raises(httpx.TransportError, match=r"(?i)certificate"):
        await _call_checked(server, transport(other.ca))
