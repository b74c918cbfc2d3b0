"""Integration: the real registry app and two agents over ASGI transports, through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agent.service import AgentService
from protocol.clock import FrozenClock
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    START,
    Network,
    agent_settings,
    registry_network,
)


@pytest.fixture
async def world(
    database_url: str,
    second_database_url: str,
    registry_database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, AgentService, AgentService]]:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        services = []
        for url, gemeente in ((database_url, "utrecht"), (second_database_url, "amsterdam")):
            settings = agent_settings(url, gemeente=gemeente, registry_trust_anchor=world.anchor)
            services.append(await world.start_agent(settings))
        yield world.http, services[0], services[1]


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
    # Utrecht: the offer and the transfer of the bruikleen bed; Amsterdam: the decision.
    for service, sent in ((utrecht, 2), (amsterdam, 1)):
        assert [entry.state for entry in await service.outbox.list()] == ["delivered"] * sent
