"""Fault injection: a batch of handovers completes exactly once under every network fault.

The real registry and two agents run in-process on one :class:`Network`; the clock is frozen and
moved by the test, the scheduler is off and the test drives the delivery passes.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agent.errors import DirectoryUnavailable
from agent.service import AgentService, ConsentInput, DossierStart
from agent.storage.tables import InboundMessageRow, OutboxRow, ProvisionRow, TransitionRow
from protocol.clock import FrozenClock
from protocol.identifiers import is_valid_bsn
from tests.agent.conftest import (
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    START,
    WEBHOOK,
    Backoffice,
    Network,
    agent_settings,
    network_with_backoffice,
    registry_network,
)

BATCH = 20
# Protocol messages per dossier: the offer, the decision and the bruikleen bed's transfer.
MESSAGES_PER_DOSSIER = 3
REGISTRY_HOST = "registry.test"
AGENT_HOSTS = frozenset({"utrecht.test", "amsterdam.test"})
# Per dossier: started, waiting-for-consent, consent-given, offer-sent, decided, completed.
DEPARTING_STATES = 6
# Per dossier: offer-received, decided, completed.
RECEIVING_STATES = 3
DEVICES = 3

Route = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _batch_bsns() -> list[str]:
    candidates = (f"9999{number:05d}" for number in range(100, 100_000))
    valid = (bsn for bsn in candidates if is_valid_bsn(bsn))
    return [next(valid) for _ in range(BATCH)]


def _register(bsns: list[str]) -> bytes:
    template = json.loads((DATA / "clients.json").read_text())[0]
    return json.dumps([template | {"bsn": bsn} for bsn in bsns]).encode()


@dataclass
class World:
    """Registry, Utrecht (departing), Amsterdam (receiving) and the back office on one network."""

    network: Network
    clock: FrozenClock
    departing: AgentService
    receiving: AgentService
    backoffice: Backoffice
    bsns: list[str] = field(default_factory=_batch_bsns)
    dossiers: list[str] = field(default_factory=list)
    after_round: Callable[[], Awaitable[None]] | None = None

    async def route(self, request: httpx.Request) -> httpx.Response:
        """Deliver a request to its app, past the fault hook."""
        return await self.network.routes[request.url.host].handle_async_request(request)

    async def start(self, count: int = BATCH) -> list[str]:
        """Import the batch (once), start ``count`` more dossiers and record consent for each."""
        if not self.dossiers:
            await self.departing.import_provisions(_register(self.bsns), "json")
        started = []
        for bsn in self.bsns[len(self.dossiers) : len(self.dossiers) + count]:
            view = await self.departing.start_dossier(
                DossierStart(bsn=bsn, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
            )
            self.dossiers.append(view.dossier_id)
            started.append(view.dossier_id)
            await self.departing.record_consent(view.dossier_id, _consent())
        return started

    async def drive(self, *, max_rounds: int = 200) -> int:
        """Delivery passes, moving the clock to the next due message, until all is delivered."""
        for rounds in range(1, max_rounds + 1):
            for service in (self.departing, self.receiving):
                await service.deliver_until_quiet()
            if self.after_round is not None:
                await self.after_round()
            due = [
                entry.execute_after
                for service in (self.departing, self.receiving)
                for entry in await service.outbox.list("pending")
            ]
            if not due:
                return rounds
            # What is due now was tried; the rest waits behind the head of its stream (whose
            # receipt was lost) or for its retry: move on to the next retry.
            later = [moment for moment in due if moment > self.clock.now()]
            self.clock.set(min(later) if later else self.clock.now())
        raise AssertionError("the batch did not settle")

    async def assert_completed_exactly_once(self) -> None:
        """Every dossier completed once on both sides, each effect stored once, all delivered."""
        expected = {"departing": DEPARTING_STATES, "receiving": RECEIVING_STATES}
        for side, service in (("departing", self.departing), ("receiving", self.receiving)):
            views = [await service.dossier(dossier_id) for dossier_id in self.dossiers]
            assert {view.state for view in views} == {"completed"}, side
            for view in views:
                targets = [item.to_state for item in view.timeline]
                assert len(targets) == len(set(targets)) == expected[side], (side, targets)
                assert len(view.decisions) == DEVICES
            async with service.database.reading() as session:
                inbound = Counter(
                    (await session.scalars(select(InboundMessageRow.dossier_id))).all()
                )
                decisions = await session.scalar(select(func.count(ProvisionRow.id)))
                transitions = await session.scalar(select(func.count(TransitionRow.id)))
                outbox = Counter(
                    (await session.execute(select(OutboxRow.kind, OutboxRow.state))).all()
                )
            # Per dossier: the offer and the bruikleen bed's transfer in, or the decision in.
            sent, received = (2, 1) if side == "departing" else (1, 2)
            assert inbound == dict.fromkeys(self.dossiers, received), side
            assert decisions == DEVICES * len(self.dossiers)
            assert transitions == expected[side] * len(self.dossiers)
            assert outbox == {
                ("message", "delivered"): sent * len(self.dossiers),
                ("event", "delivered"): expected[side] * len(self.dossiers),
            }, side
        # At-least-once to the back office too: every state change arrived (maybe twice).
        arrived = {
            (e["source"], e["subject"], e["data"]["toState"]) for e in self.backoffice.events
        }
        assert len(arrived) == (DEPARTING_STATES + RECEIVING_STATES) * len(self.dossiers)


def _consent() -> ConsentInput:
    return ConsentInput.model_validate(
        {
            "outcome": "given",
            "dataKinds": ["identity", "address", "devices", "indicatie"],
            "deviceIds": ["dev-1", "dev-2", "dev-3"],
            "channel": "online",
            "givenBy": "client",
            "givenAt": START.isoformat(),
        }
    )


@pytest.fixture
async def world(
    database_url: str, second_database_url: str, registry_database_url: str
) -> AsyncIterator[World]:
    network, backoffice = network_with_backoffice()
    async with registry_network(network, FrozenClock(START), registry_database_url) as started:
        services = []
        for url, gemeente in ((database_url, "utrecht"), (second_database_url, "amsterdam")):
            settings = agent_settings(
                url, gemeente=gemeente, registry_trust_anchor=started.anchor, webhook_url=WEBHOOK
            )
            services.append(await started.start_agent(settings, random=lambda: 1.0))
        network.requests.clear()
        yield World(network, started.clock, services[0], services[1], backoffice)


def _message_id(request: httpx.Request) -> str:
    return str(json.loads(request.content)["messageId"])


def _to_agent(request: httpx.Request) -> bool:
    return request.url.host in AGENT_HOSTS and request.url.path == "/v1/messages"


async def test_receiver_down_then_back(world: World) -> None:
    async def amsterdam_down(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "amsterdam.test":
            raise httpx.ConnectError("connection refused", request=request)
        return None

    world.network.fault = amsterdam_down
    await world.start()
    for _ in range(4):
        await world.departing.deliver_until_quiet()
        world.clock.advance(timedelta(minutes=1))
    offers = [e for e in await world.departing.outbox.list() if e.kind == "message"]
    assert {(e.state, e.attempts >= 3) for e in offers} == {("pending", True)}
    assert await world.receiving.list_dossiers() == []

    world.network.fault = None
    await world.drive()
    await world.assert_completed_exactly_once()


async def test_half_of_all_requests_are_lost(world: World) -> None:
    chance = random.Random(20250303)
    lost = Counter[str]()

    async def lossy(request: httpx.Request) -> httpx.Response | None:
        if not _to_agent(request) or chance.random() >= 0.5:
            return None
        if chance.random() < 0.5:
            lost["before"] += 1
            raise httpx.ConnectError("lost on the way there", request=request)
        await world.route(request)
        lost["after"] += 1
        raise httpx.ReadError("answer lost on the way back", request=request)

    world.network.fault = lossy
    await world.start()
    await world.drive()
    assert lost["before"] > 5
    assert lost["after"] > 5
    await world.assert_completed_exactly_once()


async def test_every_request_is_delivered_twice_at_once(world: World) -> None:
    answers: list[tuple[httpx.Response, httpx.Response]] = []

    async def twice(request: httpx.Request) -> httpx.Response | None:
        if not _to_agent(request):
            return None
        first, second = await asyncio.gather(world.route(request), world.route(request))
        await asyncio.gather(first.aread(), second.aread())
        answers.append((first, second))
        return second

    world.network.fault = twice
    await world.start()
    await world.drive()
    assert len(answers) == MESSAGES_PER_DOSSIER * BATCH
    # The same message twice gets the same receipt (re-signed): same bytes, no second effect.
    assert all(a.status_code == b.status_code == 200 for a, b in answers)
    assert all(a.content == b.content for a, b in answers)
    await world.assert_completed_exactly_once()


async def test_reordered_deliveries_arrive_after_their_retries(world: World) -> None:
    chance = random.Random(7)
    held: list[httpx.Request] = []
    late: list[httpx.Response] = []

    async def hold_back(request: httpx.Request) -> httpx.Response | None:
        if not _to_agent(request) or chance.random() < 0.5:
            return None
        held.append(request)
        raise httpx.ReadTimeout("no answer in time", request=request)

    previous_round: list[httpx.Request] = []

    async def release_previous_round() -> None:
        # One round late, so after the sender's retry, and newest first: out of order.
        releasing = list(reversed(previous_round))
        previous_round[:] = held
        held.clear()
        for request in releasing:
            late.append(await world.route(request))
            await late[-1].aread()

    world.network.fault = hold_back
    world.after_round = release_previous_round
    await world.start()
    await world.drive()
    assert len(late) > 5
    assert previous_round == held == []
    assert {response.status_code for response in late} == {200}
    await world.assert_completed_exactly_once()


async def test_lost_receipt_is_answered_again_on_retry(world: World) -> None:
    dropped: dict[str, bytes] = {}
    retried: dict[str, bytes] = {}

    async def drop_first_receipt(request: httpx.Request) -> httpx.Response | None:
        if not _to_agent(request):
            return None
        answer = await world.route(request)
        await answer.aread()
        message_id = _message_id(request)
        if message_id not in dropped:
            dropped[message_id] = answer.content
            raise httpx.ReadError("connection reset after processing", request=request)
        retried[message_id] = answer.content
        return answer

    world.network.fault = drop_first_receipt
    await world.start()
    await world.drive()
    assert len(dropped) == MESSAGES_PER_DOSSIER * BATCH
    assert retried == dropped
    await world.assert_completed_exactly_once()
    for sender, receiver in (
        (world.departing, world.receiving),
        (world.receiving, world.departing),
    ):
        async with receiver.database.reading() as session:
            given = dict(
                (
                    await session.execute(
                        select(InboundMessageRow.message_id, InboundMessageRow.receipt_body)
                    )
                ).all()
            )
        async with sender.database.reading() as session:
            kept = dict(
                (
                    await session.execute(
                        select(OutboxRow.message_id, OutboxRow.receipt_body).where(
                            OutboxRow.kind == "message"
                        )
                    )
                ).all()
            )
        assert kept == given


async def test_429_and_503_wait_for_retry_after(world: World) -> None:
    answered: dict[str, list[int]] = {}
    seen: dict[str, list[tuple[Any, ...]]] = {}

    async def busy(request: httpx.Request) -> httpx.Response | None:
        if not _to_agent(request):
            return None
        message_id = _message_id(request)
        now = world.clock.now()
        attempts = answered.setdefault(message_id, [])
        seen.setdefault(message_id, []).append((now, len(attempts)))
        if len(attempts) == 0:
            attempts.append(429)
            return httpx.Response(429, headers={"Retry-After": "30"})
        if len(attempts) == 1:
            attempts.append(503)
            later = format_datetime(now + timedelta(seconds=90), usegmt=True)
            return httpx.Response(503, headers={"Retry-After": later})
        return None

    world.network.fault = busy
    await world.start()
    await world.drive()
    await world.assert_completed_exactly_once()
    assert len(seen) == MESSAGES_PER_DOSSIER * BATCH
    for attempts in seen.values():
        times = [moment for moment, _ in attempts]
        assert len(times) == 3
        # The clock only moves when the test moves it: each retry waited for Retry-After.
        assert times[1] - times[0] >= timedelta(seconds=30)
        assert times[2] - times[1] >= timedelta(seconds=90)


async def test_registry_unreachable_for_a_while(world: World) -> None:
    registry_down = False
    refused = Counter[str]()

    async def registry(request: httpx.Request) -> httpx.Response | None:
        if registry_down and request.url.host == REGISTRY_HOST:
            refused[request.url.path] += 1
            raise httpx.ConnectError("registry unreachable", request=request)
        return None

    world.network.fault = registry
    await world.start(8)
    await world.drive()

    # Down, answers older than their maxAge: the verified cache still serves within staleness.
    registry_down = True
    world.clock.advance(timedelta(minutes=10))
    await world.start(6)
    await world.drive()
    assert sum(refused.values()) > 0

    # Down beyond the staleness bound: consent is refused with a 503 and nothing changes.
    world.clock.advance(timedelta(hours=2))
    imported = world.bsns[len(world.dossiers)]
    view = await world.departing.start_dossier(
        DossierStart(bsn=imported, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
    )
    with pytest.raises(DirectoryUnavailable):
        await world.departing.record_consent(view.dossier_id, _consent())
    assert (await world.departing.dossier(view.dossier_id)).state == "waiting-for-consent"

    registry_down = False
    await world.departing.record_consent(view.dossier_id, _consent())
    world.dossiers.append(view.dossier_id)
    await world.start(BATCH - len(world.dossiers))
    await world.drive()
    await world.assert_completed_exactly_once()
