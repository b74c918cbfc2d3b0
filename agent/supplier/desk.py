"""The supplier's desk: takeover orders received, departure notices, and the planner's status.

A supplier agent keeps no register of provisions. It stores the orders it receives and answers
``received`` at once; its planner records contact and takeover (API, CLI), each sent to the
gemeente as a signed ``supplier-status`` through the outbox. Contact is due by the end of the
order's ``contactBefore`` day (normenkader 2020: 5 working days); a reminder fires one working
day before, and a passed deadline flags the order overdue and opens a task. A departure notice
records a device leaving this supplier's contract and schedules its settlement
(``agent.supplier.settlement``).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Final, Literal

from pydantic import AliasChoices, Field, computed_field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.core.context import AgentContext
from agent.core.deadlines import Deadlines, schedule_deadline
from agent.core.hooks import Hooks
from agent.core.tasks import TaskKind, close_order_tasks, open_task
from agent.errors import MessageNotHandled, OrderStatusRefused, OrderUnknown
from agent.storage.tables import (
    DeadlineRow,
    DepartingDeviceRow,
    SettlementRow,
    SupplierOrderRow,
)
from agent.supplier.order_bodies import names_in_order
from agent.supplier.orders import DONE
from agent.supplier.senders import check_gemeente
from agent.supplier.settlement import SETTLEMENT_DUE, Settlement, Settlements
from agent.supplier.settlement_answers import SettlementAnswers
from agent.supplier.stops import STOPPED, SupplierStops
from agent.working_days import AMSTERDAM, day_end
from protocol.messages import (
    DepartureNotice,
    Message,
    SupplierStatus,
    TakeoverOrder,
)
from registry.server_kit.dutch import dutch_date

__all__ = [
    "CONTACT_OVERDUE",
    "CONTACT_REMINDER",
    "DepartingDevice",
    "PlannerStatus",
    "ReceivedOrder",
    "SupplierDesk",
]

CONTACT_REMINDER: Final = "supplier-contact-reminder"
CONTACT_OVERDUE: Final = "supplier-contact-overdue"
# Processing log activities of the planner in the werkbak.
ORDERS_VIEWED: Final = "werkbak-orders-viewed"
ORDER_VIEWED: Final = "werkbak-order-viewed"
ORDER_CHANGED: Final = "werkbak-order-changed"
PlannerStatus = Literal[
    "client-contacted", "taken-over", "inspected", "replaced", "problem", "refused"
]
_DEVICE_DONE: Final = DONE
_CLOSED: Final = frozenset({"refused", "taken-over"}) | STOPPED
_ROLES_TO_GEMEENTE: Final = ("receiving-supplier", "receiving-gemeente")
# The planner's tasks about an order's contact, done once the order is no longer waiting for it.
_CONTACT_TASKS: Final[tuple[TaskKind, ...]] = ("supplier-contact-due", "supplier-overdue")
_STATUS_NOTES: Final = {
    "client-contacted": "Er is contact opgenomen met de cliënt.",
    "refused": "De opdracht is geweigerd.",
    "taken-over": "Het hulpmiddel is overgenomen.",
}


class ReceivedOrder(ApiModel):
    """An order as the supplier's planner sees it, with its contact deadline."""

    order_id: str
    dossier_id: str
    gemeente_oin: str
    status: str
    device_states: dict[str, str]
    contact_before: date
    overdue: bool
    received_at: datetime
    updated_at: datetime
    # The order as received: the client's name, address and contact preferences.
    order: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("order", "body")
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def deadline(self) -> datetime:
        """The end of the contact day, Amsterdam time."""
        return day_end(self.contact_before)


class DepartingDevice(ApiModel):
    """Departing supplier: a device that leaves its contract."""

    dossier_id: str
    device_id: str
    iso_code: str
    serial_number: str | None
    contract_reference: str | None
    effective_date: date
    receiving_gemeentecode: str
    receiving_supplier_oin: str | None
    receiving_supplier_name: str | None
    # leaving; cancelled or withdrawn when the gemeente stopped the move (it stays, no offer).
    state: str


class SupplierDesk:
    """The supplier's side of the protocol and its planner's actions."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent
        self._settlements = Settlements(agent)
        # A planner's answers to offers received, when the supplier answers them by hand.
        self.settlement_answers = SettlementAnswers(agent, self._settlements)

    def register(self, hooks: Hooks, deadlines: Deadlines) -> None:
        """Add the supplier role to the core: what a supplier agent receives, and its deadlines."""
        hooks.handle("takeover-order", self._on_order)
        hooks.handle("departure-notice", self._on_notice)
        SupplierStops(
            contact_deadlines=(CONTACT_REMINDER, CONTACT_OVERDUE), contact_tasks=_CONTACT_TASKS
        ).register(hooks)
        self._settlements.register(hooks, deadlines)
        self.settlement_answers.register(deadlines)
        deadlines.register(CONTACT_REMINDER, self._on_reminder)
        deadlines.register(CONTACT_OVERDUE, self._on_overdue)

    # --- inbound --------------------------------------------------------------------------------

    async def _on_order(self, session: AsyncSession, message: Message, now: datetime) -> None:
        order = message.body
        assert isinstance(order, TakeoverOrder)
        order_id = str(order.order_id)
        await check_gemeente(session, str(message.dossier_id), message.sender.oin, notices=False)
        if await session.get(SupplierOrderRow, order_id) is not None:
            raise MessageNotHandled("this order was received before")
        row = SupplierOrderRow(
            order_id=order_id,
            dossier_id=str(message.dossier_id),
            gemeente_oin=message.sender.oin,
            body=order.model_dump(mode="json", by_alias=True, exclude_none=True),
            status="received",
            device_states={device.device_id: "received" for device in order.devices},
            contact_before=order.contact_before,
            overdue=False,
            received_at=now,
            updated_at=now,
        )
        session.add(row)
        await self._send_status(session, row, "received", now)
        await self._settlements.order_arrived(session, row, now)
        reminder_day = self._agent.calendar.add_working_days(
            order.contact_before, -self._agent.settings.takeover.reminder_working_days_before
        )
        for kind, due in (
            (CONTACT_REMINDER, day_end(reminder_day)),
            (CONTACT_OVERDUE, day_end(order.contact_before)),
        ):
            await schedule_deadline(
                session, kind=kind, subject=order_id, due_at=due, now=now, dossier_id=None
            )

    async def _on_notice(self, session: AsyncSession, message: Message, now: datetime) -> None:
        notice = message.body
        assert isinstance(notice, DepartureNotice)
        dossier_id = str(message.dossier_id)
        await check_gemeente(session, dossier_id, message.sender.oin, orders=False)
        receiving = notice.receiving_supplier
        for device in notice.devices:
            known = await self._departing_row(session, dossier_id, device.device_id)
            if known is not None and known.state != "in-use":
                # A later notice: the receiving supplier changed after a refusal.
                await self._update_receiver(session, known, notice, now)
                continue
            # New, or in continued use until now: the latest notice per device wins, so the
            # receiving gemeente took the device over after all (docs/supplier.md).
            row = known or DepartingDeviceRow(
                dossier_id=dossier_id, gemeente_oin=message.sender.oin, device_id=device.device_id
            )
            row.iso_code, row.serial_number = device.iso_code, device.serial_number
            row.contract_reference = device.contract_reference
            row.purchase_date = device.purchase_date
            row.purchase_price_cents = device.purchase_price_cents
            row.effective_date = notice.effective_date
            row.receiving_gemeentecode = notice.receiving_gemeentecode
            row.receiving_supplier_oin = receiving.oin if receiving else None
            row.receiving_supplier_name = receiving.name if receiving else None
            row.received_at, row.state = now, "leaving"
            session.add(row)
            if device.ownership == "bruikleen":
                continue  # the gemeente owns it: no takeover price between suppliers
            # "Eerst doen, daarna praten over geld": the offer goes on the effective date.
            start = datetime.combine(notice.effective_date, time.min, tzinfo=AMSTERDAM)
            await schedule_deadline(
                session,
                kind=SETTLEMENT_DUE,
                subject=f"{dossier_id}:{device.device_id}",
                due_at=start,
                now=now,
            )

    @staticmethod
    async def _departing_row(
        session: AsyncSession, dossier_id: str, device_id: str
    ) -> DepartingDeviceRow | None:
        return await session.scalar(
            select(DepartingDeviceRow).where(
                DepartingDeviceRow.dossier_id == dossier_id,
                DepartingDeviceRow.device_id == device_id,
            )
        )

    async def _update_receiver(
        self,
        session: AsyncSession,
        row: DepartingDeviceRow,
        notice: DepartureNotice,
        now: datetime,
    ) -> None:
        receiving = notice.receiving_supplier
        new_oin = receiving.oin if receiving else None
        if row.state != "leaving" or new_oin == row.receiving_supplier_oin:
            return
        previous = row.receiving_supplier_oin
        row.receiving_supplier_oin = new_oin
        row.receiving_supplier_name = receiving.name if receiving else None
        # An offer already made to the supplier that refused is void; a new one follows.
        offered = await session.scalars(
            select(SettlementRow).where(
                SettlementRow.dossier_id == row.dossier_id,
                SettlementRow.device_id == row.device_id,
                SettlementRow.direction == "offered",
                SettlementRow.counterparty_oin == previous,
            )
        )
        for settlement in offered:
            settlement.state, settlement.updated_at = "superseded", now
        start = datetime.combine(row.effective_date, time.min, tzinfo=AMSTERDAM)
        await schedule_deadline(
            session,
            kind=SETTLEMENT_DUE,
            subject=f"{row.dossier_id}:{row.device_id}",
            due_at=max(start, now),
            now=now,
        )

    # --- planner ------------------------------------------------------------------------------

    async def record_status(
        self,
        order_id: str,
        status: PlannerStatus,
        *,
        device_id: str | None = None,
        reason_code: str | None = None,
        reason_text: str | None = None,
        actor: str | None = None,
    ) -> ReceivedOrder:
        """Record the planner's status of an order (or one device) and tell the gemeente.

        ``actor``: the werkbak user who records it; the change is a processing log record.
        """
        self._supplier_only()
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            row = await session.get(SupplierOrderRow, order_id)
            if row is None:
                raise OrderUnknown(f"no order {order_id}")
            _check_status(row, status, device_id)
            if status in ("problem", "refused") and reason_code is None:
                raise OrderStatusRefused(f"status {status} needs a reason code")
            named = _named_devices(row, status, device_id)
            self._apply_status(row, status, device_id, now)
            if row.status != "received":  # contacted, refused or done: nobody needs reminding
                await close_order_tasks(
                    session,
                    row.order_id,
                    _CONTACT_TASKS,
                    done_by=actor or self._agent.settings.name,
                    now=now,
                    note=_STATUS_NOTES.get(row.status, "De opdracht wacht niet meer op contact."),
                )
            for device in named:
                await self._send_status(session, row, status, now, device, reason_code, reason_text)
            if status in _DEVICE_DONE:
                await self._settlements.answer_waiting_offers(session, row, now)
            if actor is not None:
                await self._agent.log.record_order(
                    session, ORDER_CHANGED, row.dossier_id, now, actor=actor
                )
            return ReceivedOrder.model_validate(row)

    @staticmethod
    def _apply_status(
        row: SupplierOrderRow, status: str, device_id: str | None, now: datetime
    ) -> None:
        states = dict(row.device_states)
        if status in _DEVICE_DONE:
            going_on = [device for device, state in states.items() if state not in STOPPED]
            for device in [device_id] if device_id else going_on:
                states[device] = status
            # Done when every device the gemeente did not stop is done.
            done = all(states[device] in _DEVICE_DONE for device in going_on)
            row.status = "taken-over" if done else row.status
        elif status in ("client-contacted", "refused"):
            row.status = status
        row.device_states, row.updated_at = states, now

    async def _send_status(
        self,
        session: AsyncSession,
        row: SupplierOrderRow,
        status: str,
        now: datetime,
        device_id: str | None = None,
        reason_code: str | None = None,
        reason_text: str | None = None,
    ) -> None:
        body = SupplierStatus.model_validate(
            {
                "orderId": row.order_id,
                "deviceId": device_id,
                "status": status,
                "occurredAt": now,
                "reasonCode": reason_code,
                "reasonText": reason_text,
            }
        )
        await self._agent.outgoing.message(
            session, row.dossier_id, body, now, to=row.gemeente_oin, roles=_ROLES_TO_GEMEENTE
        )

    def _supplier_only(self) -> None:
        if self._agent.settings.role != "supplier":
            raise OrderStatusRefused("only a supplier agent records order status")

    # --- deadlines ----------------------------------------------------------------------------

    async def _on_reminder(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SupplierOrderRow, deadline.subject)
        if row is None or row.status != "received":
            return
        client, what = _names(row)
        await open_task(
            session,
            "supplier-contact-due",
            f"Neem uiterlijk op {dutch_date(row.contact_before)} contact op met {client} "
            f"over {what}. Spreek dan af wanneer u het hulpmiddel overneemt.",
            now,
            order_id=row.order_id,
            due_at=day_end(row.contact_before),
        )

    async def _on_overdue(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SupplierOrderRow, deadline.subject)
        if row is None or row.status != "received":
            return
        row.overdue, row.updated_at = True, now
        self._agent.metrics.deadline_breached("supplier-contact")
        client, what = _names(row)
        await open_task(
            session,
            "supplier-overdue",
            f"U moest uiterlijk op {dutch_date(row.contact_before)} contact opnemen met "
            f"{client} over {what}. Dat is niet gemeld. Bel {client} vandaag en meld het "
            "contact daarna.",
            now,
            order_id=row.order_id,
        )

    # --- reading ------------------------------------------------------------------------------

    async def orders(
        self, *, open_only: bool = False, viewer: str | None = None
    ) -> list[ReceivedOrder]:
        """Orders received, soonest deadline first; ``open_only``: not refused nor taken over.

        ``viewer``: the werkbak user who sees the list (each client's name); one processing log
        record per order shown.
        """
        query = select(SupplierOrderRow).order_by(
            SupplierOrderRow.contact_before, SupplierOrderRow.received_at
        )
        if open_only:
            query = query.where(SupplierOrderRow.status.not_in(tuple(_CLOSED)))
        database, now = self._agent.database, self._agent.clock.now()
        async with database.transaction() if viewer else database.reading() as session:
            rows = list(await session.scalars(query))
            for row in rows if viewer is not None else ():
                await self._agent.log.record_order(
                    session, ORDERS_VIEWED, row.dossier_id, now, actor=viewer
                )
            return [ReceivedOrder.model_validate(row) for row in rows]

    async def order(self, order_id: str, *, viewer: str | None = None) -> ReceivedOrder:
        """One order with the client's contact details; a werkbak ``viewer``'s look is logged."""
        database, log = self._agent.database, self._agent.log
        async with database.transaction() if viewer else database.reading() as session:
            row = await session.get(SupplierOrderRow, order_id)
            if row is None:
                raise OrderUnknown(f"no order {order_id}")
            if viewer is not None:
                now = self._agent.clock.now()
                await log.record_order(session, ORDER_VIEWED, row.dossier_id, now, actor=viewer)
            return ReceivedOrder.model_validate(row)

    async def departing_devices(self) -> list[DepartingDevice]:
        """Devices leaving this supplier's contract, by effective date."""
        query = select(DepartingDeviceRow).order_by(
            DepartingDeviceRow.effective_date, DepartingDeviceRow.id
        )
        async with self._agent.database.reading() as session:
            return [DepartingDevice.model_validate(row) for row in await session.scalars(query)]

    async def settlements(self) -> list[Settlement]:
        """Settlements offered and received, oldest first."""
        return await self._settlements.list()


def _named_devices(row: SupplierOrderRow, status: str, device_id: str | None) -> list[str | None]:
    """The devices the status message names: the one given, or none (the whole order).

    A takeover of an order the gemeente stopped in part names each device that went on, so the
    gemeente never reads a stopped device as taken over.
    """
    going_on = [device for device, state in row.device_states.items() if state not in STOPPED]
    if (
        device_id is not None
        or status not in _DEVICE_DONE
        or len(going_on) == len(row.device_states)
    ):
        return [device_id]
    return list(going_on)


def _check_status(row: SupplierOrderRow, status: str, device_id: str | None) -> None:
    if row.status in _CLOSED:
        raise OrderStatusRefused(f"order {row.order_id} is {row.status}")
    if status == "refused" and row.status != "received":
        raise OrderStatusRefused("an order can only be refused before the client is contacted")
    if device_id is not None and device_id not in row.device_states:
        raise OrderStatusRefused(f"device {device_id} is not in order {row.order_id}")
    if device_id is not None and row.device_states[device_id] in STOPPED:
        raise OrderStatusRefused(
            f"device {device_id} of order {row.order_id} was stopped by the gemeente "
            f"({row.device_states[device_id]})"
        )


def _names(row: SupplierOrderRow) -> tuple[str, str]:
    """The client and the device of an order (one device each), as the planner's task says."""
    return names_in_order(row.body, next(iter(row.device_states)))
