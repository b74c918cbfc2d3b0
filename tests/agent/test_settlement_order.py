"""A takeover price offer that overtakes its takeover order waits for it, then is accepted.

The world of ``test_supplier_flow``: the real registry, two gemeenten and three suppliers over
HTTP (ASGI transports). The order from Amsterdam to Zorgtechniek is held back by the network
until after the transfer date, so Hulpmiddelen BV's offer arrives first. The handover starts
half an hour before the transfer day (1 April 2025, Amsterdam time), so the held order is still
being retried when the offer goes out.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from agent.storage.tables import DeadlineRow
from agent.supplier.settlement import ORDER_AWAITED
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    DEPARTING_SUPPLIER,
    PREFERRED,
    World,
    _transfer_day_start,
    database_urls,
    start_time,
    takeover_settings,
    world,
)


async def _hold(request: httpx.Request) -> httpx.Response | None:
    """The network holds back every takeover order to Zorgtechniek (503: retried later)."""
    to_supplier = request.url.host == "zorgtechniek.test" and request.url.path == "/v1/messages"
    if to_supplier and json.loads(request.content)["messageType"] == "takeover-order":
        return httpx.Response(503)
    return None


_EVE_OF_TRANSFER = [datetime(2025, 3, 31, 21, 30, tzinfo=UTC)]


@pytest.mark.parametrize("start_time", _EVE_OF_TRANSFER)
async def test_offer_before_the_order_waits_and_is_accepted_after_takeover(world: World) -> None:
    await world.contract(PREFERRED, 1)
    world.network.fault = _hold
    await world.hand_over()
    zorgtechniek = world.suppliers["zorgtechniek"]
    assert await zorgtechniek.supplier.orders() == []

    # The transfer date: the departing supplier offers; no order has reached Zorgtechniek.
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    [waiting] = await zorgtechniek.supplier.settlements()
    assert (waiting.state, waiting.counterparty_oin) == ("waiting", DEPARTING_SUPPLIER[0])
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.state == "offered"  # not disputed
    assert await world.suppliers["hulpmiddelen"].tasks.list("open") == []

    # The order comes through on a retry; the offer now waits for the takeover.
    world.network.fault = None
    world.clock.set(world.clock.now() + timedelta(minutes=15))
    await world.settle()
    [order] = await world.orders_at(PREFERRED)
    async with zorgtechniek.database.reading() as session:
        awaited = (
            await session.scalars(select(DeadlineRow).where(DeadlineRow.kind == ORDER_AWAITED))
        ).all()
    assert [row.state for row in awaited] == ["cancelled"]

    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    [received] = await zorgtechniek.supplier.settlements()
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert (received.state, offered.state) == ("accepted", "accepted")
    assert await world.suppliers["hulpmiddelen"].tasks.list("open") == []


@pytest.mark.parametrize("start_time", _EVE_OF_TRANSFER)
async def test_an_order_that_never_comes_ends_the_wait_with_a_dispute(world: World) -> None:
    await world.contract(PREFERRED, 1)
    world.network.fault = _hold
    await world.hand_over()
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()

    # Ten working days after 1 April 2025 (Easter Monday 21 April is a holiday): 15 April.
    world.clock.set(_transfer_day_start() + timedelta(days=15))
    await world.fire_deadlines()
    [received] = await world.suppliers["zorgtechniek"].supplier.settlements()
    assert received.state == "disputed"
    assert "10 werkdagen" in (received.reason_text or "")
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.state == "disputed"
    tasks = await world.suppliers["hulpmiddelen"].tasks.list("open")
    assert [task.kind for task in tasks] == ["settlement-disputed"]


async def test_a_supplier_on_both_sides_settles_no_price_with_itself(world: World) -> None:
    # The receiving gemeente contracts the departing supplier: the device stays in its stock.
    await world.contract(DEPARTING_SUPPLIER, 1)
    await world.hand_over()
    hulpmiddelen = world.suppliers["hulpmiddelen"]
    [order] = await world.orders_at(DEPARTING_SUPPLIER)
    await world.planner(DEPARTING_SUPPLIER, order["orderId"], status="taken-over")

    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    await world.settle()
    assert await hulpmiddelen.supplier.settlements() == []
    outbox = await hulpmiddelen.outbox.list(None)
    assert "settlement-offer" not in {entry.message_type for entry in outbox}
    assert [entry for entry in outbox if entry.state == "dead"] == []
    assert await hulpmiddelen.tasks.list("open") == []
