"""A delivery pass is a pipeline: what is committed while it runs joins it, at most
``_CONCURRENCY`` attempts run at once, a stream's next message goes only after its head, and
urgent dossiers' messages go first."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from agent.delivery.outbox import _CONCURRENCY, Outbox
from agent.delivery.outgoing import OutboxPolicy, enqueue
from agent.storage.database import Database
from agent.storage.tables import DossierRow, OutboxRow
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk
from protocol.signing import VerificationPolicy
from tests.agent.conftest import START, UTRECHT_OIN, FakeDirectory

POLICY = OutboxPolicy(
    max_age=timedelta(hours=1), base_delay=timedelta(seconds=2), max_delay=timedelta(minutes=1)
)
WEBHOOK = "http://backoffice.test/events"


async def _enqueue(
    database: Database, dossier_id: str, *labels: str, now: datetime = START
) -> None:
    async with database.transaction() as session:
        for label in labels:
            await enqueue(
                session,
                message_id=str(uuid.uuid4()),
                dossier_id=dossier_id,
                kind="event",
                message_type="nl.meeverhuizen.dossier.state-changed",
                body=json.dumps({"label": label}).encode(),
                now=now,
                policy=POLICY,
                destination_url=WEBHOOK,
            )


class Backoffice(httpx.AsyncBaseTransport):
    """Records each event's label; holds every answer until released; counts attempts in flight."""

    def __init__(self, *, hold: float = 0.0) -> None:
        self.hold = hold
        self.received: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.received.append(json.loads(await request.aread())["label"])
        self.arrived.set()
        try:
            await self.release.wait()
            await asyncio.sleep(self.hold)
        finally:
            self.in_flight -= 1
        return httpx.Response(204)


class FlakyBackoffice(Backoffice):
    """Answers 500 to the first attempt of the event labelled ``flaky``; holds ``slow``."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        label = json.loads(await request.aread())["label"]
        self.received.append(label)
        if label == "flaky" and self.received.count("flaky") == 1:
            return httpx.Response(500)
        if label == "slow":
            self.arrived.set()
            await self.release.wait()
        return httpx.Response(204)


def _outbox(
    database: Database,
    http: httpx.AsyncClient,
    clock: FrozenClock | None = None,
    policy: OutboxPolicy = POLICY,
) -> Outbox:
    async def delivered(*_args: object) -> None:
        return None

    return Outbox(
        database=database,
        directory=FakeDirectory(),
        http=http,
        clock=clock or FrozenClock(START),
        random=lambda: 1.0,
        private_jwk=generate_private_jwk("EdDSA"),
        verification=VerificationPolicy(receiver_oin=UTRECHT_OIN),
        policy=policy,
        on_delivered=delivered,
    )


async def test_messages_committed_during_a_pass_join_it(database: Database) -> None:
    backoffice = Backoffice()
    await _enqueue(database, str(uuid.uuid4()), "early")
    async with httpx.AsyncClient(transport=backoffice) as http:
        outbox = _outbox(database, http)
        passing = asyncio.create_task(outbox.deliver_due())
        await backoffice.arrived.wait()
        await _enqueue(database, str(uuid.uuid4()), "late")
        outbox.notify()
        backoffice.release.set()
        report = await asyncio.wait_for(passing, 10)
    assert report.delivered == 2  # one pass, both messages
    assert sorted(backoffice.received) == ["early", "late"]


async def test_no_more_than_the_concurrency_at_once_and_each_stream_in_order(
    database: Database,
) -> None:
    backoffice = Backoffice(hold=0.01)
    backoffice.release.set()
    streams = [str(uuid.uuid4()) for _ in range(_CONCURRENCY * 2)]
    for dossier_id in streams:
        await _enqueue(database, dossier_id, f"{dossier_id}:1", f"{dossier_id}:2")
    async with httpx.AsyncClient(transport=backoffice) as http:
        report = await _outbox(database, http).deliver_due()
    # The second message of every stream became due in the same pass, after its first.
    assert report.delivered == len(streams) * 2
    for dossier_id in streams:
        order = [label for label in backoffice.received if label.startswith(dossier_id)]
        assert order == [f"{dossier_id}:1", f"{dossier_id}:2"]
    assert backoffice.most_in_flight == _CONCURRENCY


async def _retry_recorded(database: Database) -> None:
    """Until the failed attempt is recorded (the pass signals nothing, so the table is read)."""
    while True:
        async with database.reading() as session:
            if await session.scalar(select(func.max(OutboxRow.attempts))) == 1:
                return
        await asyncio.sleep(0.01)


async def test_a_retry_that_becomes_due_joins_the_running_pass(database: Database) -> None:
    """A pass kept alive by a slow attempt still retries a failed message once it is due."""
    backoffice = FlakyBackoffice()
    clock = FrozenClock(START)
    await _enqueue(database, str(uuid.uuid4()), "flaky")
    await _enqueue(database, str(uuid.uuid4()), "slow")
    async with httpx.AsyncClient(transport=backoffice) as http:
        passing = asyncio.create_task(_outbox(database, http, clock).deliver_due())
        await backoffice.arrived.wait()
        await asyncio.wait_for(_retry_recorded(database), 10)
        clock.advance(POLICY.base_delay * 2)
        backoffice.release.set()
        report = await asyncio.wait_for(passing, 10)
    assert backoffice.received.count("flaky") == 2
    assert (report.delivered, report.retried) == (2, 1)


async def _dossier(database: Database, *, urgent: bool) -> str:
    dossier_id = str(uuid.uuid4())
    async with database.transaction() as session:
        session.add(
            DossierRow(
                id=dossier_id,
                side="receiving",
                state="decided",
                created_at=START,
                updated_at=START,
                urgent=urgent,
            )
        )
    return dossier_id


async def test_an_urgent_dossiers_messages_go_before_older_ones_in_their_own_order(
    database: Database,
) -> None:
    backoffice = Backoffice()
    backoffice.release.set()
    # A backlog: older messages of dossiers that are not urgent, and one without a dossier row.
    for label in ("old-1", "old-2", "old-3"):
        await _enqueue(database, await _dossier(database, urgent=False), label)
    await _enqueue(database, str(uuid.uuid4()), "no-dossier")
    later = START + timedelta(minutes=1)
    await _enqueue(
        database, await _dossier(database, urgent=True), "urgent-1", "urgent-2", now=later
    )
    # Two at a time: the first look of the pass holds the urgent dossier's head.
    policy = replace(POLICY, batch_size=2)
    async with httpx.AsyncClient(transport=backoffice) as http:
        report = await _outbox(database, http, FrozenClock(later), policy).deliver_due()
    assert report.delivered == 6
    assert backoffice.received[0] == "urgent-1"
    assert backoffice.received.index("urgent-1") < backoffice.received.index("urgent-2")
    # The others keep their age order among themselves.
    others = [label for label in backoffice.received if not label.startswith("urgent")]
    assert others == ["old-1", "old-2", "old-3", "no-dossier"]
