"""Clear operation under faults: a full disk or read-only database, a clock off the registry's.

Each fault gives a specific 503 problem, one readable log line and readiness false with the
reason, and the agent recovers by itself once the fault is gone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from agent.app import create_app
from agent.errors import ClockSkewWithRegistry
from agent.service import AgentService, ConsentInput, DossierStart
from agent.storage.tables import ProvisionRow
from protocol.clock import FrozenClock
from protocol.identifiers import is_valid_bsn
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    FIRST_DEVICE_CONSENT,
    MOVE_DATE,
    NEW_ADDRESS,
    START,
    Agents,
    Network,
    agent_settings,
    enrol_in_registry,
    registry_network,
)

BASE = "http://utrecht.test"
PROBLEM = "urn:meeverhuizen:problem:"
JSON = {"Content-Type": "application/json"}


def _clients(count: int) -> bytes:
    template = json.loads((DATA / "clients.json").read_text())[0]
    candidates = (f"9999{number:05d}" for number in range(100, 100_000))
    bsns = [bsn for bsn in candidates if is_valid_bsn(bsn)][:count]
    return json.dumps([template | {"bsn": bsn} for bsn in bsns]).encode()


@asynccontextmanager
async def _fault(service: AgentService, *statements: str) -> AsyncIterator[None]:
    """Every new connection of the agent's engine runs ``statements`` (a fault to simulate)."""

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        connection.commit()  # on PostgreSQL a SET in a rolled-back transaction is undone

    engine = service.database.engine
    event.listen(engine.sync_engine, "connect", on_connect)
    await engine.dispose()  # the connections made before the fault are closed
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "connect", on_connect)
        await engine.dispose()


def _read_only(service: AgentService) -> tuple[str, ...]:
    if service.database.is_sqlite:
        return ("PRAGMA query_only = ON",)
    return ("SET default_transaction_read_only = on",)


async def _provisions(service: AgentService) -> int:
    async with service.database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(ProvisionRow)) or 0)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        getattr(record, "event_fields", {})
        for record in caplog.records
        if record.getMessage() == name
    ]


async def _readiness(agents: Agents) -> httpx.Response:
    return await agents.http.get(BASE + "/v1/health/ready")


async def test_a_read_only_database_gives_503_and_readiness_false_until_it_is_writable(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    start = {
        "bsn": CLIENT_BSN,
        "moveDate": MOVE_DATE.isoformat(),
        "newAddress": NEW_ADDRESS.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    async with _fault(agents.departing, *_read_only(agents.departing)):
        answer = await agents.http.post(BASE + "/v1/dossiers", json=start, headers=AUTH)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == PROBLEM + "storage-unavailable"
        assert answer.json()["detail"] == "the database cannot be used now: read-only"
        ready = await _readiness(agents)
        assert ready.status_code == 503
        assert "database (the latest write failed: read-only)" in ready.json()["detail"]
    assert [fields["kind"] for fields in _events(caplog, "storage_unavailable")] == ["read-only"]
    assert CLIENT_BSN not in caplog.text
    assert await agents.departing.list_dossiers() == []
    # Writable again: the next write succeeds and readiness follows.
    answer = await agents.http.post(BASE + "/v1/dossiers", json=start, headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert (await _readiness(agents)).status_code == 200


async def test_a_full_disk_gives_503_nothing_half_applied(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    if not agents.departing.database.is_sqlite:
        pytest.skip("a full disk is simulated with SQLite's max_page_count")
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    before = await _provisions(agents.departing)
    # The database may not grow beyond its current pages: as a disk without free space.
    async with _fault(agents.departing, "PRAGMA max_page_count = 1"):
        answer = await agents.http.post(
            BASE + "/v1/provisions/imports", content=_clients(300), headers=AUTH | JSON
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == PROBLEM + "storage-unavailable"
        assert answer.json()["detail"].endswith("disk full")
        ready = await _readiness(agents)
        assert "database (the latest write failed: disk full)" in ready.json()["detail"]
    assert [fields["kind"] for fields in _events(caplog, "storage_unavailable")] == ["disk full"]
    assert await _provisions(agents.departing) == before
    answer = await agents.http.post(
        BASE + "/v1/provisions/imports", content=_clients(300), headers=AUTH | JSON
    )
    assert answer.status_code == 201, answer.text
    assert (await _readiness(agents)).status_code == 200


# --- the clock ----------------------------------------------------------------------------------


# The default allowance, and a stricter clock_skew_seconds that the registry client obeys too.
@pytest.mark.parametrize(("allowed_seconds", "minutes_ahead"), [(300, 7), (60, 2)])
async def test_a_clock_minutes_off_the_registry_is_reported_as_such(
    database_url: str,
    registry_database_url: str,
    caplog: pytest.LogCaptureFixture,
    allowed_seconds: int,
    minutes_ahead: int,
) -> None:
    offset = -60 * minutes_ahead
    network = Network()
    async with registry_network(network, FrozenClock(START), registry_database_url) as started:
        settings = agent_settings(
            database_url,
            gemeente="utrecht",
            registry_trust_anchor=started.anchor,
            clock_skew_seconds=allowed_seconds,
        )
        # The agent's clock runs minutes ahead of the registry's.
        app = create_app(
            settings,
            clock=FrozenClock(START + timedelta(minutes=minutes_ahead)),
            http=started.http,
        )
        network.routes["utrecht.test"] = httpx.ASGITransport(app=app)
        await started.stack.enter_async_context(app.router.lifespan_context(app))
        await enrol_in_registry(started.http, started.anchor, started.clock, settings)
        service: AgentService = app.state.service
        await service.import_provisions((DATA / "clients.json").read_bytes(), "json")
        view = await service.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
        )
        consent = ConsentInput.model_validate(FIRST_DEVICE_CONSENT)
        with pytest.raises(ClockSkewWithRegistry, match=f"by {offset} s"):
            await service.record_consent(view.dossier_id, consent)
        assert (await service.dossier(view.dossier_id)).state == "waiting-for-consent"
        ready = await started.http.get("http://utrecht.test/v1/health/ready")
    assert ready.status_code == 503
    problem = ready.json()
    assert (
        f"clock (the registry's signed time differs from this clock by {offset} s)"
        in (problem["detail"])
    )
    assert "registry" not in problem["detail"].replace("registry's", "")
    assert _events(caplog, "registry_clock_skew")[0]["count"] == offset
