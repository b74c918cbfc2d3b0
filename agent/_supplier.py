"""The supplier role: takeover orders, departure notices, status, deadlines, settlement (issue 7).

A supplier agent keeps no register of provisions. It stores the orders it receives and answers
``received`` at once; its planner records contact and takeover (API, CLI), each sent to the
gemeente as a signed ``supplier-status`` through the outbox. Contact is due by the end of the
order's ``contactBefore`` day (normenkader 2020: 5 working days); a reminder fires one working
day before, and a passed deadline flags the order overdue and opens a task.

Settlement (verhuisconvenant, docs/settlement.md): on the effective date of a departure notice
the departing supplier offers the residual value to the receiving supplier named in it; the
receiving supplier recomputes it with its own contract inputs once it has taken the device over,
and accepts or disputes with a reason and a counter amount.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agent._db import Base, Database, InboundMessageRow
from agent._deadlines import DeadlineRow, Deadlines, cancel_deadlines, schedule_deadline
from agent._metrics import AgentMetrics
from agent._orders import day_end, enqueue_protocol_message, stripped_order
from agent._outbox import OutboxPolicy
from agent._tasks import open_task
from agent.errors import MessageNotHandled, OrderStatusRefused, OrderUnknown
from agent.settings import AgentSettings
from agent.working_days import WorkingDayCalendar
from protocol.clock import Clock
from protocol.errors import UnknownSettlementMethod
from protocol.messages import (
    ConsentWithdrawn,
    DepartureNotice,
    DossierCancelled,
    Message,
    SettlementAccept,
    SettlementDispute,
    SettlementInputs,
    SettlementOffer,
    SupplierStatus,
    TakeoverOrder,
)
from protocol.settlement import economic_lifetime_months, residual_value_cents

__all__ = [
    "CONTACT_OVERDUE",
    "CONTACT_REMINDER",
    "SETTLEMENT_DUE",
    "DepartingDevice",
    "PlannerStatus",
    "ReceivedOrder",
    "Settlement",
    "SupplierDesk",
]

CONTACT_REMINDER = "supplier-contact-reminder"
CONTACT_OVERDUE = "supplier-contact-overdue"
SETTLEMENT_DUE = "settlement-offer-due"
_METHOD = "linear-depreciation-v1"
_ZONE = ZoneInfo("Europe/Amsterdam")
PlannerStatus = Literal[
    "client-contacted", "taken-over", "inspected", "replaced", "problem", "refused"
]
_DEVICE_DONE = frozenset({"taken-over", "inspected", "replaced"})
# Stopped by the gemeente (dossier-cancelled, consent-withdrawn): nothing more is recorded.
_STOPPED = frozenset({"cancelled", "withdrawn"})
_CLOSED = frozenset({"refused", "taken-over"}) | _STOPPED
_ROLES_TO_GEMEENTE = ("receiving-supplier", "receiving-gemeente")
_OFFER_ROLES = ("departing-supplier", "receiving-supplier")
_ANSWER_ROLES = ("receiving-supplier", "departing-supplier")


class SupplierOrderRow(Base):
    """Supplier: a takeover order received, with its status per device."""

    __tablename__ = "supplier_orders"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(String(36), index=True)
    gemeente_oin: Mapped[str] = mapped_column(String(20))
    # The order as received (wire form): what the planner needs to contact the client.
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    device_states: Mapped[dict[str, Any]]
    contact_before: Mapped[date]
    overdue: Mapped[bool]
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DepartingDeviceRow(Base):
    """Departing supplier: a device that leaves its contract (from a departure notice)."""

    __tablename__ = "departing_devices"
    __table_args__ = (UniqueConstraint("dossier_id", "device_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(String(36), index=True)
    gemeente_oin: Mapped[str] = mapped_column(String(20))
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    serial_number: Mapped[str | None] = mapped_column(String(200))
    contract_reference: Mapped[str | None] = mapped_column(String(200))
    purchase_date: Mapped[date | None]
    purchase_price_cents: Mapped[int | None]
    effective_date: Mapped[date]
    receiving_gemeentecode: Mapped[str] = mapped_column(String(4))
    receiving_supplier_oin: Mapped[str | None] = mapped_column(String(20))
    receiving_supplier_name: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    # leaving; cancelled or withdrawn when the gemeente stopped the move (it stays, no offer).
    state: Mapped[str] = mapped_column(String(12), default="leaving")


class SettlementRow(Base):
    """A takeover price offered (departing supplier) or received (receiving supplier)."""

    __tablename__ = "settlements"

    settlement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    dossier_id: Mapped[str] = mapped_column(String(36), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    counterparty_oin: Mapped[str] = mapped_column(String(20))
    offer_message_id: Mapped[str | None] = mapped_column(String(36))
    method: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]]
    amount_cents: Mapped[int]
    state: Mapped[str] = mapped_column(String(12))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(String(2000))
    counter_amount_cents: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class ReceivedOrder:
    """An order as the supplier's planner sees it, with its contact deadline."""

    order_id: str
    dossier_id: str
    gemeente_oin: str
    status: str
    device_states: dict[str, str]
    contact_before: date
    deadline: datetime
    overdue: bool
    received_at: datetime
    updated_at: datetime
    order: dict[str, Any]


@dataclass(frozen=True)
class DepartingDevice:
    """A device leaving this supplier's contract."""

    dossier_id: str
    device_id: str
    iso_code: str
    serial_number: str | None
    contract_reference: str | None
    effective_date: date
    receiving_gemeentecode: str
    receiving_supplier_oin: str | None
    receiving_supplier_name: str | None
    state: str


@dataclass(frozen=True)
class Settlement:
    """A settlement offered or received, and how it stands."""

    settlement_id: str
    direction: str
    dossier_id: str
    device_id: str
    counterparty_oin: str
    method: str
    inputs: dict[str, Any]
    amount_cents: int
    state: str
    reason_code: str | None
    reason_text: str | None
    counter_amount_cents: int | None


class SupplierDesk:
    """The supplier's side of the protocol and its planner's actions."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        database: Database,
        policy: OutboxPolicy,
        calendar: WorkingDayCalendar,
        deadlines: Deadlines,
        clock: Clock,
        metrics: AgentMetrics,
    ) -> None:
        self._settings = settings
        self._database = database
        self._policy = policy
        self._calendar = calendar
        self._clock = clock
        self._metrics = metrics
        deadlines.register(CONTACT_REMINDER, self._on_reminder)
        deadlines.register(CONTACT_OVERDUE, self._on_overdue)
        deadlines.register(SETTLEMENT_DUE, self._on_settlement_due)

    # --- inbound ------------------------------------------------------------------------------

    async def apply(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Apply an inbound order, notice or settlement message."""
        if self._settings.role != "supplier":
            raise MessageNotHandled(f"only a supplier agent receives {message.message_type}")
        body = message.body
        if isinstance(body, TakeoverOrder):
            await self._on_order(session, message, body, now)
        elif isinstance(body, DepartureNotice):
            await self._on_notice(session, message, body, now)
        elif isinstance(body, SettlementOffer):
            await self._on_offer(session, message, body, now)
        elif isinstance(body, SettlementAccept | SettlementDispute):
            await self._on_answer(session, message, body, now)
        elif isinstance(body, DossierCancelled | ConsentWithdrawn):
            stop = "cancelled" if isinstance(body, DossierCancelled) else "withdrawn"
            await self._on_stop(session, message, stop, now)
        else:
            raise MessageNotHandled(f"{message.message_type} is not handled by a supplier")

    async def _on_order(
        self, session: AsyncSession, message: Message, order: TakeoverOrder, now: datetime
    ) -> None:
        order_id = str(order.order_id)
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
        reminder_day = self._calendar.add_working_days(
            order.contact_before, -self._settings.takeover.reminder_working_days_before
        )
        for kind, due in (
            (CONTACT_REMINDER, day_end(reminder_day)),
            (CONTACT_OVERDUE, day_end(order.contact_before)),
        ):
            await schedule_deadline(
                session, kind=kind, subject=order_id, due_at=due, now=now, dossier_id=None
            )

    async def _on_notice(
        self, session: AsyncSession, message: Message, notice: DepartureNotice, now: datetime
    ) -> None:
        dossier_id = str(message.dossier_id)
        receiving = notice.receiving_supplier
        for device in notice.devices:
            known = await self._departing_row(session, dossier_id, device.device_id)
            if known is not None:
                # A later notice: the receiving supplier changed after a refusal (issue 7).
                await self._update_receiver(session, known, notice, now)
                continue
            session.add(
                DepartingDeviceRow(
                    dossier_id=dossier_id,
                    gemeente_oin=message.sender.oin,
                    device_id=device.device_id,
                    iso_code=device.iso_code,
                    serial_number=device.serial_number,
                    contract_reference=device.contract_reference,
                    purchase_date=device.purchase_date,
                    purchase_price_cents=device.purchase_price_cents,
                    effective_date=notice.effective_date,
                    receiving_gemeentecode=notice.receiving_gemeentecode,
                    receiving_supplier_oin=receiving.oin if receiving else None,
                    receiving_supplier_name=receiving.name if receiving else None,
                    received_at=now,
                    state="leaving",
                )
            )
            # "Eerst doen, daarna praten over geld": the offer goes on the effective date.
            start = datetime.combine(notice.effective_date, time.min, tzinfo=_ZONE)
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
        start = datetime.combine(row.effective_date, time.min, tzinfo=_ZONE)
        await schedule_deadline(
            session,
            kind=SETTLEMENT_DUE,
            subject=f"{row.dossier_id}:{row.device_id}",
            due_at=max(start, now),
            now=now,
        )

    # --- stopped by the gemeente ----------------------------------------------------------------

    async def _on_stop(
        self, session: AsyncSession, message: Message, stop: str, now: datetime
    ) -> None:
        """The move is void or the consent withdrawn: stop, and delete the client's data."""
        dossier_id, gemeente = str(message.dossier_id), message.sender.oin
        orders = await session.scalars(
            select(SupplierOrderRow).where(
                SupplierOrderRow.dossier_id == dossier_id,
                SupplierOrderRow.gemeente_oin == gemeente,
            )
        )
        stopped = [row for row in orders if await self._stop_order(session, row, stop, now)]
        await _erase_received_orders(session, dossier_id, {row.order_id for row in stopped})
        devices = await session.scalars(
            select(DepartingDeviceRow).where(
                DepartingDeviceRow.dossier_id == dossier_id,
                DepartingDeviceRow.gemeente_oin == gemeente,
                DepartingDeviceRow.state == "leaving",
            )
        )
        staying = list(devices)
        for device in staying:
            device.state = stop
            await cancel_deadlines(
                session, subject=f"{dossier_id}:{device.device_id}", kinds=(SETTLEMENT_DUE,)
            )
        if stopped or staying:
            await open_task(
                session,
                kind="order-stopped",
                description=_stop_description(stop, stopped, staying),
                now=now,
            )

    async def _stop_order(
        self, session: AsyncSession, row: SupplierOrderRow, stop: str, now: datetime
    ) -> bool:
        # A device already taken over is now serviced under the gemeente's contract: kept.
        if row.status in ("refused", "taken-over") or row.status in _STOPPED:
            return False
        row.status, row.updated_at = stop, now
        row.device_states = {
            device: state if state in _DEVICE_DONE else stop
            for device, state in row.device_states.items()
        }
        row.body = stripped_order(row.body)
        await cancel_deadlines(
            session, subject=row.order_id, kinds=(CONTACT_REMINDER, CONTACT_OVERDUE)
        )
        return True

    # --- planner ------------------------------------------------------------------------------

    async def record_status(
        self,
        order_id: str,
        status: PlannerStatus,
        *,
        device_id: str | None = None,
        reason_code: str | None = None,
        reason_text: str | None = None,
    ) -> ReceivedOrder:
        """Record the planner's status of an order (or one device) and tell the gemeente."""
        self._supplier_only()
        now = self._clock.now()
        async with self._database.transaction() as session:
            row = await session.get(SupplierOrderRow, order_id)
            if row is None:
                raise OrderUnknown(f"no order {order_id}")
            _check_status(row, status, device_id)
            if status in ("problem", "refused") and reason_code is None:
                raise OrderStatusRefused(f"status {status} needs a reason code")
            self._apply_status(row, status, device_id, now)
            await self._send_status(session, row, status, now, device_id, reason_code, reason_text)
            if status in _DEVICE_DONE:
                await self._answer_waiting_offers(session, row, now)
            return _received(row)

    @staticmethod
    def _apply_status(
        row: SupplierOrderRow, status: str, device_id: str | None, now: datetime
    ) -> None:
        states = dict(row.device_states)
        if status in _DEVICE_DONE:
            for device in [device_id] if device_id else list(states):
                states[device] = status
            done = all(state in _DEVICE_DONE for state in states.values())
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
        await enqueue_protocol_message(
            session,
            settings=self._settings,
            policy=self._policy,
            dossier_id=row.dossier_id,
            receiver_oin=row.gemeente_oin,
            roles=_ROLES_TO_GEMEENTE,
            body=body,
            now=now,
        )

    def _supplier_only(self) -> None:
        if self._settings.role != "supplier":
            raise OrderStatusRefused("only a supplier agent records order status")

    # --- deadlines ----------------------------------------------------------------------------

    async def _on_reminder(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SupplierOrderRow, deadline.subject)
        if row is None or row.status != "received":
            return
        await open_task(
            session,
            kind="supplier-contact-due",
            description=(
                f"Order {row.order_id}: neem uiterlijk {row.contact_before.isoformat()} "
                "contact op met de cliënt."
            ),
            now=now,
            due_at=day_end(row.contact_before),
        )

    async def _on_overdue(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SupplierOrderRow, deadline.subject)
        if row is None or row.status != "received":
            return
        row.overdue, row.updated_at = True, now
        self._metrics.deadline_breached("supplier-contact")
        await open_task(
            session,
            kind="supplier-overdue",
            description=(
                f"Order {row.order_id}: de termijn voor contact met de cliënt is verlopen op "
                f"{row.contact_before.isoformat()}."
            ),
            now=now,
        )

    async def _on_settlement_due(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        dossier_id, _, device_id = deadline.subject.partition(":")
        device = await session.scalar(
            select(DepartingDeviceRow).where(
                DepartingDeviceRow.dossier_id == dossier_id,
                DepartingDeviceRow.device_id == device_id,
            )
        )
        if device is None or device.state != "leaving":
            return
        inputs = self._offer_inputs(device)
        if inputs is None or device.receiving_supplier_oin is None:
            await open_task(
                session,
                kind="manual-check",
                description=(
                    f"Hulpmiddel {device.device_id} verlaat het contract op "
                    f"{device.effective_date.isoformat()}; ontvangende leverancier of "
                    "aankoopgegevens onbekend: regel de overnameprijs zelf."
                ),
                now=now,
            )
            return
        await self._offer(session, device, device.receiving_supplier_oin, inputs, now)

    def _offer_inputs(self, device: DepartingDeviceRow) -> SettlementInputs | None:
        if device.purchase_price_cents is None or device.purchase_date is None:
            return None
        if device.purchase_date > device.effective_date:
            return None
        return self._inputs(
            device.iso_code,
            device.purchase_price_cents,
            device.purchase_date,
            device.effective_date,
            self._settings.takeover.maintenance_state,
        )

    def _inputs(
        self,
        iso_code: str,
        price_cents: int,
        purchase_date: date,
        transfer_date: date,
        maintenance_state: str,
    ) -> SettlementInputs:
        takeover = self._settings.takeover
        return SettlementInputs.model_validate(
            {
                "purchasePriceCents": price_cents,
                "purchaseDate": purchase_date,
                "transferDate": transfer_date,
                "economicLifetimeMonths": economic_lifetime_months(
                    iso_code, takeover.economic_lifetime_months
                ),
                "floorBasisPoints": takeover.floor_basis_points,
                "maintenanceState": maintenance_state,
            }
        )

    async def _offer(
        self,
        session: AsyncSession,
        device: DepartingDeviceRow,
        receiver_oin: str,
        inputs: SettlementInputs,
        now: datetime,
    ) -> None:
        offer = SettlementOffer(
            settlement_id=uuid.uuid4(),
            device_id=device.device_id,
            method=_METHOD,
            inputs=inputs,
            amount_cents=residual_value_cents(inputs, method=_METHOD),
        )
        session.add(_settlement_row(offer, "offered", device.dossier_id, receiver_oin, None, now))
        await enqueue_protocol_message(
            session,
            settings=self._settings,
            policy=self._policy,
            dossier_id=device.dossier_id,
            receiver_oin=receiver_oin,
            roles=_OFFER_ROLES,
            body=offer,
            now=now,
        )

    # --- settlement: receiving supplier -------------------------------------------------------

    async def _on_offer(
        self, session: AsyncSession, message: Message, offer: SettlementOffer, now: datetime
    ) -> None:
        row = _settlement_row(
            offer,
            "received",
            str(message.dossier_id),
            message.sender.oin,
            str(message.message_id),
            now,
        )
        row.state = "waiting"
        session.add(row)
        order = await self._order_for(session, row.dossier_id, row.device_id)
        if order is None:
            await self._answer(
                session, row, "other", "Wij hebben geen overnameopdracht voor dit hulpmiddel.", now
            )
        elif order.device_states.get(row.device_id) in _DEVICE_DONE:
            await self._judge(session, row, order, now)

    async def _order_for(
        self, session: AsyncSession, dossier_id: str, device_id: str
    ) -> SupplierOrderRow | None:
        orders = await session.scalars(
            select(SupplierOrderRow).where(
                SupplierOrderRow.dossier_id == dossier_id, SupplierOrderRow.status != "refused"
            )
        )
        return next((o for o in orders if device_id in o.device_states), None)

    async def _answer_waiting_offers(
        self, session: AsyncSession, order: SupplierOrderRow, now: datetime
    ) -> None:
        waiting = await session.scalars(
            select(SettlementRow).where(
                SettlementRow.dossier_id == order.dossier_id, SettlementRow.state == "waiting"
            )
        )
        for row in list(waiting):
            if order.device_states.get(row.device_id) in _DEVICE_DONE:
                await self._judge(session, row, order, now)

    async def _judge(
        self, session: AsyncSession, row: SettlementRow, order: SupplierOrderRow, now: datetime
    ) -> None:
        offered = SettlementInputs.model_validate(row.inputs)
        try:
            own = self._own_inputs(order, row.device_id, offered)
            expected = residual_value_cents(own, method=row.method)
        except UnknownSettlementMethod:
            await self._answer(
                session, row, "method-not-agreed", f"Methode {row.method} is niet afgesproken.", now
            )
            return
        differences = _differences(offered, own)
        if not differences and expected == row.amount_cents:
            await self._answer(session, row, None, None, now)
            return
        reason = (
            "Afwijkend: " + (", ".join(differences) or "bedrag") + f"; wij komen op {expected}."
        )
        await self._answer(session, row, "inputs-incorrect", reason, now, counter=expected)

    def _own_inputs(
        self, order: SupplierOrderRow, device_id: str, offered: SettlementInputs
    ) -> SettlementInputs:
        device = next(
            d for d in TakeoverOrder.model_validate(order.body).devices if d.device_id == device_id
        )
        return self._inputs(
            device.iso_code,
            device.purchase_price_cents or offered.purchase_price_cents,
            device.purchase_date or offered.purchase_date,
            offered.transfer_date,
            offered.maintenance_state,
        )

    async def _answer(
        self,
        session: AsyncSession,
        row: SettlementRow,
        reason_code: str | None,
        reason_text: str | None,
        now: datetime,
        *,
        counter: int | None = None,
    ) -> None:
        body: SettlementAccept | SettlementDispute
        if reason_code is None:
            row.state = "accepted"
            body = SettlementAccept.model_validate(
                {
                    "settlementId": row.settlement_id,
                    "deviceId": row.device_id,
                    "amountCents": row.amount_cents,
                }
            )
        else:
            row.state, row.reason_code, row.reason_text = "disputed", reason_code, reason_text
            row.counter_amount_cents = counter
            body = SettlementDispute.model_validate(
                {
                    "settlementId": row.settlement_id,
                    "deviceId": row.device_id,
                    "reasonCode": reason_code,
                    "reasonText": reason_text,
                    "counterAmountCents": counter,
                }
            )
        row.updated_at = now
        await enqueue_protocol_message(
            session,
            settings=self._settings,
            policy=self._policy,
            dossier_id=row.dossier_id,
            receiver_oin=row.counterparty_oin,
            roles=_ANSWER_ROLES,
            body=body,
            now=now,
            in_reply_to=row.offer_message_id,
        )

    # --- settlement: departing supplier learns the answer -------------------------------------

    async def _on_answer(
        self,
        session: AsyncSession,
        message: Message,
        answer: SettlementAccept | SettlementDispute,
        now: datetime,
    ) -> None:
        row = await session.get(SettlementRow, str(answer.settlement_id))
        if row is None or row.direction != "offered" or row.counterparty_oin != message.sender.oin:
            raise MessageNotHandled("no settlement with this id was offered to the sender")
        row.updated_at = now
        if row.state == "superseded":
            return  # offered to a supplier that refused the order; a new offer went out
        if isinstance(answer, SettlementAccept):
            row.state = "accepted"
            return
        row.state, row.reason_code, row.reason_text = (
            "disputed",
            answer.reason_code,
            answer.reason_text,
        )
        row.counter_amount_cents = answer.counter_amount_cents
        await open_task(
            session,
            kind="settlement-disputed",
            description=(
                f"De overnameprijs van hulpmiddel {row.device_id} ({row.amount_cents} cent) wordt "
                f"betwist: {answer.reason_code}; tegenbod {answer.counter_amount_cents} cent."
            ),
            now=now,
        )

    # --- reading ------------------------------------------------------------------------------

    async def orders(self, *, open_only: bool = False) -> list[ReceivedOrder]:
        """Orders received, soonest deadline first; ``open_only``: not refused nor taken over."""
        query = select(SupplierOrderRow).order_by(
            SupplierOrderRow.contact_before, SupplierOrderRow.received_at
        )
        if open_only:
            query = query.where(SupplierOrderRow.status.not_in(tuple(_CLOSED)))
        async with self._database.reading() as session:
            return [_received(row) for row in await session.scalars(query)]

    async def order(self, order_id: str) -> ReceivedOrder:
        """One order received, with the client's contact details."""
        async with self._database.reading() as session:
            row = await session.get(SupplierOrderRow, order_id)
        if row is None:
            raise OrderUnknown(f"no order {order_id}")
        return _received(row)

    async def departing_devices(self) -> list[DepartingDevice]:
        """Devices leaving this supplier's contract, by effective date."""
        query = select(DepartingDeviceRow).order_by(
            DepartingDeviceRow.effective_date, DepartingDeviceRow.id
        )
        async with self._database.reading() as session:
            return [_departing(row) for row in await session.scalars(query)]

    async def settlements(self) -> list[Settlement]:
        """Settlements offered and received, oldest first."""
        query = select(SettlementRow).order_by(
            SettlementRow.created_at, SettlementRow.settlement_id
        )
        async with self._database.reading() as session:
            return [_settlement(row) for row in await session.scalars(query)]


async def _erase_received_orders(
    session: AsyncSession, dossier_id: str, order_ids: set[str]
) -> None:
    # The received bytes of a stopped order carry the client's name and address: erased; the
    # message id and digest stay, so a repeated delivery is still recognised.
    if not order_ids:
        return
    received = await session.scalars(
        select(InboundMessageRow).where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "takeover-order",
        )
    )
    for row in received:
        if row.body and json.loads(row.body)["body"]["orderId"] in order_ids:
            row.body = b""


def _stop_description(
    stop: str, orders: list[SupplierOrderRow], devices: list[DepartingDeviceRow]
) -> str:
    why = "de verhuizing is geannuleerd" if stop == "cancelled" else "de toestemming is ingetrokken"
    parts = []
    if orders:
        ids = ", ".join(row.order_id for row in orders)
        parts.append(
            f"Order {ids} is gestopt: {why}. Neem geen contact op met de cliënt; "
            "de gegevens van de cliënt zijn verwijderd."
        )
    if devices:
        names = ", ".join(row.device_id for row in devices)
        outcome = (
            "verlaat het contract niet"
            if stop == "cancelled"
            else "wordt niet via Meeverhuizen overgenomen; de gemeente regelt het vervolg"
        )
        parts.append(f"Hulpmiddel {names} {outcome} ({why}); geen overnameprijs.")
    return " ".join(parts)


def _check_status(row: SupplierOrderRow, status: str, device_id: str | None) -> None:
    if row.status in _CLOSED:
        raise OrderStatusRefused(f"order {row.order_id} is {row.status}")
    if status == "refused" and row.status != "received":
        raise OrderStatusRefused("an order can only be refused before the client is contacted")
    if device_id is not None and device_id not in row.device_states:
        raise OrderStatusRefused(f"device {device_id} is not in order {row.order_id}")


def _differences(offered: SettlementInputs, own: SettlementInputs) -> list[str]:
    mine, theirs = own.model_dump(by_alias=True), offered.model_dump(by_alias=True)
    return [name for name in sorted(mine) if mine[name] != theirs[name]]


def _settlement_row(
    offer: SettlementOffer,
    direction: str,
    dossier_id: str,
    counterparty_oin: str,
    offer_message_id: str | None,
    now: datetime,
) -> SettlementRow:
    return SettlementRow(
        settlement_id=str(offer.settlement_id),
        direction=direction,
        dossier_id=dossier_id,
        device_id=offer.device_id,
        counterparty_oin=counterparty_oin,
        offer_message_id=offer_message_id,
        method=offer.method,
        inputs=offer.inputs.model_dump(mode="json", by_alias=True, exclude_none=True),
        amount_cents=offer.amount_cents,
        state="offered",
        reason_code=None,
        reason_text=None,
        counter_amount_cents=None,
        created_at=now,
        updated_at=now,
    )


def _received(row: SupplierOrderRow) -> ReceivedOrder:
    return ReceivedOrder(
        order_id=row.order_id,
        dossier_id=row.dossier_id,
        gemeente_oin=row.gemeente_oin,
        status=row.status,
        device_states=dict(row.device_states),
        contact_before=row.contact_before,
        deadline=day_end(row.contact_before),
        overdue=row.overdue,
        received_at=row.received_at,
        updated_at=row.updated_at,
        order=dict(row.body),
    )


def _departing(row: DepartingDeviceRow) -> DepartingDevice:
    return DepartingDevice(
        dossier_id=row.dossier_id,
        device_id=row.device_id,
        iso_code=row.iso_code,
        serial_number=row.serial_number,
        contract_reference=row.contract_reference,
        effective_date=row.effective_date,
        receiving_gemeentecode=row.receiving_gemeentecode,
        receiving_supplier_oin=row.receiving_supplier_oin,
        receiving_supplier_name=row.receiving_supplier_name,
        state=row.state,
    )


def _settlement(row: SettlementRow) -> Settlement:
    return Settlement(
        settlement_id=row.settlement_id,
        direction=row.direction,
        dossier_id=row.dossier_id,
        device_id=row.device_id,
        counterparty_oin=row.counterparty_oin,
        method=row.method,
        inputs=dict(row.inputs),
        amount_cents=row.amount_cents,
        state=row.state,
        reason_code=row.reason_code,
        reason_text=row.reason_text,
        counter_amount_cents=row.counter_amount_cents,
    )
