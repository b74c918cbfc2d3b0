"""Guessing personal links: limited per source and in total, never locking out a valid link.

The limiter on its own, then on real HTTP through uvicorn started with the options of
``serve``: a forwarded-for header is believed only from a configured proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agent.consent.links import LINK_PATH, GuessLimiter
from registry.server_kit.deployment import DeploymentSettings, uvicorn_proxy_options
from tests.agent.conftest import Agents, RecordingChannel
from tests.conftest import free_port

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _fail(limiter: GuessLimiter, address: str, times: int = 1) -> None:
    for _ in range(times):
        assert limiter.allow(address, NOW)


def test_a_source_is_refused_after_its_own_failures() -> None:
    limiter = GuessLimiter(per_address=3, overall=100)
    _fail(limiter, "192.0.2.1", 3)
    assert not limiter.allow("192.0.2.1", NOW)
    assert limiter.allow("192.0.2.2", NOW)
    assert limiter.allow("192.0.2.1", NOW + timedelta(minutes=1))


def test_others_failures_never_refuse_a_source_without_failures() -> None:
    limiter = GuessLimiter(per_address=10, overall=20)
    for attacker in range(20):
        _fail(limiter, f"198.51.100.{attacker}")
    # Everyone together is at the limit: attackers with a failure wait, a new source may try.
    assert not limiter.allow("198.51.100.0", NOW)
    assert limiter.allow("203.0.113.7", NOW)
    limiter.forgive("203.0.113.7")  # its link was valid
    assert limiter.allow("203.0.113.7", NOW)


def test_valid_links_do_not_count_as_guesses() -> None:
    limiter = GuessLimiter(per_address=3, overall=5)
    for _ in range(50):
        assert limiter.allow("192.0.2.1", NOW)
        limiter.forgive("192.0.2.1")
    _fail(limiter, "192.0.2.1", 3)
    assert not limiter.allow("192.0.2.1", NOW)


def test_an_ipv6_host_counts_as_its_slash_64() -> None:
    limiter = GuessLimiter(per_address=2, overall=100)
    _fail(limiter, "2001:db8:1:2::1")
    _fail(limiter, "2001:db8:1:2:ffff::9")
    assert not limiter.allow("2001:db8:1:2::abcd", NOW)
    assert limiter.allow("2001:db8:1:3::1", NOW)
    _fail(limiter, "::ffff:192.0.2.9", 2)
    assert not limiter.allow("192.0.2.9", NOW)


# --- on real HTTP -------------------------------------------------------------------------------


@asynccontextmanager
async def _served(app: FastAPI, deployment: DeploymentSettings) -> AsyncIterator[str]:
    """The app behind uvicorn on 127.0.0.1 with the proxy options ``serve`` uses."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        **uvicorn_proxy_options(deployment),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_spoofed_forwarded_for_headers_are_ignored_without_a_trusted_proxy(
    agents: Agents, letters: RecordingChannel
) -> None:
    await agents.start_dossier()
    limit = agents.departing.settings.consent.attempts_per_address
    async with (
        _served(agents.departing_app, DeploymentSettings()) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        for guess in range(limit):
            spoofed = {"X-Forwarded-For": f"10.9.{guess // 250}.{guess % 250 + 1}"}
            answer = await client.get(f"{LINK_PATH}guess{guess:04d}", headers=spoofed)
            assert answer.status_code == 404
        # Every guess counted for 127.0.0.1, whatever the header said.
        fresh = {"X-Forwarded-For": "10.200.0.1"}
        assert (await client.get(f"{LINK_PATH}guess", headers=fresh)).status_code == 429


async def test_guesses_through_a_trusted_proxy_cannot_lock_out_a_valid_link(
    agents: Agents, letters: RecordingChannel
) -> None:
    await agents.start_dossier()
    consent = agents.departing.settings.consent
    trusted = DeploymentSettings(trusted_proxies=["127.0.0.1"])
    async with (
        _served(agents.departing_app, trusted) as base,
        httpx.AsyncClient(base_url=base, follow_redirects=False) as client,
    ):
        # 310 guesses, as many as each (forwarded) address may make, over the overall limit.
        sources = consent.attempts_global // consent.attempts_per_address + 1
        answers = []
        for source in range(sources):
            attacker = {"X-Forwarded-For": f"10.9.0.{source + 1}"}
            for guess in range(consent.attempts_per_address):
                answer = await client.get(f"{LINK_PATH}guess{guess:04d}", headers=attacker)
                answers.append(answer.status_code)
        assert set(answers) == {404, 429}
        # The overall limit, plus the first guess of the last source: it had no failure yet.
        assert answers.count(404) == consent.attempts_global + 1
        again = {"X-Forwarded-For": "10.9.0.1"}
        assert (await client.get(f"{LINK_PATH}guess", headers=again)).status_code == 429
        client_address = {"X-Forwarded-For": "203.0.113.50"}
        opened = await client.get(f"{LINK_PATH}{letters.token()}", headers=client_address)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/mijn-verhuizing"


@pytest.mark.parametrize("proxies", [[], ["127.0.0.1"]])
def test_serve_options_follow_the_setting(proxies: list[str]) -> None:
    options = uvicorn_proxy_options(DeploymentSettings(trusted_proxies=proxies))
    config = uvicorn.Config(FastAPI(), **options)
    assert config.proxy_headers is bool(proxies)
    assert config.forwarded_allow_ips == proxies
