"""The supplier side with two gemeenten, suppliers, the real registry and ASGI transports.

Utrecht (departing) has the scootmobiel ``dev-1`` rented from Hulpmiddelen BV (the departing
supplier). Amsterdam (receiving) contracted Zorgtechniek (preference 1) and Revalidatie Noord
(preference 2) for ISO 12 23. The clock is frozen and moved by hand.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent.service import AgentService, ConsentInput, DossierStart
from agent.storage.tables import InboundMessageRow, OutboxRow
from protocol.clock import FrozenClock
from protocol.messages import Address, SettlementInputs, TakeoverOrder, parse_message
from protocol.settlement import residual_value_cents
from protocol.signing import sign_message
from registry.operator import OperatorClient
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    AUTH,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    REGISTRY,
    REGISTRY_TOKEN,
    START,
    UTRECHT_OIN,
    Network,
    agent_settings,
    databases,
    registry_network,
    supplier_settings,
)

DEPARTING_SUPPLIER = ("00000003123456780000", "12345678", "Hulpmiddelen BV", "hulpmiddelen")
PREFERRED = ("00000003876543210000", "87654321", "Zorgtechniek", "zorgtechniek")
NEXT = ("00000003112233440000", "11223344", "Revalidatie Noord", "noord")
SUPPLIERS = (DEPARTING_SUPPLIER, PREFERRED, NEXT)


@pytest.fixture
def database_urls(database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Six empty databases of the test's backend: registry, two gemeenten, three suppliers."""
    with databases(database_url, tmp_path, 6) as urls:
        yield urls


@dataclass
class World:
    network: Network
    http: httpx.AsyncClient
    clock: FrozenClock
    utrecht: AgentService
    amsterdam: AgentService
    suppliers: dict[str, AgentService]
    operator: OperatorClient

    @property
    def everyone(self) -> list[AgentService]:
        return [self.utrecht, self.amsterdam, *self.suppliers.values()]

    async def settle(self) -> None:
        for _ in range(30):
            delivered = 0
            for service in self.everyone:
                delivered += (await service.deliver_until_quiet()).delivered
            if not delivered:
                return

    async def fire_deadlines(self) -> None:
        for service in self.everyone:
            await service.deadlines.run_due()
        await self.settle()

    async def contract(self, supplier: tuple[str, ...], preference: int) -> None:
        await self.operator.add_contract(
            gemeentecode="0363",
            supplier_oin=supplier[0],
            iso_prefixes=["12 23"],
            valid_from=date(2025, 1, 1),
            preference=preference,
        )

    async def contract_preferred_then_next(self) -> None:
        """Amsterdam contracts Zorgtechniek (preference 1) and Revalidatie Noord (preference 2)."""
        await self.contract(PREFERRED, 1)
        await self.contract(NEXT, 2)

    async def hand_over(
        self,
        *,
        kinds: tuple[str, ...] | None = None,
        devices: tuple[str, ...] = ("dev-1",),
        imported: bool = False,
        new_address: Address = NEW_ADDRESS,
    ) -> str:
        """Consent for ``devices`` (default: the rented scootmobiel only) and settle.

        ``imported``: the test imported the register itself.
        """
        if not imported:
            await self.utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
        view = await self.utrecht.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=new_address)
        )
        consent = ConsentInput.model_validate(
            {
                "dataKinds": kinds or ("identity", "address", "devices", "indicatie"),
                "deviceIds": list(devices),
                "channel": "online",
                "givenBy": "client",
                "givenAt": self.clock.now().isoformat(),
            }
        )
        await self.utrecht.record_consent(view.dossier_id, consent)
        await self.settle()
        return view.dossier_id

    async def planner(self, supplier: tuple[str, ...], order_id: str, **status: Any) -> Any:
        host = supplier[3]
        answer = await self.http.post(
            f"http://{host}.test/v1/orders/{order_id}/status", json=status, headers=AUTH
        )
        assert answer.status_code == 200, answer.text
        await self.settle()
        return answer.json()

    async def orders_at(self, supplier: tuple[str, ...]) -> list[dict[str, Any]]:
        answer = await self.http.get(f"http://{supplier[3]}.test/v1/orders", headers=AUTH)
        assert answer.status_code == 200, answer.text
        result: list[dict[str, Any]] = answer.json()
        return result

    async def state(self, service: AgentService, dossier_id: str) -> str:
        return (await service.dossier(dossier_id)).state


@pytest.fixture
def takeover_settings() -> dict[str, dict[str, Any]]:
    """Per supplier host: TakeoverSettings fields (tests override to provoke a dispute)."""
    return {}


@pytest.fixture
def start_time() -> datetime:
    return START


@pytest.fixture
async def world(
    database_urls: list[str],
    takeover_settings: dict[str, dict[str, Any]],
    gemeente_settings: dict[str, dict[str, Any]],
    start_time: datetime,
) -> AsyncIterator[World]:
    clock = FrozenClock(start_time)
    async with registry_network(Network(), clock, database_urls[0]) as started:
        anchor = started.anchor
        settings = [
            agent_settings(
                url,
                gemeente=gemeente,
                registry_trust_anchor=anchor,
                **gemeente_settings.get(gemeente, {}),
            )
            for url, gemeente in ((database_urls[1], "utrecht"), (database_urls[2], "amsterdam"))
        ] + [
            supplier_settings(url, supplier, **takeover_settings.get(supplier[3], {})).model_copy(
                update={"registry_trust_anchor": anchor}
            )
            for url, supplier in zip(database_urls[3:], SUPPLIERS, strict=True)
        ]
        services = [await started.start_agent(one) for one in settings]
        yield World(
            network=started.network,
            http=started.http,
            clock=clock,
            utrecht=services[0],
            amsterdam=services[1],
            suppliers={s[3]: service for s, service in zip(SUPPLIERS, services[2:], strict=True)},
            operator=OperatorClient(REGISTRY, REGISTRY_TOKEN, http=started.http),
        )


def _transfer_day_start() -> datetime:
    # 1 April 2025 00:00 in Amsterdam (summer time): the settlement job's moment.
    return datetime(2025, 3, 31, 22, 0, tzinfo=UTC)


# --- the happy path ---------------------------------------------------------------------------


async def test_order_contact_takeover_and_settlement_accepted(world: World) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()

    # Receiving gemeente: one order for the rented scootmobiel, at the preferred supplier.
    assert await world.state(world.amsterdam, dossier_id) == "orders-placed"
    placed = await world.amsterdam.orders.list()
    assert [(o.device_id, o.supplier_oin, o.status) for o in placed] == [
        ("dev-1", PREFERRED[0], "received")
    ]
    # 3 March 2025 (Monday) + 5 working days = Monday 10 March, that day included.
    assert placed[0].contact_before == date(2025, 3, 10)

    # Departing gemeente: the notice to its own supplier is receipted, so it is completed.
    assert await world.state(world.utrecht, dossier_id) == "completed"
    leaving = await world.http.get("http://hulpmiddelen.test/v1/departing-devices", headers=AUTH)
    assert [
        (d["deviceId"], d["receivingSupplierOin"], d["effectiveDate"]) for d in leaving.json()
    ] == [("dev-1", PREFERRED[0], "2025-04-01")]

    # Supplier: the open order with its deadline; the planner records contact and takeover.
    [order] = await world.orders_at(PREFERRED)
    assert (order["status"], order["contactBefore"], order["overdue"]) == (
        "received",
        "2025-03-10",
        False,
    )
    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    assert (await world.amsterdam.orders.list())[0].status == "client-contacted"
    await world.planner(PREFERRED, order["orderId"], status="taken-over", deviceId="dev-1")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    assert await world.orders_at(PREFERRED) != []
    open_orders = await world.http.get("http://zorgtechniek.test/v1/orders?open=true", headers=AUTH)
    assert open_orders.json() == []

    # On the transfer date the departing supplier offers the residual value; it is accepted.
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    expected = residual_value_cents(
        SettlementInputs(
            purchase_price_cents=389000,
            purchase_date=date(2023, 5, 20),
            transfer_date=date(2025, 4, 1),
            economic_lifetime_months=72,
            floor_basis_points=1000,
            maintenance_state="good",
        )
    )
    assert expected == 270139  # 389000 * 50/72 (22 of 72 months used)
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    [received] = await world.suppliers["zorgtechniek"].supplier.settlements()
    assert (offered.direction, offered.state, offered.amount_cents) == (
        "offered",
        "accepted",
        expected,
    )
    assert (received.direction, received.state, received.counterparty_oin) == (
        "received",
        "accepted",
        DEPARTING_SUPPLIER[0],
    )


async def test_settlement_offer_before_takeover_waits_for_it(world: World) -> None:
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    [waiting] = await world.suppliers["zorgtechniek"].supplier.settlements()
    assert waiting.state == "waiting"  # first the takeover, then the money

    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    [settled] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert settled.state == "accepted"


@pytest.mark.parametrize(
    "takeover_settings", [{"hulpmiddelen": {"economic_lifetime_months": {"12 23": 60}}}]
)
async def test_settlement_disputed_with_reason_and_counter_amount(world: World) -> None:
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()

    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.amount_cents == 246367  # 389000 * 38/60 with the departing side's lifetime
    assert offered.state == "disputed"
    assert offered.reason_code == "inputs-incorrect"
    assert offered.reason_text is not None
    assert "economicLifetimeMonths" in offered.reason_text
    assert offered.counter_amount_cents == 270139  # the contract's 72 months
    tasks = await world.suppliers["hulpmiddelen"].tasks.list("open")
    assert [t.kind for t in tasks] == ["settlement-disputed"]


async def test_refusal_moves_the_order_to_the_next_supplier(world: World) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")

    placed = await world.amsterdam.orders.list()
    assert [(o.supplier_oin, o.status, o.active, o.attempt) for o in placed] == [
        (PREFERRED[0], "refused", False, 0),
        (NEXT[0], "received", True, 1),
    ]
    assert placed[1].order_id != placed[0].order_id
    [second] = await world.orders_at(NEXT)
    assert second["orderId"] == placed[1].order_id
    assert await world.state(world.amsterdam, dossier_id) == "orders-placed"
    assert await world.amsterdam.tasks.list("open") == []

    # The last supplier refuses too: a task for the gemeente, and the dossier is handled.
    await world.planner(NEXT, second["orderId"], status="refused", reasonCode="not-contracted")
    tasks = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    [refused] = [t for t in tasks if t.kind != "eigen-bijdrage-start"]
    assert (refused.kind, refused.device_id) == ("supplier-refused", "dev-1")
    assert refused.description == (
        "Geen leverancier met een contract wil de scootmobiel (Scootmobiel, vier wielen) van "
        "J. Jansen overnemen. De laatste reden was: de leverancier heeft geen contract voor dit "
        "hulpmiddel. Zoek zelf een leverancier die het overneemt, of regel iets anders, en bel "
        "J. Jansen daarover."
    )
    assert await world.state(world.amsterdam, dossier_id) == "completed"


async def test_no_supplier_contracted_gives_the_gemeente_a_task(world: World) -> None:
    dossier_id = await world.hand_over()
    assert await world.amsterdam.orders.list() == []
    tasks = [
        task
        for task in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
        if task.kind != "eigen-bijdrage-start"
    ]
    assert [t.kind for t in tasks] == ["no-supplier"]
    assert CLIENT_BSN not in tasks[0].description
    # Never a silent stop: the decision is receipted and the dossier completes with the task.
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    # The departing supplier is told anyway, without a receiving supplier.
    [leaving] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert (leaving.device_id, leaving.receiving_supplier_oin) == ("dev-1", None)


async def test_problem_status_gives_the_gemeente_a_task(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(
        PREFERRED, order["orderId"], status="problem", reasonCode="client-unreachable"
    )
    [task] = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    assert (task.kind, task.device_id) == ("supplier-problem", "dev-1")
    assert task.description == (
        "Zorgtechniek meldt een probleem bij de overname van de scootmobiel (Scootmobiel, vier "
        "wielen) van J. Jansen: de cliënt is niet bereikbaar. Bel Zorgtechniek en zorg samen dat "
        "J. Jansen het hulpmiddel houdt of een ander krijgt."
    )
    refused = await world.http.post(
        f"http://zorgtechniek.test/v1/orders/{order['orderId']}/status",
        json={"status": "problem"},
        headers=AUTH,
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:meeverhuizen:problem:order-status-refused"


# --- data minimisation ------------------------------------------------------------------------

_ORDER_FIELDS = {
    "orderId",
    "clientName",
    "address",
    "contactPreferences",
    "moveDate",
    "devices",
    "departingSupplier",
    "contactBefore",
    "urgent",
}


async def test_the_order_carries_no_bsn_indicatie_or_medical_data(world: World) -> None:
    await world.contract(PREFERRED, 1)
    everything = ("identity", "address", "devices", "indicatie", "functional-information")
    dossier_id = await world.hand_over(kinds=everything)
    async with world.suppliers["zorgtechniek"].database.reading() as session:
        [inbound] = (
            await session.scalars(
                select(InboundMessageRow).where(InboundMessageRow.message_type == "takeover-order")
            )
        ).all()
    raw = inbound.body
    document = json.loads(raw)
    body = document["body"]
    assert set(body) == _ORDER_FIELDS
    assert set(body["clientName"]) == {"initials", "surname"}
    assert set(body["address"]) == set(NEW_ADDRESS.model_dump(by_alias=True, exclude_none=True))
    assert set(body["contactPreferences"]) <= {
        "channels",
        "phoneNumber",
        "emailAddress",
        "language",
    }
    [device] = body["devices"]
    assert device["deviceId"] == "dev-1"
    TakeoverOrder.model_validate(body)
    # What the gemeente received and the supplier must never see:
    for secret in (CLIENT_BSN, "UTR-2023-0042", "Wmo 2015", "Loopt niet", "dev-2", "dev-3"):
        assert secret.encode() not in raw, secret
    for word in (b"bsn", b"indicatie", b"functional", b"medical", b"consent"):
        assert word not in raw.lower(), word
    # The gemeente's own copy in the outbox is the same minimal message.
    async with world.amsterdam.database.reading() as session:
        [queued] = (
            await session.scalars(
                select(OutboxRow).where(
                    OutboxRow.dossier_id == dossier_id, OutboxRow.message_type == "takeover-order"
                )
            )
        ).all()
    assert queued.body == raw


async def test_supplier_agent_refuses_gemeente_actions(world: World) -> None:
    answer = await world.http.get("http://amsterdam.test/v1/orders", headers=AUTH)
    assert answer.status_code == 409
    assert answer.json()["type"] == "urn:meeverhuizen:problem:wrong-role"
    placed = await world.http.get("http://zorgtechniek.test/v1/placed-orders", headers=AUTH)
    assert placed.status_code == 409
    unknown = await world.http.post(
        "http://zorgtechniek.test/v1/orders/8d3c1f0e-5a7b-4c1d-9e2f-0a1b2c3d4e5f/status",
        json={"status": "client-contacted"},
        headers=AUTH,
    )
    assert unknown.status_code == 404


# --- deadlines --------------------------------------------------------------------------------


def _breached(service: AgentService) -> float:
    value = service.metrics.registry.get_sample_value(
        "meeverhuizen_deadlines_breached_total", {"kind": "supplier-contact"}
    )
    return value or 0.0


@pytest.mark.parametrize("start_time", [datetime(2025, 5, 27, 9, 0, tzinfo=UTC)])
async def test_contact_deadline_escalates_across_ascension_day(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    # Tuesday 27 May 2025: Wed 28 (1), Ascension Day Thu 29 skipped, Fri 30 (2), Mon 2 June (3),
    # Tue 3 (4), Wed 4 June (5): contact before the end of Wednesday 4 June, Amsterdam time.
    [placed] = await world.amsterdam.orders.list()
    assert placed.contact_before == date(2025, 6, 4)
    [order] = await world.orders_at(PREFERRED)
    assert order["deadline"].startswith("2025-06-04T23:59:59")

    # End of Tuesday 3 June: the reminder, nothing overdue (a calendar count would be overdue).
    world.clock.set(datetime(2025, 6, 3, 22, 30, tzinfo=UTC))
    await world.fire_deadlines()
    supplier = world.suppliers["zorgtechniek"]
    assert [t.kind for t in await supplier.tasks.list("open")] == ["supplier-contact-due"]
    assert await world.amsterdam.tasks.list("open") == []
    assert not (await world.orders_at(PREFERRED))[0]["overdue"]
    assert _breached(supplier) == 0

    # Just after the end of Wednesday 4 June (22:00 UTC in summer time): escalation.
    world.clock.set(datetime(2025, 6, 4, 22, 0, 1, tzinfo=UTC))
    await world.fire_deadlines()
    assert (await world.orders_at(PREFERRED))[0]["overdue"] is True
    assert sorted(t.kind for t in await supplier.tasks.list("open")) == [
        "supplier-contact-due",
        "supplier-overdue",
    ]
    [task] = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    assert (task.kind, task.device_id) == ("supplier-overdue", "dev-1")
    assert task.description == (
        "Zorgtechniek moest uiterlijk op 4 juni 2025 contact opnemen met J. Jansen over de "
        "scootmobiel (Scootmobiel, vier wielen). Dat is niet gemeld. Bel Zorgtechniek en zorg "
        "dat het alsnog gebeurt."
    )
    assert (await world.amsterdam.orders.list())[0].overdue is True
    planner_tasks = {t.kind: t for t in await supplier.tasks.list("open")}
    assert planner_tasks["supplier-overdue"].order_id == order["orderId"]
    assert planner_tasks["supplier-overdue"].description == (
        "U moest uiterlijk op 4 juni 2025 contact opnemen met J. Jansen over de scootmobiel "
        "(Scootmobiel, vier wielen). Dat is niet gemeld. Bel J. Jansen vandaag en meld het "
        "contact daarna."
    )
    # Both sides count the breach in their metrics, once.
    assert _breached(supplier) == 1
    assert _breached(world.amsterdam) == 1
    overdue = await world.http.get("http://amsterdam.test/v1/placed-orders?open=true", headers=AUTH)
    assert [o["overdue"] for o in overdue.json()] == [True]


async def test_contact_in_time_cancels_the_escalation(world: World) -> None:
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    world.clock.set(START + timedelta(days=30))
    await world.fire_deadlines()
    assert [t.kind for t in await world.amsterdam.tasks.list("open")] == []
    assert await world.suppliers["zorgtechniek"].tasks.list("open") == []


async def test_a_late_contact_closes_the_gemeentes_overdue_task(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    world.clock.set(START + timedelta(days=30))
    await world.fire_deadlines()
    [overdue] = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    assert overdue.kind == "supplier-overdue"

    # The supplier calls the client after all: nobody needs to chase it any more.
    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    assert await world.amsterdam.tasks.list("open", dossier_id=dossier_id) == []
    [done] = await world.amsterdam.tasks.list("done", dossier_id=dossier_id)
    assert (done.id, done.done_by) == (overdue.id, "Zorgtechniek")
    assert done.note == "De leverancier heeft alsnog contact opgenomen met de cliënt."


async def test_the_planners_contact_tasks_close_when_the_contact_is_recorded(world: World) -> None:
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    supplier = world.suppliers["zorgtechniek"]
    world.clock.set(START + timedelta(days=30))
    await world.fire_deadlines()
    reminded = await supplier.tasks.list("open")
    assert sorted(t.kind for t in reminded) == ["supplier-contact-due", "supplier-overdue"]
    assert {t.order_id for t in reminded} == {order["orderId"]}

    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    assert await supplier.tasks.list("open") == []
    done = await supplier.tasks.list("done")
    assert {t.id for t in done} == {t.id for t in reminded}
    assert {t.note for t in done} == {"Er is contact opgenomen met de cliënt."}


# --- only about orders addressed to the sender ---------------------------------------------------


async def _send_as(
    world: World, sender: AgentService, to_host: str, document: dict[str, Any]
) -> httpx.Response:
    """Post ``document`` to an agent, signed with ``sender``'s own (valid) key."""
    signed = sign_message(
        parse_message(document), sender.settings.private_jwk(), signing_time=world.clock.now()
    )
    return await world.http.post(
        f"http://{to_host}.test/v1/messages", content=signed.body, headers=signed.headers()
    )


def _document(
    message_type: str,
    dossier_id: str,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    body: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "dossierId": dossier_id,
        "messageType": message_type,
        "protocolVersion": "1.0",
        "sender": {"oin": sender[0], "role": sender[1]},
        "receiver": {"oin": receiver[0], "role": receiver[1]},
        "createdAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": body,
    }


def _settlement_offer(*, amount_cents: int) -> dict[str, Any]:
    """A settlement offer body for dev-1 with a new settlement id."""
    return {
        "settlementId": str(uuid.uuid4()),
        "deviceId": "dev-1",
        "method": "linear-depreciation-v1",
        "inputs": {
            "purchasePriceCents": 100000,
            "purchaseDate": "2022-01-01",
            "transferDate": "2025-04-01",
            "economicLifetimeMonths": 60,
            "floorBasisPoints": 1000,
            "maintenanceState": "good",
        },
        "amountCents": amount_cents,
    }


async def _inbound_count(service: AgentService) -> int:
    async with service.database.reading() as session:
        return len(list(await session.scalars(select(InboundMessageRow.message_id))))


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"] == "urn:meeverhuizen:problem:sender-not-permitted"


async def test_a_supplier_cannot_report_on_another_suppliers_order(world: World) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    [order] = await world.amsterdam.orders.list()
    stored = await _inbound_count(world.amsterdam)
    status = {
        "orderId": order.order_id,
        "status": "taken-over",
        "occurredAt": world.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    document = _document(
        "supplier-status",
        dossier_id,
        (NEXT[0], "receiving-supplier"),
        (AMSTERDAM_OIN, "receiving-gemeente"),
        status,
        world.clock.now(),
    )
    _refused(await _send_as(world, world.suppliers["noord"], "amsterdam", document))
    assert (await world.amsterdam.orders.list())[0].status == "received"
    assert await _inbound_count(world.amsterdam) == stored


async def test_only_the_departing_supplier_named_in_the_order_may_settle(world: World) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    receiving = world.suppliers["zorgtechniek"]
    stored = await _inbound_count(receiving)
    offer = _settlement_offer(amount_cents=1)
    document = _document(
        "settlement-offer",
        dossier_id,
        (NEXT[0], "departing-supplier"),
        (PREFERRED[0], "receiving-supplier"),
        offer,
        world.clock.now(),
    )
    _refused(await _send_as(world, world.suppliers["noord"], "zorgtechniek", document))
    assert await _inbound_count(receiving) == stored


async def test_a_gemeente_cannot_stop_or_order_for_another_gemeentes_dossier(
    world: World,
) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    supplier = world.suppliers["zorgtechniek"]
    stored = await _inbound_count(supplier)
    cancel = _document(
        "dossier-cancelled",
        dossier_id,
        (UTRECHT_OIN, "receiving-gemeente"),
        (PREFERRED[0], "receiving-supplier"),
        {"reason": "move-cancelled"},
        world.clock.now(),
    )
    _refused(await _send_as(world, world.utrecht, "zorgtechniek", cancel))
    [order] = await world.orders_at(PREFERRED)
    assert order["status"] == "received"
    assert await _inbound_count(supplier) == stored


def _dossier_request(world: World, previous_gemeentecode: str) -> dict[str, Any]:
    """Amsterdam asks Utrecht's agent for the dossier of the client who moved to Amsterdam."""
    body = {
        "bsn": CLIENT_BSN,
        "moveDate": MOVE_DATE.isoformat(),
        "previousGemeentecode": previous_gemeentecode,
        "newAddress": NEW_ADDRESS.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return _document(
        "dossier-request",
        str(uuid.uuid4()),
        (AMSTERDAM_OIN, "receiving-gemeente"),
        (UTRECHT_OIN, "departing-gemeente"),
        body,
        world.clock.now(),
    )


async def test_a_regional_agent_answers_a_dossier_request_as_the_gemeente_the_client_left(
    world: World,
) -> None:
    # Utrecht's agent also serves Veenendaal (0345), where the client lived.
    await world.operator.assign_gemeenten(oin=UTRECHT_OIN, gemeentecodes=["0344", "0345"])
    await world.utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
    outside = await _send_as(world, world.amsterdam, "utrecht", _dossier_request(world, "0518"))
    assert outside.status_code == 422, outside.text
    assert outside.json()["type"] == "urn:meeverhuizen:problem:message-not-handled"
    assert await world.utrecht.list_dossiers() == []

    answer = await _send_as(world, world.amsterdam, "utrecht", _dossier_request(world, "0345"))
    assert answer.status_code == 200, answer.text
    [dossier] = await world.utrecht.list_dossiers()
    consent = ConsentInput.model_validate(
        {
            "dataKinds": ("identity", "address", "devices"),
            "deviceIds": ["dev-1"],
            "channel": "online",
            "givenBy": "client",
            "givenAt": world.clock.now().isoformat(),
        }
    )
    await world.utrecht.record_consent(dossier.dossier_id, consent)
    await world.settle()
    # The offer speaks for Veenendaal, and Amsterdam accepts it: the registry says Utrecht's
    # agent serves Veenendaal.
    async with world.amsterdam.database.reading() as session:
        offer = await session.scalar(
            select(InboundMessageRow.body).where(InboundMessageRow.message_type == "dossier-offer")
        )
    assert offer is not None
    assert json.loads(offer)["body"]["departingGemeentecode"] == "0345"


async def test_a_settlement_id_used_before_is_refused_without_an_internal_error(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    receiving = world.suppliers["zorgtechniek"]
    offer = _settlement_offer(amount_cents=80000)

    def offered() -> dict[str, Any]:
        return _document(
            "settlement-offer",
            dossier_id,
            (DEPARTING_SUPPLIER[0], "departing-supplier"),
            (PREFERRED[0], "receiving-supplier"),
            offer,
            world.clock.now(),
        )

    departing = world.suppliers["hulpmiddelen"]
    first = await _send_as(world, departing, "zorgtechniek", offered())
    assert first.status_code == 200, first.text
    stored = await _inbound_count(receiving)

    # Another message (a new message id) with the same settlement id: nothing of it applies.
    again = await _send_as(world, departing, "zorgtechniek", offered())
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["type"] == "urn:meeverhuizen:problem:identifier-reused"
    assert await _inbound_count(receiving) == stored
