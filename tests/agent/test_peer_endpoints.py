"""The agent checks a peer's endpoint again before it connects, and follows no redirect.

The registry refuses internal endpoints when they are registered; a name can still resolve to an
internal address later, or the registry can be wrong. The agent then makes no connection at all,
and the message waits (retried) until the registry gives an endpoint it may call.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from agent.service import OutboxEntry
from tests.agent.conftest import AMSTERDAM_OIN, Agents

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
