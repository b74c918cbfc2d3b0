"""Outbox group commit: outcomes of one pass share transactions; one bad outcome spoils none."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.delivery.outbox import Outbox
from agent.delivery.outgoing import OutboxPolicy, enqueue
from agent.storage.database import Database
from agent.storage.tables import DeliveryAttemptRow, OutboxRow
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk
from protocol.signing import VerificationPolicy
from tests.agent.conftest import START, UTRECHT_OIN, FakeDirectory

POLICY = OutboxPolicy(
    max_age=timedelta(hours=1), base_delay=timedelta(seconds=2), max_delay=timedelta(minutes=1)
)
WEBHOOK = "http://backoffice.test/events"
COUNT = 5


class Poisoned(Exception):
    """Raised by the delivered hook for one message."""


async def _enqueue_events(database: Database, clock: FrozenClock) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(COUNT)]
    async with database.transaction() as session:
        for message_id in ids:
            await enqueue(
                session,
                message_id=message_id,
                dossier_id=str(uuid.uuid4()),
                kind="event",
                message_type="nl.meeverhuizen.dossier.state-changed",
                body=b"{}",
                now=clock.now(),
                policy=POLICY,
                destination_url=WEBHOOK,
            )
    return ids


def _barrier_transport() -> httpx.MockTransport:
    # Every request waits until all have arrived, so all outcomes are ready at once.
    arrived = 0
    everyone = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        if arrived == COUNT:
            everyone.set()
        await everyone.wait()
        return httpx.Response(204)

    return httpx.MockTransport(answer)


def _outbox(database: Database, http: httpx.AsyncClient, clock: FrozenClock, hook: Any) -> Outbox:
    return Outbox(
        database=database,
        directory=FakeDirectory(),
        http=http,
        clock=clock,
        random=lambda: 1.0,
        private_jwk=generate_private_jwk("EdDSA"),
        verification=VerificationPolicy(receiver_oin=UTRECHT_OIN),
        policy=POLICY,
        on_delivered=hook,
    )


async def _states(database: Database) -> tuple[dict[str, str], dict[str, int]]:
    async with database.reading() as session:
        rows = (await session.scalars(select(OutboxRow))).all()
        attempts = (await session.scalars(select(DeliveryAttemptRow))).all()
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.message_id] = counts.get(attempt.message_id, 0) + 1
    return {row.message_id: row.state for row in rows}, counts


async def test_outcomes_ready_together_are_committed_together(database: Database) -> None:
    clock = FrozenClock(START)
    ids = await _enqueue_events(database, clock)
    sessions: set[int] = set()
    commits = 0

    def count_commit(_connection: Any) -> None:
        nonlocal commits
        commits += 1

    async def hook(session: AsyncSession, row: OutboxRow, now: Any) -> None:
        sessions.add(id(session))

    event.listen(database.engine.sync_engine, "commit", count_commit)
    async with httpx.AsyncClient(transport=_barrier_transport()) as http:
        report = await _outbox(database, http, clock, hook).deliver_due()
    assert report.delivered == COUNT
    # One claim transaction, then fewer record transactions than messages.
    assert len(sessions) < COUNT
    assert commits < 1 + COUNT
    states, attempts = await _states(database)
    assert states == dict.fromkeys(ids, "delivered")
    assert attempts == dict.fromkeys(ids, 1)


async def test_a_failing_outcome_does_not_undo_the_others(database: Database) -> None:
    clock = FrozenClock(START)
    ids = await _enqueue_events(database, clock)
    poisoned = ids[2]

    async def hook(session: AsyncSession, row: OutboxRow, now: Any) -> None:
        if row.message_id == poisoned:
            raise Poisoned

    async with httpx.AsyncClient(transport=_barrier_transport()) as http:
        with pytest.raises(Poisoned):
            await _outbox(database, http, clock, hook).deliver_due()
    states, attempts = await _states(database)
    # The poisoned outcome is rolled back alone: it stays pending and is tried again later.
    assert states == {m: "pending" if m == poisoned else "delivered" for m in ids}
    assert attempts == {m: 1 for m in ids if m != poisoned}
