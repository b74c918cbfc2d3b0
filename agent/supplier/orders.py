"""The receiving gemeente's takeover orders: placed with a contracted supplier, followed to the end.

For every rented (``huur``) or lent (``bruikleen``) device it takes over, the gemeente orders the
supplier contracted for the device's ISO 9999 code on the move date (registry, preference order),
one order per device, with ``contactBefore`` = the 5th working day after the order date (that day
included, normenkader 2020). For a bruikleen device the order is a service order: the gemeente
owns the device and the supplier takes over its maintenance, repair and insurance. A refusal
moves the order to the next preferred supplier (new order id); with no supplier left, or none
contracted, a task for the gemeente - never a silent stop. When the move is cancelled or the
consent withdrawn, every supplier told of it is told to stop.

Registry look-ups are made before the inbound transaction (:meth:`OrderDesk.prepare`), so no
network call happens while the database is locked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.core.context import AgentContext
from agent.core.deadlines import Deadlines, cancel_deadlines, schedule_deadline
from agent.core.dossiers import Dossiers, lock_dossier, own_role
from agent.core.hooks import Hooks, StateChange
from agent.core.tasks import close_open_tasks, open_task
from agent.errors import DossierUnknown, SenderNotPermitted
from agent.register.names import person_name, the_device
from agent.storage.tables import DeadlineRow, DossierRow, OrderRow
from agent.supplier.order_bodies import names_in_order, stripped_order, takeover_order
from agent.supplier.progress import ProgressReports, reason_in_words
from agent.working_days import day_end, dutch_date_of
from protocol.messages import (
    Device,
    DeviceDecision,
    DossierCancelled,
    DossierOffer,
    Message,
    ProgressState,
    SupplierReference,
    SupplierStatus,
    TakeoverOrder,
)
from registry.errors import NoContract, ParticipantNotEnrolled, ParticipantUnknown, RegistryError
from registry.server_kit.dutch import dutch_date

__all__ = [
    "DONE",
    "ORDER_CONTACT_DEADLINE",
    "OrderDesk",
    "PlacedOrder",
    "ordered",
]

ORDER_CONTACT_DEADLINE: Final = "order-contact-overdue"
# A device is done for the gemeente when the supplier reports one of these.
DONE: Final = frozenset({"taken-over", "inspected", "replaced"})
_CONTACTED: Final = frozenset({"client-contacted"}) | DONE
_RECEIVING_SUPPLIER: Final = ("receiving-gemeente", "receiving-supplier")
# Messages to suppliers that a cancellation or withdrawal must follow, with the receiver's role.
_SUPPLIER_ROLES: Final = {
    "takeover-order": "receiving-supplier",
    "departure-notice": "departing-supplier",
}
Candidates = list[dict[str, str]]


class PlacedOrder(ApiModel):
    """An order as the receiving gemeente sees it (no personal data)."""

    order_id: str
    dossier_id: str
    device_id: str
    iso_code: str
    supplier_oin: str
    supplier_name: str
    attempt: int
    status: str
    active: bool
    contact_before: date
    overdue: bool
    last_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderDesk:
    """Places and follows the receiving gemeente's takeover orders."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers
        self.progress = ProgressReports(agent, dossiers=dossiers)
        # Contracted suppliers looked up before the inbound transaction, by dossier id.
        self._suppliers: dict[str, dict[str, Candidates | None]] = {}

    def register(self, hooks: Hooks, deadlines: Deadlines) -> None:
        """Add takeover orders to the core of a gemeente's agent."""
        hooks.prepare(self.prepare)
        hooks.on_decision(self.place_orders)
        hooks.on_state(self._orders_placed, "decided")
        hooks.handle("supplier-status", self.on_status)
        self.progress.register(hooks)
        hooks.on_state(self._withdrawn, "consent-withdrawn")
        hooks.on_cancel(self.forward_cancellation)
        deadlines.register(ORDER_CONTACT_DEADLINE, self._on_contact_deadline)

    # --- before the transaction -----------------------------------------------------------------

    async def prepare(self, message: Message) -> None:
        """The contracted suppliers an offer's rented devices will need, outside any transaction."""
        if not isinstance(message.body, DossierOffer):
            return
        offer = message.body
        self._suppliers[str(message.dossier_id)] = {
            device.iso_code: await self.contracted(offer, device.iso_code)
            for device in offer.devices
            if ordered(device)
        }

    async def contracted(self, offer: DossierOffer, iso_code: str) -> Candidates | None:
        """The suppliers the gemeente of the new address contracted for ``iso_code`` on the move
        date, most preferred first; None when the registry cannot answer."""
        try:
            suppliers = await self._agent.directory.contracted_suppliers(
                offer.client.new_address.gemeentecode, iso_code, offer.client.move_date
            )
        except (NoContract, ParticipantUnknown, ParticipantNotEnrolled):
            return []
        except RegistryError:
            # The decision does not wait for the registry: a person orders (task), see below.
            return None
        return _candidates(suppliers)

    # --- placing orders -------------------------------------------------------------------------

    async def place_orders(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        decision: DeviceDecision,
        now: datetime,
    ) -> DeviceDecision:
        """Order every rented device taken over; return the decision naming the suppliers."""
        prepared = self._suppliers.pop(dossier.id, None)
        taken_over = {i.device_id for i in decision.decisions if i.outcome == "take-over"}
        chosen: dict[str, SupplierReference] = {}
        unordered: list[Device] = []
        registry_down = False
        for device in offer.devices:
            if device.device_id not in taken_over or not ordered(device):
                continue
            candidates = (
                prepared.get(device.iso_code, [])
                if prepared is not None
                else await self.contracted(offer, device.iso_code)
            )
            if not candidates:
                unordered.append(device)
                registry_down = registry_down or candidates is None
                continue
            row = await self._place(
                session, dossier.id, candidates, 0, takeover_order(offer, device), now
            )
            chosen[device.device_id] = SupplierReference(
                oin=row.supplier_oin, name=row.supplier_name
            )
        if unordered:
            await self._no_supplier(session, dossier, offer, unordered, now, registry_down)
        tasked = {device.device_id for device in unordered}
        items = [
            item.model_copy(
                update={
                    "receiving_supplier": chosen.get(item.device_id),
                    "follow_up": "supplier-order"
                    if item.device_id in chosen
                    else "gemeente-task"
                    if item.device_id in tasked
                    else item.follow_up,
                }
            )
            for item in decision.decisions
        ]
        return decision.model_copy(update={"decisions": tuple(items)})

    async def _orders_placed(self, session: AsyncSession, change: StateChange) -> None:
        dossier = change.dossier
        if dossier.side != "receiving":
            return
        query = select(OrderRow).where(OrderRow.dossier_id == dossier.id)
        placed = list(await session.scalars(query))
        if placed:
            await self._dossiers.transition(
                session, dossier, "orders-placed", "takeover orders queued", change.now
            )
        for row in placed:  # after the decision, which names the suppliers
            await self.progress.report(session, row, "contact-planned", change.now)

    def contact_before(self, ordered_at: datetime, *, urgent: bool = False) -> date:
        """Last day (included) on which the supplier must contact the client.

        Urgent (the client cannot be without the device): the next working day.
        """
        order_day = dutch_date_of(ordered_at)
        days = 1 if urgent else self._agent.settings.takeover.contact_working_days
        return self._agent.calendar.add_working_days(order_day, days)

    async def _place(
        self,
        session: AsyncSession,
        dossier_id: str,
        candidates: Candidates,
        attempt: int,
        order: TakeoverOrder,
        now: datetime,
    ) -> OrderRow:
        supplier = candidates[attempt]
        # A new order id and contact date for every supplier asked.
        order = order.model_copy(
            update={
                "order_id": uuid.uuid4(),
                "contact_before": self.contact_before(now, urgent=order.urgent),
            }
        )
        device = order.devices[0]
        row = OrderRow(
            order_id=str(order.order_id),
            dossier_id=dossier_id,
            device_id=device.device_id,
            iso_code=device.iso_code,
            attempt=attempt,
            supplier_oin=supplier["oin"],
            supplier_name=supplier["name"],
            candidates=candidates,
            body=order.model_dump(mode="json", by_alias=True, exclude_none=True),
            status="placed",
            active=True,
            contact_before=order.contact_before,
            overdue=False,
            last_reason=None,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await self._agent.outgoing.message(
            session, dossier_id, order, now, to=row.supplier_oin, roles=_RECEIVING_SUPPLIER
        )
        await schedule_deadline(
            session,
            kind=ORDER_CONTACT_DEADLINE,
            subject=row.order_id,
            due_at=day_end(row.contact_before),
            now=now,
            dossier_id=dossier_id,
        )
        return row

    async def _no_supplier(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        devices: list[Device],
        now: datetime,
        registry_down: bool,
    ) -> None:
        why = (
            "Het register was niet bereikbaar om de leverancier te kiezen."
            if registry_down
            else "Wij hebben op de verhuisdatum geen leverancier met een contract voor dit "
            "soort hulpmiddel."
        )
        client = person_name(offer.client.name)
        for device in devices:  # one task per device: each names who acts for that device
            await open_task(
                session,
                "no-supplier",
                f"{client} neemt {the_device(device)} (ISO {device.iso_code}) mee naar onze "
                f"gemeente. {why} Zoek zelf een leverancier die het overneemt en bel {client} "
                "daarover.",
                now,
                dossier_id=dossier.id,
                device_id=device.device_id,
            )

    # --- status from the supplier ---------------------------------------------------------------

    async def on_status(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Apply a supplier's status to its order; a refusal moves on to the next supplier."""
        status = message.body
        assert isinstance(status, SupplierStatus)
        row = await session.get(OrderRow, str(status.order_id))
        if row is None:
            raise DossierUnknown("no order with this id was placed with the sender")
        if row.supplier_oin != message.sender.oin or row.dossier_id != str(message.dossier_id):
            # Suppliers speak only about the orders addressed to them (docs/protocol.md 7).
            raise SenderNotPermitted("this order was placed with another supplier")
        dossier = await lock_dossier(session, row.dossier_id)
        if dossier is None:
            raise DossierUnknown("the order's dossier is gone")
        if not row.active and row.status in ("cancelled", "withdrawn"):
            return  # the order was stopped; a late status changes nothing
        row.updated_at, previous = now, row.status
        if status.status == "refused":
            await self._refused(session, dossier, row, status, now)
        elif status.status == "problem":
            row.last_reason = status.reason_code
            client, what = names_in_order(row.body, row.device_id)
            await open_task(
                session,
                "supplier-problem",
                f"{row.supplier_name} meldt een probleem bij de overname van {what} van "
                f"{client}: {reason_in_words(status.reason_code)}. Bel {row.supplier_name} en "
                f"zorg samen dat {client} het hulpmiddel houdt of een ander krijgt.",
                now,
                dossier_id=dossier.id,
                device_id=row.device_id,
            )
            await self.progress.report(session, row, "problem", now, reason=status.reason_code)
        elif status.status in _CONTACTED or row.status == "placed":
            row.status = status.status
            if status.status in _CONTACTED:  # late, but it happened: nobody needs to chase it
                await close_open_tasks(
                    session,
                    row.dossier_id,
                    row.device_id,
                    ("supplier-overdue",),
                    done_by=row.supplier_name,
                    now=now,
                    note="De leverancier heeft alsnog contact opgenomen met de cliënt.",
                )
        if reached := _reached(previous, row.status):
            await self.progress.report(session, row, reached, now, on=status.occurred_at)
        await self.complete_when_done(session, dossier, now)

    async def _refused(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        row: OrderRow,
        status: SupplierStatus,
        now: datetime,
    ) -> None:
        row.status, row.active = "refused", False
        row.last_reason = status.reason_code
        following = row.attempt + 1
        if following < len(row.candidates):
            order = TakeoverOrder.model_validate(row.body)
            placed = await self._place(session, dossier.id, row.candidates, following, order, now)
            await self.progress.moved_on(session, dossier, placed, now)
            return
        client, what = names_in_order(row.body, row.device_id)
        await open_task(
            session,
            "supplier-refused",
            f"Geen leverancier met een contract wil {what} van {client} overnemen. De laatste "
            f"reden was: {reason_in_words(status.reason_code)}. Zoek zelf een leverancier die "
            f"het overneemt, of regel iets anders, en bel {client} daarover.",
            now,
            dossier_id=dossier.id,
            device_id=row.device_id,
        )
        await self.progress.report(session, row, "refused", now, reason=status.reason_code)

    async def complete_when_done(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        """Complete a dossier with orders once none is waiting for its supplier."""
        if dossier.state != "orders-placed":
            return
        waiting = await session.scalar(
            select(func.count())
            .select_from(OrderRow)
            .where(
                OrderRow.dossier_id == dossier.id,
                OrderRow.active.is_(True),
                OrderRow.status.not_in(tuple(DONE)),
            )
        )
        if not waiting:
            # Every order taken over, or handed to a person through a task.
            await self._dossiers.transition(
                session, dossier, "completed", "every order handled", now
            )

    async def _on_contact_deadline(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(OrderRow, deadline.subject)
        if row is None or not row.active or row.status in _CONTACTED:
            return
        row.overdue, row.updated_at = True, now
        self._agent.metrics.deadline_breached("supplier-contact")
        client, what = names_in_order(row.body, row.device_id)
        await open_task(
            session,
            "supplier-overdue",
            f"{row.supplier_name} moest uiterlijk op {dutch_date(row.contact_before)} contact "
            f"opnemen met {client} over {what}. Dat is niet gemeld. Bel {row.supplier_name} en "
            "zorg dat het alsnog gebeurt.",
            now,
            dossier_id=row.dossier_id,
            device_id=row.device_id,
        )
        await self.progress.report(session, row, "contact-overdue", now)

    # --- a changed decision for one device (agent.continuation.override) ------------------------

    async def order_device(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        device: Device,
        candidates: Candidates | None,
        now: datetime,
    ) -> OrderRow | None:
        """Order a device taken over after all, as on the decision; no supplier: a task."""
        if not candidates:
            await self._no_supplier(session, dossier, offer, [device], now, candidates is None)
            return None
        return await self._place(
            session, dossier.id, candidates, 0, takeover_order(offer, device), now
        )

    async def withdraw_device(
        self, session: AsyncSession, dossier: DossierRow, device_id: str, now: datetime
    ) -> None:
        """Stop the open order of a device no longer taken over; its supplier is told."""
        rows = await session.scalars(
            select(OrderRow).where(
                OrderRow.dossier_id == dossier.id,
                OrderRow.device_id == device_id,
                OrderRow.active.is_(True),
                OrderRow.status.not_in(tuple(DONE)),
            )
        )
        stop = DossierCancelled(reason="decision-changed", device_ids=(device_id,))
        for row in rows:
            row.status, row.active, row.updated_at = "cancelled", False, now
            await cancel_deadlines(session, subject=row.order_id, kinds=(ORDER_CONTACT_DEADLINE,))
            await self._agent.outgoing.message(
                session, dossier.id, stop, now, to=row.supplier_oin, roles=_RECEIVING_SUPPLIER
            )

    # --- cancellation and withdrawal: suppliers are told and orders stop ------------------------

    async def forward_cancellation(
        self, session: AsyncSession, dossier: DossierRow, cancelled: DossierCancelled, now: datetime
    ) -> None:
        """Tell every supplier that got an order or notice for the dossier that it is void."""
        await self._agent.outgoing.follow_up(
            session,
            dossier.id,
            cancelled,
            now,
            sender_role=own_role(dossier),
            receivers=_SUPPLIER_ROLES,
        )
        await self._stop_orders(session, dossier.id, "cancelled", now)

    async def _withdrawn(self, session: AsyncSession, change: StateChange) -> None:
        if change.dossier.side == "receiving":
            await self._stop_orders(session, change.dossier.id, "withdrawn", change.now, erase=True)

    async def _stop_orders(
        self,
        session: AsyncSession,
        dossier_id: str,
        status: str,
        now: datetime,
        *,
        erase: bool = False,
    ) -> None:
        """Stop the open orders of a dossier; ``erase`` also drops the client's data from each."""
        rows = await session.scalars(select(OrderRow).where(OrderRow.dossier_id == dossier_id))
        for row in rows:
            if row.active and row.status not in DONE:
                row.status, row.active, row.updated_at = status, False, now
                await cancel_deadlines(
                    session, subject=row.order_id, kinds=(ORDER_CONTACT_DEADLINE,)
                )
            if erase:
                row.body = stripped_order(row.body)

    # --- reading --------------------------------------------------------------------------------

    async def list(self, *, open_only: bool = False) -> list[PlacedOrder]:
        """Orders placed by this gemeente, oldest first; ``open_only``: active, not done."""
        query = select(OrderRow).order_by(OrderRow.created_at, OrderRow.attempt, OrderRow.order_id)
        if open_only:
            query = query.where(OrderRow.active.is_(True), OrderRow.status.not_in(tuple(DONE)))
        async with self._agent.database.reading() as session:
            return [PlacedOrder.model_validate(row) for row in await session.scalars(query)]


def _reached(previous: str, current: str) -> ProgressState | None:
    """What the client notices of a supplier's status: first the contact, then the takeover."""
    if current in DONE and previous not in DONE:
        return "taken-over"
    if current in _CONTACTED and previous not in _CONTACTED:
        return "client-contacted"
    return None


def ordered(device: Device) -> bool:
    """Whether the receiving gemeente orders a device it takes over from a supplier."""
    # Seed 000 section 3.1.4, afspraak 2: for rented devices the contracted supplier takes over;
    # for a lent (bruikleen) device it takes over maintenance, repair and insurance.
    return device.ownership in ("huur", "bruikleen") and device.movable


def _candidates(suppliers: Iterable[Any]) -> Candidates:
    return [{"oin": s.oin, "name": s.name} for s in suppliers]
