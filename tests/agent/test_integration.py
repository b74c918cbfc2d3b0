"""Integration: the real registry app and two agents over ASGI transports, through the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from agent.app import create_app
from agent.service import AgentService
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app as create_registry_app
from registry.settings import RegistrySettings
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    REGISTRY_TOKEN,
    START,
    Network,
    agent_settings,
    enrol_in_registry,
)


@pytest.fixture
async def world(
    database_url: str,
    second_database_url: str,
    registry_database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, AgentService, AgentService]]:
    clock = FrozenClock(START)
    registry_key = generate_private_jwk("EdDSA")
    anchor = public_jwk(registry_key)
    network = Network()
    registry_app = create_registry_app(
        RegistrySettings(
            environment="production",
            database_url=registry_database_url,
            signing_jwk=json.dumps(registry_key),
            operator_token=REGISTRY_TOKEN,
        ),
        clock=clock,
    )
    network.routes["registry.test"] = httpx.ASGITransport(app=registry_app)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(transport=network))
        await stack.enter_async_context(registry_app.router.lifespan_context(registry_app))
        services = []
        for url, gemeente in ((database_url, "utrecht"), (second_database_url, "amsterdam")):
            settings = agent_settings(url, gemeente=gemeente, registry_trust_anchor=anchor)
            app = create_app(settings, clock=clock, http=http)
            network.routes[f"{gemeente}.test"] = httpx.ASGITransport(app=app)
            await stack.enter_async_context(app.router.lifespan_context(app))
            services.append(app.state.service)
            await enrol_in_registry(http, anchor, clock, app.state.service.settings)
        yield http, services[0], services[1]


async def _settle(*services: AgentService) -> None:
    for _ in range(20):
        reports = [await service.deliver_until_quiet() for service in services]
        if not any(report.delivered for report in reports):
            return


async def test_happy_path_through_the_real_registry(
    world: tuple[httpx.AsyncClient, AgentService, AgentService],
) -> None:
    http, utrecht, amsterdam = world
    imported = await http.post(
        "http://utrecht.test/v1/provisions/imports",
        content=(DATA / "clients.json").read_bytes(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert imported.status_code == 201, imported.text
    started = await http.post(
        "http://utrecht.test/v1/dossiers",
        json={
            "bsn": CLIENT_BSN,
            "moveDate": MOVE_DATE.isoformat(),
            "newAddress": NEW_ADDRESS.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
        headers=AUTH,
    )
    assert started.status_code == 201, started.text
    dossier_id = started.json()["dossierId"]
    consent = await http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/consent",
        json={
            "dataKinds": ["identity", "address", "devices", "indicatie"],
            "deviceIds": ["dev-1", "dev-2", "dev-3"],
            "channel": "phone",
            "givenBy": "representative",
            "givenAt": START.isoformat(),
        },
        headers=AUTH,
    )
    assert consent.status_code == 200, consent.text
    assert consent.json()["state"] == "offer-sent"

    await _settle(utrecht, amsterdam)

    for base in ("http://utrecht.test", "http://amsterdam.test"):
        answer = await http.get(f"{base}/v1/dossiers/{dossier_id}", headers=AUTH)
        assert answer.status_code == 200
        dossier = answer.json()
        assert dossier["state"] == "completed"
        assert [t["toState"] for t in dossier["timeline"]].count("completed") == 1
    completed = await http.get("http://amsterdam.test/v1/dossiers?state=completed", headers=AUTH)
    assert [d["dossierId"] for d in completed.json()] == [dossier_id]
    for service in (utrecht, amsterdam):
        assert [entry.state for entry in await service.outbox.list()] == ["delivered"]
