"""The daily report over real HTTP: the agent's job sends it, signed, to a registry on loopback.

The registry runs under uvicorn on 127.0.0.1; the agent's registry client talks to it through a
real TCP connection. A report is refused when tampered with or sent for another organisation; a
registry that is down makes the job wait and say so, never fail.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agent.runtime import open_service
from agent.service import AgentService
from protocol import canonicalize
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import sign_body
from registry.app import create_app as create_registry_app
from registry.client import RegistryClient
from registry.operator import OperatorClient
from registry.settings import RegistrySettings
from tests.agent.conftest import MESSAGE_TYPES, REGISTRY_TOKEN, agent_settings
from tests.conftest import free_port

# The week before is 27 March to 2 April; March is shown from 9 April (SETTLED).
NOW = datetime(2025, 4, 3, 7, 0, tzinfo=UTC)
SETTLED = datetime(2025, 4, 9, 7, 0, tzinfo=UTC)


@dataclass
class LoopbackRegistry:
    url: str
    anchor: dict[str, Any]
    http: httpx.AsyncClient
    server: uvicorn.Server


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[uvicorn.Server]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        assert not task.done(), "the registry stopped while starting"
        await asyncio.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def registry(
    registry_database_url: str, clock: FrozenClock
) -> AsyncIterator[LoopbackRegistry]:
    key = generate_private_jwk("EdDSA")
    settings = RegistrySettings(
        environment="production",
        database_url=registry_database_url,
        signing_jwk=json.dumps(key),
        operator_token=REGISTRY_TOKEN,
        endpoint_allow_list=[".test"],
    )
    async with (
        served(create_registry_app(settings, clock=clock)) as server,
        httpx.AsyncClient() as http,
    ):
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LoopbackRegistry(f"http://127.0.0.1:{port}", public_jwk(key), http, server)


async def enrol(registry: LoopbackRegistry, clock: FrozenClock, **settings: Any) -> Any:
    operator = OperatorClient(registry.url, REGISTRY_TOKEN, http=registry.http)
    code = await operator.issue_enrolment_code(gemeentecode=settings["gemeentecode"])
    await RegistryClient(registry.url, registry.anchor, http=registry.http, clock=clock).enrol(
        code=code,
        oin=settings["oin"],
        endpoint=settings["public_base_url"],
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(settings["signing_jwk"])],
    )


@asynccontextmanager
async def utrecht_agent(
    registry: LoopbackRegistry, clock: FrozenClock, database_url: str, url: str | None = None
) -> AsyncIterator[AgentService]:
    settings = agent_settings(database_url, gemeente="utrecht", registry_url=url or registry.url)
    client = RegistryClient(
        settings.registry_url, registry.anchor, http=registry.http, clock=clock, timeout=2.0
    )
    async with open_service(settings, clock=clock, http=registry.http, registry=client) as service:
        yield service


async def gemeente_figures(
    registry: LoopbackRegistry, clock: FrozenClock, code: str
) -> dict[str, Any]:
    """The counts of March for gemeente ``code``, once March is shown."""
    clock.set(SETTLED)
    answer = await registry.http.get(f"{registry.url}/v1/gemeenten/{code}/monitoring?month=2025-03")
    assert answer.status_code == 200
    figures: dict[str, Any] = answer.json()["data"]["counts"]
    return figures


async def test_the_job_sends_the_last_week_signed_and_the_registry_counts_it(
    registry: LoopbackRegistry, clock: FrozenClock, database_url: str
) -> None:
    async with utrecht_agent(registry, clock, database_url) as service:
        await enrol(registry, clock, **service.settings.model_dump())
        job = next(job for job in service.hooks.jobs if job.name == "daily-report")
        assert (job.seconds, job.at_start) == (900.0, True)
        assert await job.run() is False
        metrics = service.metrics.render().decode()
    assert 'meeverhuizen_daily_reports_total{outcome="sent"} 7.0' in metrics
    assert "meeverhuizen_daily_reports_unsent 0.0" in metrics
    counts = await gemeente_figures(registry, clock, "0344")
    assert counts["organisations"] == 1


async def test_a_registry_that_is_down_makes_the_job_wait_and_say_so(
    registry: LoopbackRegistry, clock: FrozenClock, database_url: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with utrecht_agent(registry, clock, database_url, url=closed) as service:
        assert await service.daily_reports.run() is False
        metrics = service.metrics.render().decode()
    assert 'meeverhuizen_daily_reports_total{outcome="failed"} 1.0' in metrics
    assert "meeverhuizen_daily_reports_unsent 7.0" in metrics

    # The next run, with the registry reachable, sends what waited.
    async with utrecht_agent(registry, clock, database_url) as service:
        await enrol(registry, clock, **service.settings.model_dump())
        clock.advance(timedelta(days=1))
        await service.daily_reports.run()
        metrics = service.metrics.render().decode()
    assert "meeverhuizen_daily_reports_unsent 0.0" in metrics
    # A day later, the oldest of the week no longer goes: the registry would not take it.
    assert 'meeverhuizen_daily_reports_total{outcome="given-up"} 1.0' in metrics
    assert 'meeverhuizen_daily_reports_total{outcome="sent"} 7.0' in metrics
    assert (await gemeente_figures(registry, clock, "0344"))["organisations"] == 1


def signed_report(oin: str, key: dict[str, Any], **changes: Any) -> tuple[bytes, dict[str, str]]:
    document = {
        "oin": oin,
        "kind": "gemeente",
        "day": date(2025, 3, 31).isoformat(),
        "reportedAt": "2025-04-03T07:00:00Z",
        "handovers": {"departing": {"started": 40, "completed": 30}},
    } | changes
    signed = sign_body(canonicalize(document), key, signing_time=NOW)
    return signed.body, dict(signed.headers()) | {"Content-Type": "application/json"}


async def test_a_tampered_report_or_one_for_another_gemeente_is_refused(
    registry: LoopbackRegistry, clock: FrozenClock, database_url: str
) -> None:
    utrecht = agent_settings(database_url, gemeente="utrecht")
    amsterdam = agent_settings(database_url, gemeente="amsterdam")
    for settings in (utrecht, amsterdam):
        await enrol(registry, clock, **settings.model_dump())
    key = utrecht.private_jwk()
    path = f"{registry.url}/v1/participants/{{}}/daily-reports"

    body, headers = signed_report(utrecht.oin, key)
    tampered = body.replace(b'"started":40', b'"started":400')
    answer = await registry.http.post(path.format(utrecht.oin), content=tampered, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("signed-change-rejected")
    # Utrecht signs a report that says it is Amsterdam's, and sends it as Amsterdam's or its own.
    body, headers = signed_report(amsterdam.oin, key)
    for oin in (amsterdam.oin, utrecht.oin):
        answer = await registry.http.post(path.format(oin), content=body, headers=headers)
        assert answer.status_code == 403, oin
        assert answer.headers["content-type"].startswith("application/problem+json")

    body, headers = signed_report(utrecht.oin, key)
    answer = await registry.http.post(path.format(utrecht.oin), content=body, headers=headers)
    assert answer.status_code == 201
    utrecht_counts = await gemeente_figures(registry, clock, "0344")
    assert utrecht_counts["figures"]["handovers.departing.started"] == 40
    assert (await gemeente_figures(registry, clock, "0363"))["organisations"] == 0
