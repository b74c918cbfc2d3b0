"""Gemeente side of the takeover: orders to suppliers, their status, departure notices (issue 7).

Receiving gemeente: for every rented (``huur``) device it takes over it orders the contracted
supplier for the device's ISO 9999 code on the move date (registry, preference order), one order
per device, with ``contactBefore`` = the 5th working day after the order date (that day included,
normenkader 2020). A refusal moves the order to the next preferred supplier (new order id); with
no supplier left, or none contracted, a task for the gemeente - never a silent stop.

Departing gemeente: after the decision, a departure notice to its own supplier of each device taken
over, naming the receiving supplier from the decision (``receivingSupplier``) for the settlement.

Registry lookups are made before the inbound transaction (:meth:`OrderDesk.prepare`), so no
network call happens while the database is locked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agent._db import (
    Base,
    ClientRow,
    Database,
    DeviceRow,
    DossierRow,
    OutboxRow,
    ProvisionRow,
    prepared,
)
from agent._deadlines import DeadlineRow, Deadlines, cancel_deadlines, schedule_deadline
from agent._directory import Directory
from agent._metrics import AgentMetrics
from agent._outbox import DeliveredMessage, OutboxPolicy, enqueue
from agent._register import load_client
from agent._tasks import open_task
from agent.errors import DossierUnknown, IllegalTransition, MessageNotHandled
from agent.settings import AgentSettings
from agent.working_days import WorkingDayCalendar
from protocol import canonicalize
from protocol.messages import (
    DepartureNotice,
    Device,
    DeviceDecision,
    DossierCancelled,
    DossierOffer,
    Message,
    MessageBody,
    SupplierReference,
    SupplierStatus,
    TakeoverOrder,
    message_to_json,
)
from registry.errors import (
    MessageTypeNotSupported,
    NoContract,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    RegistryError,
)

__all__ = [
    "DECISION_UPDATE_STATES",
    "ORDER_CONTACT_DEADLINE",
    "OrderDesk",
    "OrderRow",
    "PlacedOrder",
    "day_end",
    "enqueue_protocol_message",
    "stripped_order",
]

ORDER_CONTACT_DEADLINE = "order-contact-overdue"
_ZONE = ZoneInfo("Europe/Amsterdam")
# A device is done for the gemeente when the supplier reports one of these.
_DONE = frozenset({"taken-over", "inspected", "replaced"})
_CONTACTED = frozenset({"client-contacted"}) | _DONE
# A departing dossier in one of these states takes a later device-decision as an update of the
# receiving supplier (a refusal moved an order on; docs/supplier.md).
DECISION_UPDATE_STATES = frozenset({"orders-placed", "completed"})
# Messages to suppliers that a cancellation or withdrawal must follow, with the receiver's role.
_SUPPLIER_ROLES = {"takeover-order": "receiving-supplier", "departure-notice": "departing-supplier"}
# What a stopped order keeps: no name, address, contact details or representative.
_KEPT_ORDER_FIELDS = frozenset({"orderId", "moveDate", "contactBefore", "urgent"})
_STOPPED_DOSSIER = frozenset({"cancelled", "consent-withdrawn", "failed"})
# The register's devices of a dossier's client (departing side), in one statement.
_DEVICES_OF_DOSSIER = prepared(
    select(DeviceRow.details)
    .join(ClientRow, ClientRow.id == DeviceRow.client_id)
    .join(DossierRow, DossierRow.client_bsn == ClientRow.bsn)
    .where(DossierRow.id == bindparam("dossier"))
)
Transition = Callable[[AsyncSession, DossierRow, str, str, datetime], Awaitable[None]]


class OrderRow(Base):
    """Receiving gemeente: one takeover order for one device at one supplier."""

    __tablename__ = "takeover_orders"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    attempt: Mapped[int]
    supplier_oin: Mapped[str] = mapped_column(String(20))
    supplier_name: Mapped[str] = mapped_column(String(200))
    # Contracted suppliers in preference order, [{oin, name}], for the fallback on a refusal.
    candidates: Mapped[list[Any]]
    # The order body as sent (wire form); a fallback sends it again with a new id and date.
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    # False once refused: the next order (if any) carries the device on.
    active: Mapped[bool]
    contact_before: Mapped[date]
    overdue: Mapped[bool]
    last_reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class PlacedOrder:
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


def day_end(day: date) -> datetime:
    """The end of ``day`` in Amsterdam: a deadline "before <date>" includes that day."""
    return datetime.combine(day, time.max, tzinfo=_ZONE)


async def enqueue_protocol_message(
    session: AsyncSession,
    *,
    settings: AgentSettings,
    policy: OutboxPolicy,
    dossier_id: str,
    receiver_oin: str,
    roles: tuple[str, str],
    body: MessageBody,
    now: datetime,
    in_reply_to: str | None = None,
) -> str:
    """Build a protocol message from this agent and queue it in the caller's transaction."""
    message_id = uuid.uuid4()
    message = Message.model_validate(
        {
            "messageId": message_id,
            "dossierId": dossier_id,
            "messageType": body.message_type,
            "sender": {"oin": settings.oin, "role": roles[0]},
            "receiver": {"oin": receiver_oin, "role": roles[1]},
            "createdAt": now,
            "inReplyTo": in_reply_to,
            "body": body,
        }
    )
    await enqueue(
        session,
        message_id=str(message_id),
        dossier_id=dossier_id,
        kind="message",
        message_type=body.message_type,
        body=canonicalize(message_to_json(message)),
        now=now,
        policy=policy,
        destination_oin=receiver_oin,
    )
    return str(message_id)


def _candidates(suppliers: Iterable[Any]) -> list[dict[str, str]]:
    return [{"oin": s.oin, "name": s.name} for s in suppliers]


class OrderDesk:
    """Places and follows takeover orders (receiving side) and departure notices (departing)."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        database: Database,
        directory: Directory,
        policy: OutboxPolicy,
        calendar: WorkingDayCalendar,
        deadlines: Deadlines,
        transition: Transition,
        metrics: AgentMetrics,
    ) -> None:
        self._settings = settings
        self._database = database
        self._directory = directory
        self._policy = policy
        self._calendar = calendar
        self._transition = transition
        self._metrics = metrics
        # Registry answers looked up before the inbound transaction, by message id.
        self._suppliers: dict[str, dict[str, list[dict[str, str]] | None]] = {}
        self._connected: dict[str, dict[str, bool]] = {}
        deadlines.register(ORDER_CONTACT_DEADLINE, self._on_contact_deadline)

    # --- before the transaction ---------------------------------------------------------------

    async def prepare(self, message: Message) -> None:
        """Registry lookups the message will need, made outside any transaction."""
        if self._settings.role != "gemeente":
            return
        if isinstance(message.body, DossierOffer):
            offer = message.body
            self._suppliers[str(message.message_id)] = {
                device.iso_code: await self._contracted(device.iso_code, offer.client.move_date)
                for device in offer.devices
                if _rented(device)
            }
        elif isinstance(message.body, DeviceDecision):
            oins = await self._current_suppliers(str(message.dossier_id))
            self._connected[str(message.message_id)] = {
                oin: await self._accepts_notices(oin) for oin in oins
            }

    async def _contracted(self, iso_code: str, on: date) -> list[dict[str, str]] | None:
        """Contracted suppliers, most preferred first; None when the registry cannot answer."""
        try:
            suppliers = await self._directory.contracted_suppliers(
                self._settings.gemeentecode or "", iso_code, on
            )
        except (NoContract, ParticipantUnknown, ParticipantNotEnrolled):
            return []
        except RegistryError:
            # The decision does not wait for the registry: a person orders (task), see below.
            return None
        return _candidates(suppliers)

    async def _current_suppliers(self, dossier_id: str) -> set[str]:
        found = await self._database.read(_DEVICES_OF_DOSSIER, {"dossier": dossier_id})
        # The register stores each device wire-shaped (protocol Device, validated on import).
        suppliers = [row.details.get("supplier") for row in found]
        return {supplier["oin"] for supplier in suppliers if supplier}

    async def _accepts_notices(self, oin: str) -> bool:
        try:
            entry = await self._directory.participant(oin, message_type="departure-notice")
        except (ParticipantUnknown, ParticipantNotEnrolled, MessageTypeNotSupported):
            return False
        except RegistryError:
            # Registry down beyond its staleness bound: a person tells the supplier (task).
            return False
        return entry.endpoint is not None

    # --- receiving gemeente: placing orders ---------------------------------------------------

    async def place_orders(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        message: Message,
        offer: DossierOffer,
        decision: DeviceDecision,
        now: datetime,
    ) -> tuple[DeviceDecision, bool]:
        """Order every rented device taken over; return the decision naming the suppliers."""
        prepared = self._suppliers.pop(str(message.message_id), None)
        taken_over = {i.device_id for i in decision.decisions if i.outcome == "take-over"}
        chosen: dict[str, SupplierReference] = {}
        for device in offer.devices:
            if device.device_id not in taken_over or not _rented(device):
                continue
            candidates = (
                prepared.get(device.iso_code, [])
                if prepared is not None
                else await self._contracted(device.iso_code, offer.client.move_date)
            )
            if not candidates:
                await self._no_supplier(session, dossier, device, now, candidates is None)
                continue
            order = self._order_body(offer, device, now)
            row = await self._place(session, dossier, device, candidates, 0, order, now)
            chosen[device.device_id] = SupplierReference(
                oin=row.supplier_oin, name=row.supplier_name
            )
        items = [
            item.model_copy(update={"receiving_supplier": chosen.get(item.device_id)})
            for item in decision.decisions
        ]
        return decision.model_copy(update={"decisions": tuple(items)}), bool(chosen)

    def _order_body(self, offer: DossierOffer, device: Device, now: datetime) -> dict[str, Any]:
        client = offer.client
        # Data minimisation (issue 7): name, address, contact, move date and the device only.
        order = TakeoverOrder(
            order_id=uuid.uuid4(),
            client_name=client.name,
            address=client.new_address,
            contact_preferences=client.contact_preferences,
            representative=client.representative,
            move_date=client.move_date,
            devices=(device,),
            departing_supplier=device.supplier,
            contact_before=self.contact_before(now),
            urgent=offer.urgent,
        )
        body: dict[str, Any] = order.model_dump(mode="json", by_alias=True, exclude_none=True)
        return body

    def contact_before(self, ordered_at: datetime) -> date:
        """Last day (included) on which the supplier must contact the client."""
        order_day = ordered_at.astimezone(_ZONE).date()
        return self._calendar.add_working_days(
            order_day, self._settings.takeover.contact_working_days
        )

    async def _place(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        device: Device,
        candidates: list[dict[str, str]],
        attempt: int,
        body: dict[str, Any],
        now: datetime,
    ) -> OrderRow:
        supplier = candidates[attempt]
        order = TakeoverOrder.model_validate(body)
        row = OrderRow(
            order_id=str(order.order_id),
            dossier_id=dossier.id,
            device_id=device.device_id,
            iso_code=device.iso_code,
            attempt=attempt,
            supplier_oin=supplier["oin"],
            supplier_name=supplier["name"],
            candidates=candidates,
            body=body,
            status="placed",
            active=True,
            contact_before=order.contact_before,
            overdue=False,
            last_reason=None,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await enqueue_protocol_message(
            session,
            settings=self._settings,
            policy=self._policy,
            dossier_id=dossier.id,
            receiver_oin=row.supplier_oin,
            roles=("receiving-gemeente", "receiving-supplier"),
            body=order,
            now=now,
        )
        await schedule_deadline(
            session,
            kind=ORDER_CONTACT_DEADLINE,
            subject=row.order_id,
            due_at=day_end(row.contact_before),
            now=now,
            dossier_id=dossier.id,
        )
        return row

    async def _no_supplier(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        device: Device,
        now: datetime,
        registry_down: bool,
    ) -> None:
        why = (
            "Het register was niet bereikbaar om de leverancier te kiezen"
            if registry_down
            else "Geen leverancier gecontracteerd op de verhuisdatum"
        )
        await open_task(
            session,
            kind="no-supplier",
            description=(
                f"{why} (ISO {device.iso_code}, hulpmiddel {device.device_id}). "
                "Regel de overname zelf."
            ),
            now=now,
            dossier_id=dossier.id,
        )

    # --- receiving gemeente: status from the supplier -----------------------------------------

    async def on_status(
        self, session: AsyncSession, message: Message, status: SupplierStatus, now: datetime
    ) -> None:
        """Apply a supplier's status to its order; a refusal moves on to the next supplier."""
        if self._settings.role != "gemeente":
            raise MessageNotHandled("only a gemeente agent receives supplier status")
        row = await session.get(OrderRow, str(status.order_id))
        if row is None or row.supplier_oin != message.sender.oin:
            raise DossierUnknown("no order with this id was placed with the sender")
        dossier = await session.get(DossierRow, row.dossier_id)
        if dossier is None:
            raise DossierUnknown("the order's dossier is gone")
        if not row.active and row.status in ("cancelled", "withdrawn"):
            return  # the order was stopped; a late status changes nothing
        row.updated_at = now
        if status.status == "refused":
            await self._refused(session, dossier, row, status, now)
        elif status.status == "problem":
            await self._problem(session, dossier, row, status, now)
        elif status.status in _CONTACTED or row.status == "placed":
            row.status = status.status
        await self._complete_when_done(session, dossier, now)

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
            # Next preferred supplier, new order id and a new contact date (issue 7).
            body = {**row.body, "orderId": str(uuid.uuid4())}
            body["contactBefore"] = self.contact_before(now).isoformat()
            device = TakeoverOrder.model_validate(row.body).devices[0]
            placed = await self._place(
                session, dossier, device, row.candidates, following, body, now
            )
            await self._tell_departing(session, dossier, placed, now)
            return
        await open_task(
            session,
            kind="supplier-refused",
            description=(
                f"Elke gecontracteerde leverancier weigerde de overname van hulpmiddel "
                f"{row.device_id} (ISO {row.iso_code}); laatste reden: {status.reason_code}."
            ),
            now=now,
            dossier_id=dossier.id,
        )

    async def _problem(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        row: OrderRow,
        status: SupplierStatus,
        now: datetime,
    ) -> None:
        row.last_reason = status.reason_code
        await open_task(
            session,
            kind="supplier-problem",
            description=(
                f"Leverancier {row.supplier_name} meldt een probleem met hulpmiddel "
                f"{row.device_id}: {status.reason_code}."
            ),
            now=now,
            dossier_id=dossier.id,
        )

    async def _complete_when_done(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        if dossier.state != "orders-placed":
            return
        await session.flush()
        waiting = await session.scalar(
            select(func.count())
            .select_from(OrderRow)
            .where(
                OrderRow.dossier_id == dossier.id,
                OrderRow.active.is_(True),
                OrderRow.status.not_in(tuple(_DONE)),
            )
        )
        if not waiting:
            # Every order taken over, or handed to a person through a task.
            await self._transition(session, dossier, "completed", "every order handled", now)

    async def _on_contact_deadline(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(OrderRow, deadline.subject)
        if row is None or not row.active or row.status in _CONTACTED:
            return
        row.overdue, row.updated_at = True, now
        self._metrics.deadline_breached("supplier-contact")
        await open_task(
            session,
            kind="supplier-overdue",
            description=(
                f"Leverancier {row.supplier_name} heeft niet uiterlijk op "
                f"{row.contact_before.isoformat()} gemeld contact met de cliënt te hebben gehad "
                f"(hulpmiddel {row.device_id})."
            ),
            now=now,
            dossier_id=row.dossier_id,
        )

    # --- a refusal moved an order: the departing side learns the new supplier ------------------

    async def _tell_departing(
        self, session: AsyncSession, dossier: DossierRow, placed: OrderRow, now: datetime
    ) -> None:
        # The decision is sent again with the new receivingSupplier for this device; the
        # departing gemeente passes it on in a new departure notice (docs/supplier.md).
        previous = await session.scalar(
            select(OutboxRow)
            .where(OutboxRow.dossier_id == dossier.id, OutboxRow.message_type == "device-decision")
            .order_by(OutboxRow.sequence.desc())
            .limit(1)
        )
        if previous is None or not previous.body or dossier.partner_oin is None:
            return
        document = json.loads(previous.body)
        decision = DeviceDecision.model_validate(document["body"])
        supplier = SupplierReference(oin=placed.supplier_oin, name=placed.supplier_name)
        items = tuple(
            item.model_copy(update={"receiving_supplier": supplier})
            if item.device_id == placed.device_id
            else item
            for item in decision.decisions
        )
        await enqueue_protocol_message(
            session,
            settings=self._settings,
            policy=self._policy,
            dossier_id=dossier.id,
            receiver_oin=dossier.partner_oin,
            roles=("receiving-gemeente", "departing-gemeente"),
            body=decision.model_copy(update={"decisions": items}),
            now=now,
            in_reply_to=document.get("inReplyTo"),
        )

    async def on_decision_update(
        self, session: AsyncSession, dossier: DossierRow, message: Message, now: datetime
    ) -> None:
        """Departing side: a later device-decision; a changed receiving supplier is passed on."""
        decision = message.body
        if not isinstance(decision, DeviceDecision):
            return
        if dossier.state in _STOPPED_DOSSIER:
            return  # nothing moves any more; the update is receipted and ignored
        if dossier.state not in DECISION_UPDATE_STATES:
            raise IllegalTransition(f"a departing dossier in {dossier.state} takes no decision")
        stored = await session.execute(
            select(ProvisionRow.device_id, ProvisionRow.outcome).where(
                ProvisionRow.dossier_id == dossier.id
            )
        )
        outcomes = dict(stored.all())
        if {i.device_id: i.outcome for i in decision.decisions} != outcomes:
            raise MessageNotHandled(
                "a later device-decision may only change the receiving supplier"
            )
        named = await self._named_in_notices(session, dossier.id)
        changed = frozenset(
            item.device_id
            for item in decision.decisions
            if item.outcome == "take-over"
            and item.receiving_supplier is not None
            and named.get(item.device_id) != item.receiving_supplier.oin
        )
        if changed:
            await self.send_departure_notices(session, dossier, message, now, only=changed)

    @staticmethod
    async def _named_in_notices(session: AsyncSession, dossier_id: str) -> dict[str, str | None]:
        """Per device, the receiving supplier named in the latest departure notice sent."""
        notices = await session.scalars(
            select(OutboxRow.body)
            .where(OutboxRow.dossier_id == dossier_id, OutboxRow.message_type == "departure-notice")
            .order_by(OutboxRow.sequence)
        )
        named: dict[str, str | None] = {}
        for raw in notices:
            if not raw:
                continue  # erased after a withdrawal
            body = json.loads(raw)["body"]
            oin = (body.get("receivingSupplier") or {}).get("oin")
            named.update({device["deviceId"]: oin for device in body["devices"]})
        return named

    # --- cancellation and withdrawal: suppliers are told and orders stop ------------------------

    async def forward_cancellation(
        self, session: AsyncSession, dossier: DossierRow, cancelled: DossierCancelled, now: datetime
    ) -> None:
        """Tell every supplier that got an order or notice for the dossier that it is void."""
        told = await session.execute(
            select(OutboxRow.destination_oin, OutboxRow.message_type)
            .where(
                OutboxRow.dossier_id == dossier.id,
                OutboxRow.kind == "message",
                OutboxRow.message_type.in_(list(_SUPPLIER_ROLES)),
            )
            .distinct()
        )
        own_role = "departing-gemeente" if dossier.side == "departing" else "receiving-gemeente"
        receivers = {oin: _SUPPLIER_ROLES[kind] for oin, kind in told if oin is not None}
        for oin, role in sorted(receivers.items()):
            await enqueue_protocol_message(
                session,
                settings=self._settings,
                policy=self._policy,
                dossier_id=dossier.id,
                receiver_oin=oin,
                roles=(own_role, role),
                body=cancelled,
                now=now,
            )
        await self.stop_orders(session, dossier.id, "cancelled", now)

    async def cancelled_after_completion(
        self, session: AsyncSession, dossier: DossierRow, cancelled: DossierCancelled, now: datetime
    ) -> None:
        """A completed dossier stays completed; a person undoes what the handover changed."""
        await open_task(
            session,
            kind="manual-check",
            description=(
                f"De verhuizing is na afronding ingetrokken ({cancelled.reason}). Controleer de "
                "voorziening en de hulpmiddelen; de leveranciers zijn ingelicht."
            ),
            now=now,
            dossier_id=dossier.id,
        )

    async def stop_orders(
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
            if row.active and row.status not in _DONE:
                row.status, row.active, row.updated_at = status, False, now
                await cancel_deadlines(
                    session, subject=row.order_id, kinds=(ORDER_CONTACT_DEADLINE,)
                )
            if erase:
                row.body = stripped_order(row.body)

    # --- departing gemeente: departure notices ------------------------------------------------

    async def send_departure_notices(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        message: Message,
        now: datetime,
        *,
        only: frozenset[str] | None = None,
    ) -> bool:
        """Tell the current supplier of each device taken over; True when a notice was queued.

        ``only``: just these devices (an update of the receiving supplier).
        """
        decision = message.body
        if not isinstance(decision, DeviceDecision) or dossier.client_bsn is None:
            return False
        connected = self._connected.pop(str(message.message_id), {})
        client = await load_client(session, dossier.client_bsn)
        devices = {d.device_id: d for d in client.devices} if client else {}
        groups: dict[tuple[str, str | None], list[tuple[Device, Any]]] = {}
        for item in decision.decisions:
            device = devices.get(item.device_id)
            if item.outcome != "take-over" or device is None or device.supplier is None:
                continue
            if only is not None and item.device_id not in only:
                continue
            key = (
                device.supplier.oin,
                item.receiving_supplier.oin if item.receiving_supplier else None,
            )
            groups.setdefault(key, []).append((device, item.receiving_supplier))
        queued = False
        for (oin, _), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
            if not connected.get(oin, False):
                await self._supplier_not_connected(session, dossier, members, now)
                continue
            notice = _departure_notice(members, decision, dossier)
            await enqueue_protocol_message(
                session,
                settings=self._settings,
                policy=self._policy,
                dossier_id=dossier.id,
                receiver_oin=oin,
                roles=("departing-gemeente", "departing-supplier"),
                body=notice,
                now=now,
            )
            queued = True
        return queued

    async def _supplier_not_connected(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        members: Sequence[tuple[Device, Any]],
        now: datetime,
    ) -> None:
        supplier = members[0][0].supplier
        names = ", ".join(device.device_id for device, _ in members)
        await open_task(
            session,
            kind="receiver-not-connected",
            description=(
                f"Leverancier {supplier.name if supplier else ''} is niet aangesloten of het "
                f"register was niet bereikbaar: meld zelf dat hulpmiddel {names} het contract "
                "verlaat."
            ),
            now=now,
            dossier_id=dossier.id,
        )

    async def on_delivered(
        self, session: AsyncSession, row: DeliveredMessage, now: datetime
    ) -> None:
        """Departing side: complete once every departure notice is receipted."""
        if row.kind != "message" or row.message_type != "departure-notice":
            return
        dossier = await session.get(DossierRow, row.dossier_id)
        if dossier is None or dossier.state != "orders-placed" or dossier.side != "departing":
            return
        await session.flush()
        undelivered = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(
                OutboxRow.dossier_id == dossier.id,
                OutboxRow.message_type == "departure-notice",
                OutboxRow.state != "delivered",
            )
        )
        if not undelivered:
            await self._transition(
                session, dossier, "completed", "departure notices receipted", now
            )

    # --- reading ------------------------------------------------------------------------------

    async def list(self, *, open_only: bool = False) -> list[PlacedOrder]:
        """Orders placed by this gemeente, oldest first; ``open_only``: active, not done."""
        query = select(OrderRow).order_by(OrderRow.created_at, OrderRow.attempt, OrderRow.order_id)
        if open_only:
            query = query.where(OrderRow.active.is_(True), OrderRow.status.not_in(tuple(_DONE)))
        async with self._database.reading() as session:
            return [_placed(row) for row in await session.scalars(query)]


def stripped_order(body: dict[str, Any]) -> dict[str, Any]:
    """An order without the client's personal data: ids, dates and the devices' ids and codes."""
    kept = {key: value for key, value in body.items() if key in _KEPT_ORDER_FIELDS}
    kept["devices"] = [
        {"deviceId": device["deviceId"], "isoCode": device["isoCode"]}
        for device in body.get("devices", [])
    ]
    return kept


def _rented(device: Device) -> bool:
    # Seed 000 section 3.1.4, afspraak 2: for rented devices the contracted supplier takes over.
    return device.ownership == "huur" and device.movable


def _departure_notice(
    members: Sequence[tuple[Device, Any]], decision: DeviceDecision, dossier: DossierRow
) -> DepartureNotice:
    receiving: SupplierReference | None = members[0][1]
    return DepartureNotice.model_validate(
        {
            "devices": [
                {
                    "deviceId": device.device_id,
                    "isoCode": device.iso_code,
                    "serialNumber": device.serial_number,
                    "contractReference": device.contract_reference,
                    "purchaseDate": device.purchase_date,
                    "purchasePriceCents": device.purchase_price_cents,
                }
                for device, _ in members
            ],
            "effectiveDate": decision.effective_date,
            "receivingGemeentecode": dossier.partner_gemeentecode,
            "receivingSupplier": receiving,
        }
    )


def _placed(row: OrderRow) -> PlacedOrder:
    return PlacedOrder(
        order_id=row.order_id,
        dossier_id=row.dossier_id,
        device_id=row.device_id,
        iso_code=row.iso_code,
        supplier_oin=row.supplier_oin,
        supplier_name=row.supplier_name,
        attempt=row.attempt,
        status=row.status,
        active=row.active,
        contact_before=row.contact_before,
        overdue=row.overdue,
        last_reason=row.last_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
