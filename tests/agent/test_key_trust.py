"""Keys from the registry's history, revocation within a minute, and answers kept over a restart.

The real registry app and two agents on an in-process network, one clock for all: time moves by
``FrozenClock.advance``, never by sleeping.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agent.app import create_app
from agent.service import AgentService, ConsentInput, DossierStart
from agent.settings import AgentSettings
from agent.storage.tables import InboundMessageRow, RegistryAnswerRow
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import parse_message
from protocol.signing import sign_message
from registry.client import RegistryClient
from registry.operator import OperatorClient
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    REGISTRY,
    REGISTRY_TOKEN,
    START,
    UTRECHT_OIN,
    Network,
    RegistryNetwork,
    agent_settings,
    registry_network,
)

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
AMSTERDAM_INBOX = "http://amsterdam.test/v1/messages"


@dataclass
class World:
    started: RegistryNetwork
    settings: dict[str, AgentSettings]
    services: dict[str, AgentService]

    @property
    def clock(self) -> FrozenClock:
        return self.started.clock

    @property
    def http(self) -> httpx.AsyncClient:
        return self.started.http

    def offer(self, signing_key: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A new dossier-offer from Utrecht to Amsterdam, signed now with ``signing_key``."""
        document = json.loads((EXAMPLES / "dossier-offer.json").read_text())
        document |= {
            "messageId": str(uuid.uuid4()),
            "dossierId": str(uuid.uuid4()),
            "sender": {"oin": UTRECHT_OIN, "role": "departing-gemeente"},
            "receiver": {"oin": AMSTERDAM_OIN, "role": "receiving-gemeente"},
            "createdAt": self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        document["body"]["departingGemeentecode"] = "0344"
        document["body"]["client"]["newAddress"] = NEW_ADDRESS.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        signed = sign_message(parse_message(document), signing_key, signing_time=self.clock.now())
        return signed.body, signed.headers()

    async def send_offer(self, signing_key: dict[str, Any]) -> httpx.Response:
        body, headers = self.offer(signing_key)
        return await self.http.post(AMSTERDAM_INBOX, content=body, headers=headers)

    async def restart_amsterdam(self) -> AgentService:
        """A new Amsterdam process on the same database (the old one is left unrouted)."""
        app = create_app(self.settings["amsterdam"], clock=self.clock, http=self.http)
        self.started.network.routes["amsterdam.test"] = httpx.ASGITransport(app=app)
        await self.started.stack.enter_async_context(app.router.lifespan_context(app))
        service: AgentService = app.state.service
        self.services["amsterdam"] = service
        return service

    def registry_down(self) -> None:
        del self.started.network.routes[REGISTRY.removeprefix("http://")]


@pytest.fixture
async def world(
    database_url: str, second_database_url: str, registry_database_url: str
) -> AsyncIterator[World]:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as started:
        settings = {
            gemeente: agent_settings(url, gemeente=gemeente, registry_trust_anchor=started.anchor)
            for url, gemeente in ((database_url, "utrecht"), (second_database_url, "amsterdam"))
        }
        services = {name: await started.start_agent(s) for name, s in settings.items()}
        yield World(started, settings, services)


async def _inbound(service: AgentService) -> int:
    async with service.database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessageRow)) or 0)


async def test_a_revoked_key_is_not_valid_within_a_minute(world: World) -> None:
    utrecht_key = world.settings["utrecht"].private_jwk()
    assert (await world.send_offer(utrecht_key)).status_code == 200
    operator = OperatorClient(REGISTRY, REGISTRY_TOKEN, http=world.http)
    await operator.revoke_key(oin=UTRECHT_OIN, kid=utrecht_key["kid"], reason="compromised")
    stored = await _inbound(world.services["amsterdam"])

    world.clock.advance(timedelta(seconds=60))
    answer = await world.send_offer(utrecht_key)
    assert answer.status_code == 401, answer.text
    assert answer.json()["type"] == "urn:meeverhuizen:problem:key-not-valid"
    assert await _inbound(world.services["amsterdam"]) == stored


async def test_the_registry_tells_clients_to_keep_key_answers_a_minute_at_most(
    world: World,
) -> None:
    answer = await world.http.get(f"{REGISTRY}/v1/participants/{UTRECHT_OIN}/keys")
    assert answer.headers["cache-control"] == "max-age=60"
    assert answer.json()["maxAge"] == 60


async def test_a_key_added_since_the_last_look_up_is_fetched_at_once(world: World) -> None:
    utrecht_key = world.settings["utrecht"].private_jwk()
    assert (await world.send_offer(utrecht_key)).status_code == 200
    new_key = generate_private_jwk("EdDSA")
    registry = RegistryClient(REGISTRY, world.started.anchor, http=world.http, clock=world.clock)
    await registry.update_own_entry(
        oin=UTRECHT_OIN, private_jwk=utrecht_key, add_keys=[public_jwk(new_key)]
    )
    answer = await world.send_offer(new_key)
    assert answer.status_code == 200, answer.text


async def test_a_key_never_published_stays_unknown(world: World) -> None:
    answer = await world.send_offer(generate_private_jwk("EdDSA"))
    assert answer.status_code == 401
    assert answer.json()["type"] == "urn:meeverhuizen:problem:key-unknown"


async def _handover(world: World) -> str:
    utrecht = world.services["utrecht"]
    view = await utrecht.start_dossier(
        DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
    )
    consent = ConsentInput.model_validate(
        {
            "outcome": "given",
            "dataKinds": ("identity", "address", "devices"),
            "deviceIds": ("dev-1",),
            "channel": "online",
            "givenBy": "client",
            "givenAt": world.clock.now().isoformat(),
        }
    )
    await utrecht.record_consent(view.dossier_id, consent)
    for _ in range(10):
        await utrecht.deliver_until_quiet()
        await world.services["amsterdam"].deliver_until_quiet()
    return view.dossier_id


async def test_a_restarted_agent_verifies_and_delivers_while_the_registry_is_down(
    world: World,
) -> None:
    utrecht = world.services["utrecht"]
    await utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
    first = await _handover(world)
    assert (await utrecht.dossier(first)).state == "completed"
    async with world.services["amsterdam"].database.reading() as session:
        kept = set(await session.scalars(select(RegistryAnswerRow.resource)))
    assert f"/v1/participants/{UTRECHT_OIN}/keys" in kept
    assert f"/v1/participants/{UTRECHT_OIN}" in kept

    # Past every max-age, within the staleness bound (one hour): only kept answers can serve.
    world.clock.advance(timedelta(minutes=10))
    world.registry_down()
    amsterdam = await world.restart_amsterdam()
    second = await _handover(world)
    assert (await utrecht.dossier(second)).state == "completed"
    assert (await amsterdam.dossier(second)).state == "completed"


async def test_kept_answers_do_not_outlive_the_staleness_bound(world: World) -> None:
    utrecht_key = world.settings["utrecht"].private_jwk()
    assert (await world.send_offer(utrecht_key)).status_code == 200
    world.clock.advance(timedelta(hours=2))
    world.registry_down()
    await world.restart_amsterdam()
    answer = await world.send_offer(utrecht_key)
    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:meeverhuizen:problem:registry-unavailable"
