"""Stopped moves and changed suppliers: two gemeenten, three suppliers, the registry.

A cancelled move or a withdrawn consent reaches every supplier that got an order or a departure
notice, which stops and deletes the client's data; a refusal that moves an order on tells the
departing supplier the new receiving supplier, so it settles with the right one.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import select

from agent.conformance.exchange import example_body
from agent.service import AgentService, ConsentInput, DossierStart
from agent.storage.tables import DossierRow, InboundMessageRow, OrderRow, OutboxRow
from protocol.messages import CancelReason
from tests.agent.conftest import AMSTERDAM_OIN, AUTH, CLIENT_BSN, DATA, MOVE_DATE, NEW_ADDRESS
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    NEXT,
    PREFERRED,
    World,
    _document,
    _send_as,
    _transfer_day_start,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

_PERSONAL = ("clientName", "address", "contactPreferences", "representative")


async def _decided_but_notice_unsent(world: World) -> str:
    """Hand over up to the moment the departing gemeente queued its departure notice."""
    utrecht, amsterdam = world.utrecht, world.amsterdam
    await utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
    view = await utrecht.start_dossier(
        DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
    )
    consent = ConsentInput.model_validate(
        {
            "dataKinds": ("identity", "address", "devices"),
            "deviceIds": ["dev-1"],
            "channel": "online",
            "givenBy": "client",
            "givenAt": world.clock.now().isoformat(),
        }
    )
    await utrecht.record_consent(view.dossier_id, consent)
    await utrecht.deliver_until_quiet()  # the offer
    await amsterdam.deliver_until_quiet()  # the takeover order and the decision
    assert await world.state(utrecht, view.dossier_id) == "orders-placed"
    return view.dossier_id


async def _order_bodies(world: World, dossier_id: str) -> list[dict[str, object]]:
    async with world.amsterdam.database.reading() as session:
        rows = await session.scalars(select(OrderRow).where(OrderRow.dossier_id == dossier_id))
        return [row.body for row in rows]


async def _received_orders(world: World, host: str) -> list[bytes]:
    async with world.suppliers[host].database.reading() as session:
        rows = await session.scalars(
            select(InboundMessageRow.body).where(InboundMessageRow.message_type == "takeover-order")
        )
        return list(rows)


async def _task_kinds(world: World, host: str) -> list[str]:
    return [task.kind for task in await world.suppliers[host].tasks.list("open")]


async def _cancel(
    world: World, gemeente: AgentService, dossier_id: str, *, reason: CancelReason, cause: str
) -> None:
    """The gemeente cancels the dossier, as on a BRP event, in one transaction."""
    async with gemeente.database.transaction() as session:
        dossier = await session.get(DossierRow, dossier_id)
        assert dossier is not None
        await gemeente.dossiers.cancel_in(
            session, dossier, reason=reason, cause=cause, now=world.clock.now()
        )


# --- dossier-cancelled ------------------------------------------------------------------------


async def test_a_cancelled_move_stops_both_suppliers(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await _decided_but_notice_unsent(world)
    await _cancel(world, world.utrecht, dossier_id, reason="move-cancelled", cause="BRP correction")
    await world.settle()

    # Receiving gemeente: cancelled, and its order with it; the supplier was told.
    assert await world.state(world.amsterdam, dossier_id) == "cancelled"
    [placed] = await world.amsterdam.orders.list()
    assert (placed.status, placed.active) == ("cancelled", False)
    # Receiving supplier: the order is stopped, the client's data gone, the planner has a task.
    [order] = await world.orders_at(PREFERRED)
    assert order["status"] == "cancelled"
    assert order["deviceStates"] == {"dev-1": "cancelled"}
    detail = await world.http.get(
        f"http://zorgtechniek.test/v1/orders/{order['orderId']}", headers=AUTH
    )
    assert not set(_PERSONAL) & set(detail.json()["order"])
    assert await _received_orders(world, "zorgtechniek") == [b""]
    assert await _task_kinds(world, "zorgtechniek") == ["order-stopped"]
    refused = await world.http.post(
        f"http://zorgtechniek.test/v1/orders/{order['orderId']}/status",
        json={"status": "client-contacted"},
        headers=AUTH,
    )
    assert refused.status_code == 409
    # Departing supplier: the device does not leave; no offer on the transfer date.
    [device] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert (device.device_id, device.state) == ("dev-1", "cancelled")
    assert await _task_kinds(world, "hulpmiddelen") == ["order-stopped"]

    # No deadline of the stopped order escalates, and no settlement is offered.
    world.clock.set(_transfer_day_start() + timedelta(days=1))
    await world.fire_deadlines()
    assert await world.amsterdam.tasks.list("open") == []
    assert await _task_kinds(world, "zorgtechniek") == ["order-stopped"]
    assert await world.suppliers["hulpmiddelen"].supplier.settlements() == []
    assert await world.suppliers["zorgtechniek"].supplier.settlements() == []


async def test_a_cancellation_received_by_the_receiving_gemeente_is_forwarded(
    world: World,
) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")
    await _cancel(world, world.amsterdam, dossier_id, reason="client-deceased", cause="BRP")
    await world.settle()

    # Both suppliers that received an order hear of it; the one that refused had nothing open.
    assert [o["status"] for o in await world.orders_at(PREFERRED)] == ["refused"]
    assert [o["status"] for o in await world.orders_at(NEXT)] == ["cancelled"]
    assert await _task_kinds(world, "noord") == ["order-stopped"]
    assert await _task_kinds(world, "zorgtechniek") == []
    # Each message that reached a supplier arrived once and signed (receipted outbox rows).
    outbox = await world.amsterdam.outbox.list()
    cancelled = sorted(
        row.destination_oin or ""
        for row in outbox
        if row.message_type == "dossier-cancelled" and row.state == "delivered"
    )
    assert cancelled == sorted([PREFERRED[0], NEXT[0], world.utrecht.settings.oin])
    # The departing gemeente had completed: it stays so, with a task, and tells its supplier.
    assert await world.state(world.utrecht, dossier_id) == "completed"
    tasks = await world.utrecht.tasks.list("open", dossier_id=dossier_id)
    assert [t.kind for t in tasks if t.kind == "manual-check"] == ["manual-check"]
    [device] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert device.state == "cancelled"


# --- consent-withdrawn ------------------------------------------------------------------------


async def test_a_withdrawn_consent_stops_the_order_and_erases_the_client(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    await world.utrecht.consent.withdraw(dossier_id)
    await world.settle()

    assert await world.state(world.amsterdam, dossier_id) == "consent-withdrawn"
    # The receiving gemeente keeps no name or address in its order either.
    [body] = await _order_bodies(world, dossier_id)
    assert not set(_PERSONAL) & set(body)
    [placed] = await world.amsterdam.orders.list()
    assert (placed.status, placed.active) == ("withdrawn", False)
    [order] = await world.orders_at(PREFERRED)
    assert order["status"] == "withdrawn"
    raw = json.dumps(order)
    assert "Damrak" not in raw
    assert CLIENT_BSN not in raw
    assert await _received_orders(world, "zorgtechniek") == [b""]
    assert await _task_kinds(world, "zorgtechniek") == ["order-stopped"]
    [device] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert device.state == "withdrawn"

    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    assert await world.suppliers["hulpmiddelen"].supplier.settlements() == []
    assert await world.amsterdam.tasks.list("open") == []


async def test_a_device_already_taken_over_is_kept_after_a_withdrawal(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    await world.utrecht.consent.withdraw(dossier_id)
    await world.settle()

    # Serviced under the receiving gemeente's contract now: the order stays as it was.
    [kept] = await world.orders_at(PREFERRED)
    assert kept["status"] == "taken-over"
    assert await _task_kinds(world, "zorgtechniek") == []


# --- a refusal moves the order: the departing side learns the new supplier --------------------


async def test_the_departing_supplier_settles_with_the_supplier_that_took_over(
    world: World,
) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    departing = world.suppliers["hulpmiddelen"].supplier
    [before] = await departing.departing_devices()
    assert before.receiving_supplier_oin == PREFERRED[0]

    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")

    # The receiving gemeente sent an updated decision; the departing gemeente a new notice.
    [after] = await departing.departing_devices()
    assert (after.receiving_supplier_oin, after.receiving_supplier_name) == (NEXT[0], NEXT[2])
    assert await world.state(world.utrecht, dossier_id) == "completed"
    notices = [
        row for row in await world.utrecht.outbox.list() if row.message_type == "departure-notice"
    ]
    assert [row.state for row in notices] == ["delivered", "delivered"]

    [second] = await world.orders_at(NEXT)
    await world.planner(NEXT, second["orderId"], status="taken-over")
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    [offered] = await departing.settlements()
    assert (offered.counterparty_oin, offered.state) == (NEXT[0], "accepted")
    assert await world.suppliers["zorgtechniek"].supplier.settlements() == []
    assert await world.suppliers["hulpmiddelen"].tasks.list("open") == []


async def test_an_offer_made_before_the_refusal_is_superseded(world: World) -> None:
    await world.contract_preferred_then_next()
    await world.hand_over()
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()  # offered to the first supplier, which has not taken over yet
    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")
    [second] = await world.orders_at(NEXT)
    await world.planner(NEXT, second["orderId"], status="taken-over")
    await world.fire_deadlines()

    settlements = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert sorted((s.counterparty_oin, s.state) for s in settlements) == sorted(
        [(PREFERRED[0], "superseded"), (NEXT[0], "accepted")]
    )


# --- a device stopped in an order for several ---------------------------------------------------


async def test_a_device_the_gemeente_stopped_in_an_order_for_two_takes_no_status(
    world: World,
) -> None:
    """Another vendor's gemeente orders two devices in one order, then stops one of them."""
    dossier_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = example_body("takeover-order")
    device = body["devices"][0]
    body["devices"] = [device | {"deviceId": "A-1"}, device | {"deviceId": "A-2"}]
    body["orderId"] = order_id
    body["address"]["gemeentecode"] = "0363"
    sender, receiver = (AMSTERDAM_OIN, "receiving-gemeente"), (PREFERRED[0], "receiving-supplier")
    now = world.clock.now()
    order = _document("takeover-order", dossier_id, sender, receiver, body, now)
    assert (await _send_as(world, world.amsterdam, "zorgtechniek", order)).status_code == 200
    stop = {"reason": "decision-changed", "deviceIds": ["A-1"]}
    cancelled = _document("dossier-cancelled", dossier_id, sender, receiver, stop, now)
    assert (await _send_as(world, world.amsterdam, "zorgtechniek", cancelled)).status_code == 200

    refused = await world.http.post(
        f"http://zorgtechniek.test/v1/orders/{order_id}/status",
        json={"status": "taken-over", "deviceId": "A-1"},
        headers=AUTH,
    )
    assert refused.status_code == 409
    assert "device A-1" in refused.json()["detail"]
    assert "stopped by the gemeente" in refused.json()["detail"]
    # Taken over as a whole: the device that went on; the order is done.
    await world.planner(PREFERRED, order_id, status="taken-over")
    [done] = [o for o in await world.orders_at(PREFERRED) if o["orderId"] == order_id]
    assert done["status"] == "taken-over"
    async with world.suppliers["zorgtechniek"].database.reading() as session:
        bodies = await session.scalars(
            select(OutboxRow.body).where(
                OutboxRow.message_type == "supplier-status", OutboxRow.dossier_id == dossier_id
            )
        )
        sent = [json.loads(b)["body"] for b in bodies if b]
    assert [(s["status"], s.get("deviceId")) for s in sent] == [
        ("received", None),
        ("taken-over", "A-2"),
    ]
