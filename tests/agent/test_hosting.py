"""One agent process hosts several organisations: routing by receiver, and nothing shared.

Two gemeenten and three suppliers are hosted together behind one shared endpoint (``host.test``),
each at a host name of its own, with its own token; on PostgreSQL in one database with a schema
each, on SQLite with a file each. The real registry lists the shared endpoint for all five.
"""

# The World of test_supplier_flow, hosted; test arguments reuse the fixtures' names.

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from agent.hosting import HostApp, Hosting, HostingSettings, create_host_app
from agent.hosting.settings import HostingProblem, load_hosting
from agent.service import AgentService
from agent.settings import AgentSettings, hash_token
from agent.storage.database import Database
from agent.storage.tables import Base, InboundMessageRow
from protocol.clock import FrozenClock
from protocol.messages import parse_message
from protocol.signing import sign_message
from registry.operator import OperatorClient
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    AUTH,
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
from tests.agent.test_supplier_flow import PREFERRED, SUPPLIERS, World, _document
from tests.conftest import REPOSITORY

SHARED = "http://host.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _token(name: str) -> str:
    return f"case-system-token-of-{name}-0123456789"


@pytest.fixture
def hosted_urls(database_url: str, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """The registry's database, and each organisation's: one shared on PostgreSQL."""
    if database_url.startswith("sqlite"):
        with databases(database_url, tmp_path, 6) as urls:
            yield urls[0], urls[1:]
        return
    with databases(database_url, tmp_path, 2) as urls:
        yield urls[0], [urls[1]] * 5


def _hosted(settings: AgentSettings, url: str, host: str) -> AgentSettings:
    schema = None if url.startswith("sqlite") else f"org_{host}"
    return settings.model_copy(
        update={
            "database_url": url,
            "database_schema": schema,
            "endpoint_url": SHARED,
            "case_system_token_sha256": hash_token(_token(host)),
            "scheduler_enabled": False,
        }
    )


@pytest.fixture
async def hosted(hosted_urls: tuple[str, list[str]]) -> AsyncIterator[tuple[World, HostApp]]:
    registry_url, urls = hosted_urls
    clock = FrozenClock(datetime(2025, 3, 3, 9, 0).astimezone())
    async with registry_network(Network(), clock, registry_url) as started:
        anchor = {"registry_trust_anchor": started.anchor}
        organisations = [
            _hosted(agent_settings(urls[0], gemeente="utrecht", **anchor), urls[0], "utrecht"),
            _hosted(agent_settings(urls[1], gemeente="amsterdam", **anchor), urls[1], "amsterdam"),
        ] + [
            _hosted(supplier_settings(url, one).model_copy(update=anchor), url, one[3])
            for url, one in zip(urls[2:], SUPPLIERS, strict=True)
        ]
        hosting = Hosting(
            HostingSettings(
                public_base_url=SHARED,
                organisations=[Path(f"{s.oin}.toml") for s in organisations],
            ),
            tuple(organisations),
        )
        host = create_host_app(hosting, clock=clock, http=started.http)
        for name in ("host", "utrecht", "amsterdam", *(one[3] for one in SUPPLIERS)):
            started.network.routes[f"{name}.test"] = httpx.ASGITransport(app=host)
        await started.stack.enter_async_context(host.router.lifespan_context(host))
        for settings in organisations:
            await enrol_in_registry(started.http, started.anchor, clock, settings)
        services = host.services
        yield (
            World(
                network=started.network,
                http=started.http,
                clock=clock,
                utrecht=services[UTRECHT_OIN],
                amsterdam=services[AMSTERDAM_OIN],
                suppliers={one[3]: services[one[0]] for one in SUPPLIERS},
                operator=OperatorClient(REGISTRY, REGISTRY_TOKEN, http=started.http),
            ),
            host,
        )


async def test_the_registry_lists_the_shared_endpoint_for_every_hosted_organisation(
    hosted: tuple[World, HostApp],
) -> None:
    _world, host = hosted
    for oin, service in host.services.items():
        entry = await service.directory.participant(oin)
        assert entry.endpoint == SHARED


async def test_a_handover_between_hosted_organisations_goes_through_the_shared_endpoint(
    hosted: tuple[World, HostApp],
) -> None:
    world, host = hosted
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()

    assert await world.state(world.utrecht, dossier_id) == "completed"
    assert await world.state(world.amsterdam, dossier_id) == "orders-placed"
    zorgtechniek = {"Authorization": f"Bearer {_token('zorgtechniek')}"}
    orders = await world.http.get("http://zorgtechniek.test/v1/orders", headers=zorgtechniek)
    [order] = orders.json()
    planned = await world.http.post(
        f"http://zorgtechniek.test/v1/orders/{order['orderId']}/status",
        json={"status": "taken-over", "deviceId": "dev-1"},
        headers=zorgtechniek,
    )
    assert planned.status_code == 200, planned.text
    await world.settle()
    assert await world.state(world.amsterdam, dossier_id) == "completed"

    # Every organisation stored only the messages addressed to it; the third supplier none.
    receivers: dict[str, set[str]] = {}
    for service in host.services.values():
        async with service.database.reading() as session:
            bodies = list(await session.scalars(select(InboundMessageRow.body)))
        receivers[service.settings.oin] = {json.loads(body)["receiver"]["oin"] for body in bodies}
    assert receivers == {oin: {oin} for oin in receivers if oin != SUPPLIERS[2][0]} | {
        SUPPLIERS[2][0]: set()
    }


async def test_one_organisation_sees_nothing_of_another(hosted: tuple[World, HostApp]) -> None:
    world, _host = hosted
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    utrecht = {"Authorization": f"Bearer {_token('utrecht')}"}
    amsterdam = {"Authorization": f"Bearer {_token('amsterdam')}"}

    # A request: one organisation's token opens nothing at another's address.
    refused = await world.http.get("http://amsterdam.test/v1/dossiers", headers=utrecht)
    assert refused.status_code == 401
    shared_token = await world.http.get("http://amsterdam.test/v1/dossiers", headers=AUTH)
    assert shared_token.status_code == 401
    # The same dossier id is two dossiers: each gemeente's own side of it.
    [mine] = (await world.http.get("http://utrecht.test/v1/dossiers", headers=utrecht)).json()
    [theirs] = (await world.http.get("http://amsterdam.test/v1/dossiers", headers=amsterdam)).json()
    assert (mine["dossierId"], mine["side"]) == (dossier_id, "departing")
    assert (theirs["dossierId"], theirs["side"]) == (dossier_id, "receiving")
    # A task: Utrecht's task is not in Amsterdam's list, nor can Amsterdam's desk close it.
    task = (await world.http.get("http://utrecht.test/v1/tasks", headers=utrecht)).json()[0]
    listed = await world.http.get("http://amsterdam.test/v1/tasks", headers=amsterdam)
    assert task["id"] not in {other["id"] for other in listed.json()}
    closed = await world.http.post(
        f"http://amsterdam.test/v1/tasks/{task['id']}/done",
        json={"doneBy": "consulent 7"},
        headers=amsterdam,
    )
    assert closed.status_code == 404
    assert task["id"] in {open_task.id for open_task in await world.utrecht.tasks.list("open")}
    # A web page: a werkbak session of Utrecht is no session at Amsterdam.
    async with httpx.AsyncClient(transport=world.network, base_url="http://utrecht.test") as web:
        form = await web.get("/werkbak/inloggen")
        token = _CSRF.search(form.text)
        assert token is not None
        signed_in = await web.post(
            "/werkbak/inloggen/demo",
            data={"csrf": token.group(1), "naam": "Anna", "rol": "consulent"},
        )
        assert signed_in.status_code == 303
        assert (await web.get("/werkbak/taken")).status_code == 200
        cookies = dict(web.cookies)
    async with httpx.AsyncClient(
        transport=world.network, base_url="http://amsterdam.test", cookies=cookies
    ) as other:
        assert (await other.get("/werkbak/taken")).status_code == 401
    # An unknown host name is no organisation's.
    async with httpx.AsyncClient(transport=world.network, base_url="http://host.test") as web:
        answer = await web.get("/v1/dossiers", headers=utrecht)
    assert answer.status_code == 404
    assert answer.json()["type"] == "urn:meeverhuizen:problem:organisation-not-hosted"


async def test_a_message_for_an_organisation_not_hosted_here_is_refused(
    hosted: tuple[World, HostApp],
) -> None:
    world, host = hosted
    elsewhere = ("00000001999999999000", "receiving-gemeente")
    document = _document(
        "dossier-cancelled",
        str(uuid.uuid4()),
        (UTRECHT_OIN, "departing-gemeente"),
        elsewhere,
        {"reason": "move-cancelled"},
        world.clock.now(),
    )
    signed = sign_message(
        parse_message(document),
        world.utrecht.settings.private_jwk(),
        signing_time=world.clock.now(),
    )
    answer = await world.http.post(
        f"{SHARED}/v1/messages", content=signed.body, headers=signed.headers()
    )
    assert answer.status_code == 421, answer.text
    assert answer.json()["type"] == "urn:meeverhuizen:problem:receiver-mismatch"
    # Nor does a body nested too deep to read say anything but a problem.
    nested = await world.http.post(f"{SHARED}/v1/messages", content=b"[" * 100_000)
    assert 400 <= nested.status_code < 500
    for service in host.services.values():
        async with service.database.reading() as session:
            assert list(await session.scalars(select(InboundMessageRow))) == []


async def test_on_postgresql_a_query_without_the_organisations_schema_sees_no_table(
    hosted: tuple[World, HostApp], database_url: str
) -> None:
    world, _host = hosted
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite gives each organisation a file of its own")
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    unscoped = Database(world.utrecht.database.url)
    try:
        async with unscoped.reading() as session:
            for table in Base.metadata.tables:
                found = await session.scalar(text("SELECT to_regclass(:name)"), {"name": table})
                assert found is None, table
            async with world.utrecht.database.reading() as scoped:
                assert await scoped.scalar(text("SELECT count(*) FROM dossiers")) == 1
    finally:
        await unscoped.dispose()


def test_a_hosting_file_with_a_mistake_is_refused_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "hosting.toml").write_text(
        'public_base_url = "http://host.test"\nport = = 8100\norganisations = ["utrecht.toml"]\n'
    )
    with pytest.raises(HostingProblem, match=r"line 2"):
        load_hosting(tmp_path / "hosting.toml")
    (tmp_path / "hosting.toml").write_text(
        'public_base_url = "http://host.test"\norganisations = ["utrecht.toml"]\n'
    )
    with pytest.raises(HostingProblem, match=r"utrecht\.toml does not exist"):
        load_hosting(tmp_path / "hosting.toml")


def _two(**second: Any) -> tuple[AgentSettings, AgentSettings]:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/hosted"
    first = _hosted(agent_settings(url, gemeente="utrecht"), url, "utrecht")
    other = _hosted(agent_settings(url, gemeente="amsterdam"), url, "amsterdam")
    return first, other.model_copy(update=second)


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"endpoint_url": "http://amsterdam.test"}, "endpoint_url must be the host's shared"),
        ({"public_base_url": "http://utrecht.test"}, "a host name of its own"),
        ({"database_schema": "org_utrecht"}, "share a database"),
        ({"oin": UTRECHT_OIN}, "hosted twice"),
    ],
)
def test_hosted_organisations_that_would_collide_are_refused(
    second: dict[str, Any], reason: str
) -> None:
    organisations = _two(**second)
    settings = HostingSettings(public_base_url=SHARED, organisations=[Path("a"), Path("b")])
    with pytest.raises(HostingProblem, match=reason):
        Hosting(settings, organisations)


def test_every_hosting_setting_is_in_the_hosting_document() -> None:
    document = (REPOSITORY / "docs" / "hosting.md").read_text(encoding="utf-8")
    missing = [name for name in HostingSettings.model_fields if f"`{name}`" not in document]
    assert missing == []


def test_a_production_host_refuses_an_organisation_in_development_mode() -> None:
    organisations = _two()
    settings = HostingSettings(
        public_base_url="http://host.test",
        organisations=[Path("a"), Path("b")],
        environment="production",
    )
    with pytest.raises(HostingProblem) as refused:
        Hosting(settings, organisations)
    assert "public_base_url must be an https:// URL" in str(refused.value)
    assert "Gemeente Utrecht (00000001002220647000) runs in development mode" in str(refused.value)


async def test_the_host_watches_its_one_event_loop_for_every_organisation(
    hosted: tuple[World, HostApp],
) -> None:
    _world, host = hosted
    before = {oin: _stall_count(service) for oin, service in host.services.items()}
    await asyncio.sleep(0.5)  # about 25 timer ticks of 20 ms
    after = {oin: _stall_count(service) for oin, service in host.services.items()}
    ticks = {oin: after[oin] - before[oin] for oin in after}
    assert min(ticks.values()) >= 3
    assert len(set(ticks.values())) == 1  # one watch, reported to each: the same ticks


def _stall_count(service: AgentService) -> float:
    value = service.metrics.registry.get_sample_value("meeverhuizen_event_loop_stall_seconds_count")
    assert value is not None
    return value
