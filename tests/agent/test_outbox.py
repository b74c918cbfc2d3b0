"""Outbox: retries with backoff and Retry-After, dead letters and requeue, order per stream."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import select

from agent.service import OutboxEntry
from agent.storage.tables import DeliveryAttemptRow
from tests.agent.conftest import AUTH, DEPARTING_HAPPY_PATH, OPERATOR, Agents, Fault


async def _consented(agents: Agents) -> str:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    return dossier_id


def _answer(status: int, headers: dict[str, str] | None = None) -> Fault:
    async def fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "amsterdam.test":
            return None
        problem = {"type": "urn:meeverhuizen:problem:test", "title": "Test", "detail": "told so"}
        return httpx.Response(status, json=problem, headers=headers or {})

    return fault


async def _offer(agents: Agents) -> OutboxEntry:
    return next(e for e in await agents.departing.outbox.list() if e.kind == "message")


async def test_retry_after_is_honoured(agents: Agents) -> None:
    await _consented(agents)
    agents.network.fault = _answer(429, {"Retry-After": "120"})
    report = await agents.departing.deliver_due()
    assert report.retried >= 1
    offer = await _offer(agents)
    assert (offer.state, offer.attempts) == ("pending", 1)
    assert offer.execute_after == agents.clock.now() + timedelta(seconds=120)
    agents.network.fault = None
    agents.clock.advance(timedelta(seconds=119))
    await agents.departing.deliver_due()
    assert (await _offer(agents)).attempts == 1
    agents.clock.advance(timedelta(seconds=1))
    await agents.departing.deliver_due()
    assert (await _offer(agents)).state == "delivered"


async def test_backoff_doubles_and_keeps_the_message_id(agents: Agents) -> None:
    await _consented(agents)
    agents.network.fault = _answer(500)
    delays = []
    for _ in range(3):
        await agents.departing.deliver_due()
        offer = await _offer(agents)
        delays.append(offer.execute_after - agents.clock.now())
        agents.clock.set(offer.execute_after)
    assert delays == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    sent = [r for r in agents.network.requests if r.url.host == "amsterdam.test"]
    assert len({json.loads(r.content)["messageId"] for r in sent}) == 1
    assert len({r.content for r in sent}) == 1
    assert len({r.headers["nlgov-adr-payload-sig"] for r in sent}) == 3
    async with agents.departing.database.reading() as session:
        attempts = (await session.scalars(select(DeliveryAttemptRow))).all()
    assert [a.status_code for a in attempts if a.message_id == offer.message_id] == [500] * 3


async def test_network_errors_are_retried(agents: Agents) -> None:
    await _consented(agents)

    async def unreachable(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError("refused", request=request)

    agents.network.fault = unreachable
    await agents.departing.deliver_due()
    offer = await _offer(agents)
    assert offer.state == "pending"
    assert offer.last_error == "network: ConnectError"


async def test_client_error_goes_dead_with_the_problem(agents: Agents) -> None:
    await _consented(agents)
    agents.network.fault = _answer(422)
    report = await agents.departing.deliver_due()
    assert report.dead == 1
    offer = await _offer(agents)
    assert offer.state == "dead"
    assert "told so" in (offer.last_error or "")


async def test_max_age_dead_letter_listed_and_requeued(agents: Agents) -> None:
    await _consented(agents)
    agents.network.fault = _answer(503)
    for _ in range(30):
        await agents.departing.deliver_due()
        agents.clock.set((await _offer(agents)).execute_after)
        if (await _offer(agents)).state == "dead":
            break
    offer = await _offer(agents)
    assert offer.state == "dead"
    base = "http://utrecht.test/v1/outbox"
    assert (await agents.http.get(f"{base}?state=dead", headers=AUTH)).status_code == 401
    dead = await agents.http.get(f"{base}?state=dead", headers=OPERATOR)
    assert [e["messageId"] for e in dead.json()] == [offer.message_id]
    requeued = await agents.http.post(f"{base}/{offer.message_id}/requeue", headers=OPERATOR)
    assert requeued.json()["state"] == "pending"
    again = await agents.http.post(f"{base}/{offer.message_id}/requeue", headers=OPERATOR)
    assert again.status_code == 404
    agents.network.fault = None
    await agents.settle()
    assert (await _offer(agents)).state == "delivered"
    assert (await agents.departing.dossier(offer.dossier_id)).state == "completed"


async def test_stuck_dossier_does_not_block_another(agents: Agents) -> None:
    stuck = await _consented(agents)
    second = await agents.start_dossier()
    await agents.give_consent(second)

    async def block_first(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "amsterdam.test" and stuck.encode() in request.content:
            return httpx.Response(503)
        return None

    agents.network.fault = block_first
    await agents.settle()
    assert (await agents.departing.dossier(stuck)).state == "offer-sent"
    assert (await agents.departing.dossier(second)).state == "completed"


async def test_order_is_kept_within_a_stream(agents: Agents) -> None:
    agents.backoffice.status = 503
    dossier_id = await _consented(agents)
    await agents.departing.deliver_due()
    hooks = [r for r in agents.network.requests if r.url.host == "backoffice.test"]
    # Only the oldest event of the dossier was tried; the offer (another stream) went on.
    assert [json.loads(r.content)["data"]["toState"] for r in hooks] == ["started"]
    agents.backoffice.status = 204
    agents.clock.advance(timedelta(minutes=5))
    await agents.departing.deliver_until_quiet()
    states = [e["data"]["toState"] for e in agents.backoffice.events if e["subject"] == dossier_id]
    assert states == DEPARTING_HAPPY_PATH[: len(states)]
    assert len(states) >= 4
