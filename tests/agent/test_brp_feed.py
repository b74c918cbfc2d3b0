"""Pull: 10,000 BRP events through the feed: duplicates, reordering, a lost page, a restart."""

from __future__ import annotations

import json
import logging
import random
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from agent.local.brp_simulator import (
    BrpSimulator,
    create_simulator_app,
    generate_feed,
    push_events,
)
from agent.local.synthetic import synthetic_bsns
from agent.settings import hash_token
from agent.storage.tables import Base, FeedCursorRow
from tests.agent.conftest import DATA, Agents

FEED = "http://brp.test/gebeurtenissen"
_NINE_DIGITS = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")


def _register(bsns: list[str]) -> bytes:
    template = json.loads((DATA / "clients.json").read_text(encoding="utf-8"))[0]
    return json.dumps([template | {"bsn": bsn} for bsn in bsns]).encode()


def _out_of_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    generator = random.Random(7)
    feed = list(events)
    for start in range(0, len(feed), 50):  # out of order within windows of 50
        window = feed[start : start + 50]
        generator.shuffle(window)
        feed[start : start + 50] = window
    return feed


async def _all_text(agents: Agents) -> str:
    parts = []
    async with agents.departing.database.reading() as session:
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608
            parts.extend(repr(tuple(row)) for row in rows)
    return "\n".join(parts)


@pytest.fixture
async def feed(agents: Agents) -> BrpSimulator:
    simulator = BrpSimulator()
    agents.network.routes["brp.test"] = httpx.ASGITransport(app=create_simulator_app(simulator))
    agents.departing.settings.brp_feed_page_size = 100
    return simulator


async def test_ten_thousand_events_start_exactly_one_dossier_per_relevant_move(
    agents: Agents, feed: BrpSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent")
    clients = [bsn for _, bsn in zip(range(100), synthetic_bsns(300_000_000), strict=False)]
    await agents.departing.import_provisions(_register(clients), "json")
    events = generate_feed(10_000, gemeentecode="0344", clients=clients)
    feed.publish(*_out_of_order(events))
    # Duplicates: 300 events (a third of them about clients) came pushed before the feed is read.
    agents.departing.settings.brp_token_sha256 = hash_token("brp-token-0123456789")
    generator = random.Random(3)
    again = (
        generator.sample(events, 270)
        + [e for e in events if e["data"]["burgerservicenummer"] in clients][:30]
    )
    statuses = await push_events(
        agents.http, "http://utrecht.test/v1/brp-events", "brp-token-0123456789", again
    )
    assert set(statuses) == {202}
    first = agents.departing.feed_reader(FEED, http=agents.http)
    report = await first.read(max_pages=40)
    assert report.pages == 40
    assert not report.failed

    # A page is lost on the way (the feed marked it read); then the agent restarts.
    async def lose_one(request: httpx.Request) -> httpx.Response | None:
        agents.network.fault = None
        await agents.network.routes["brp.test"].handle_async_request(request)
        raise httpx.ReadError("connection lost", request=request)

    agents.network.fault = lose_one
    assert (await first.read()).failed
    restarted = agents.departing.feed_reader(FEED, http=agents.http)
    rest = await restarted.read()
    assert not rest.failed
    assert report.events + rest.events == len(feed.events)
    assert report.duplicates + rest.duplicates == len({e["id"] for e in again})

    dossiers = await agents.departing.list_dossiers()
    assert len(dossiers) == len(clients)
    async with agents.departing.database.reading() as session:
        moved = sorted(await session.scalars(text("SELECT client_bsn FROM dossiers")))
        cursor = await session.get(FeedCursorRow, FEED)
    assert moved == sorted(clients)
    assert cursor is not None
    assert cursor.last_event_id == feed.events[-1]["id"]

    # No BSN of anyone without provisions: not in any table, not in the logs.
    stored = set(_NINE_DIGITS.findall(await _all_text(agents)))
    others = {e["data"]["burgerservicenummer"] for e in events} - set(clients)
    assert stored & others == set()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert set(_NINE_DIGITS.findall(logged)) & (others | set(clients)) == set()


async def test_the_feed_being_down_backs_off_without_crashing(
    agents: Agents, feed: BrpSimulator
) -> None:
    feed.down = True
    reader = agents.departing.feed_reader(FEED, http=agents.http)
    assert (await reader.read()).failed
    feed.down = False
    assert (await reader.read()).pages == 0  # still waiting out the backoff
    agents.clock.advance(timedelta(seconds=6))
    assert not (await reader.read()).failed


async def test_events_marked_unread_are_recognised_as_duplicates(
    agents: Agents, feed: BrpSimulator
) -> None:
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    feed.publish(*generate_feed(30, gemeentecode="0344", clients=["999993653"]))
    await agents.departing.feed_reader(FEED, http=agents.http).read()
    feed.mark_unread(after_event_id=feed.events[4]["id"])
    async with agents.departing.database.transaction() as session:
        await session.execute(select(FeedCursorRow).limit(1))
        row = await session.get(FeedCursorRow, FEED)
        assert row is not None
        await session.delete(row)  # the consumer lost its cursor (restored backup)
    again = await agents.departing.feed_reader(FEED, http=agents.http).read()
    assert again.events == 25
    assert again.duplicates == 25
    assert len(await agents.departing.list_dossiers()) == 1
