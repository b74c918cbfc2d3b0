"""The werkbak's world for browser tests: a real OpenID Connect provider (oidc-provider on
Node.js), the real registry, two gemeenten and two suppliers exchanging real signed messages,
each agent's werkbak served by uvicorn on its own loopback port.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agent.app import create_app
from agent.service import AgentService, ConsentInput, DossierStart
from agent.settings import WerkbakSettings
from protocol.clock import FrozenClock
from registry.operator import OperatorClient
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    REGISTRY,
    REGISTRY_TOKEN,
    UTRECHT_OIN,
    Network,
    agent_settings,
    databases,
    enrol_in_registry,
    registry_network,
    supplier_settings,
)
from tests.conftest import free_port

OIDC = Path(__file__).parent / "oidc"
NODE = shutil.which("node")
DEPARTING_SUPPLIER = ("00000003123456780000", "12345678", "Hulpmiddelen BV", "hulpmiddelen")
SUPPLIER = ("00000003876543210000", "87654321", "Zorgtechniek", "zorgtechniek")
CLIENT_SECRET = "werkbak-client-secret-for-browser-tests-0123"
# login -> the claims the provider vouches for: name, roles, and the organisation's OIN.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "anna": {"name": "Anna de Vries", "roles": ["consulent"], "oin": UTRECHT_OIN},
    "olga": {"name": "Olga Bakker", "roles": ["operator"], "oin": UTRECHT_OIN},
    "bram": {"name": "Bram Smit", "roles": ["consulent"], "oin": AMSTERDAM_OIN},
    "piet": {"name": "Piet Visser", "roles": ["planner"], "oin": SUPPLIER[0]},
    "gerrit": {"name": "Gerrit Mol", "roles": [], "oin": UTRECHT_OIN},
}
HOSTS = ("utrecht", "amsterdam", "hulpmiddelen", "zorgtechniek")


@dataclass
class Provider:
    """The running provider and the werkbak port of each agent (its redirect URI)."""

    issuer: str
    ports: dict[str, int]


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """Start oidc-provider with one confidential client per agent; stop it afterwards."""
    if NODE is None or not (OIDC / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("oidc-provider is not installed (.ci/run runs npm ci in tests/browser/oidc)")
    port = free_port()
    ports = {host: free_port() for host in HOSTS}
    clients = [
        {
            "client_id": host,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"http://127.0.0.1:{ports[host]}/werkbak/inloggen/terug"],
            "post_logout_redirect_uris": [f"http://127.0.0.1:{ports[host]}/werkbak/uitgelogd"],
        }
        for host in HOSTS
    ]
    environment = os.environ | {
        "OIDC_CLIENTS": json.dumps(clients),
        "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
        "NODE_NO_WARNINGS": "1",
    }
    process = subprocess.Popen(
        [NODE, str(OIDC / "provider.mjs"), str(port)],
        cwd=OIDC,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the OpenID Connect provider did not start")
        yield Provider(f"http://127.0.0.1:{port}", ports)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _werkbak(provider: Provider, host: str) -> WerkbakSettings:
    return WerkbakSettings(
        oidc_issuer=provider.issuer,
        oidc_client_id=host,
        oidc_client_secret=CLIENT_SECRET,
        organisation_claim="oin",
        base_url=f"http://127.0.0.1:{provider.ports[host]}",
        session_minutes=60,
    )


@dataclass
class World:
    """The running agents, their werkbak addresses and the network between them."""

    clock: FrozenClock
    network: Network
    services: dict[str, AgentService]
    bases: dict[str, str]
    http: httpx.AsyncClient

    async def settle(self) -> None:
        """Delivery passes on every agent until none delivers anything."""
        for _ in range(30):
            delivered = 0
            for service in self.services.values():
                delivered += (await service.deliver_until_quiet()).delivered
            if not delivered:
                return

    async def start_dossier(self) -> str:
        utrecht = self.services["utrecht"]
        await utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
        view = await utrecht.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
        )
        return view.dossier_id

    async def hand_over(self) -> str:
        """A dossier whose client consented online to the scootmobiel; messages settled."""
        dossier_id = await self.start_dossier()
        await self.give_consent(dossier_id)
        await self.settle()
        return dossier_id

    async def give_consent(self, dossier_id: str) -> None:
        """The client consents online to the scootmobiel (nothing delivered yet)."""
        consent = ConsentInput.model_validate(
            {
                "dataKinds": ["identity", "address", "devices"],
                "deviceIds": ["dev-1"],
                "channel": "online",
                "givenBy": "client",
                "givenAt": self.clock.now().isoformat(),
            }
        )
        await self.services["utrecht"].record_consent(dossier_id, consent)


async def _serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    return server, serving


@asynccontextmanager
async def werkbak_world(
    provider: Provider, database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[World]:
    """The registry, Utrecht and Amsterdam, both suppliers; Amsterdam contracts Zorgtechniek.

    Zorgtechniek's planners answer takeover price offers by hand.
    """
    with databases(database_url, tmp_path, 5) as urls:
        network = Network()
        async with (
            registry_network(network, clock, urls[0]) as started,
            AsyncExitStack() as stack,
            httpx.AsyncHTTPTransport() as loopback,
        ):
            # The agents reach the provider on loopback over real HTTP.
            network.routes["127.0.0.1"] = loopback
            anchor = started.anchor
            settings = {
                "utrecht": agent_settings(urls[1], gemeente="utrecht"),
                "amsterdam": agent_settings(urls[2], gemeente="amsterdam"),
                "hulpmiddelen": supplier_settings(urls[3], DEPARTING_SUPPLIER),
                "zorgtechniek": supplier_settings(
                    urls[4], SUPPLIER, settlement_answered_by="planner"
                ),
            }
            services: dict[str, AgentService] = {}
            apps: dict[str, FastAPI] = {}
            for host, one in settings.items():
                one = one.model_copy(
                    update={"registry_trust_anchor": anchor, "werkbak": _werkbak(provider, host)}
                )
                app = create_app(one, clock=clock, http=started.http)
                network.routes[f"{host}.test"] = httpx.ASGITransport(app=app)
                await stack.enter_async_context(app.router.lifespan_context(app))
                await enrol_in_registry(started.http, anchor, clock, one)
                services[host], apps[host] = app.state.service, app
            await OperatorClient(REGISTRY, REGISTRY_TOKEN, http=started.http).add_contract(
                gemeentecode="0363",
                supplier_oin=SUPPLIER[0],
                iso_prefixes=["12 23"],
                valid_from=MOVE_DATE.replace(month=1, day=1),
                preference=1,
            )
            world = World(
                clock,
                network,
                services,
                {host: f"http://127.0.0.1:{provider.ports[host]}" for host in HOSTS},
                started.http,
            )
            running = [await _serve(apps[host], provider.ports[host]) for host in HOSTS]
            try:
                yield world
            finally:
                for server, serving in running:
                    server.should_exit = True
                    await serving
