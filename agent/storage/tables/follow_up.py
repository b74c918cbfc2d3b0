"""Tables of what follows a decision: orders and settlement, BRP events, kept registry answers,
transfers and letters."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from agent.storage.tables.base import Base

__all__ = [
    "BrpEventCountRow",
    "BrpEventRow",
    "ClientLetterRow",
    "DepartingDeviceRow",
    "DeviceTransferRow",
    "FeedCursorRow",
    "OrderRow",
    "RegistryAnswerRow",
    "SettlementRow",
    "SupplierOrderRow",
]


# --- Takeover orders, the supplier's side and settlement (agent.supplier) ---------------------


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
    # The planner who answered a received offer in the werkbak; none when the agent answered.
    answered_by: Mapped[str | None] = mapped_column(String(100), default=None)


# --- BRP events (agent.brp) -------------------------------------------------------------------


class BrpEventRow(Base):
    """The inbox: one row per (source, id), kept reduced unless the person has provisions."""

    __tablename__ = "brp_events"

    source: Mapped[str] = mapped_column(String(500), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    time: Mapped[datetime | None]
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(40))
    dossier_id: Mapped[str | None] = mapped_column(String(36))
    # Only for a client in the register (a task may need it); None for everyone else.
    data: Mapped[dict[str, Any] | None]


class BrpEventCountRow(Base):
    """How many events of a type had an outcome (irrelevant events are only counted)."""

    __tablename__ = "brp_event_counts"

    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int]


class FeedCursorRow(Base):
    """Pull: the id of the last feed event stored, per feed (moved with the events it covers)."""

    __tablename__ = "brp_feed_cursors"

    feed_url: Mapped[str] = mapped_column(String(500), primary_key=True)
    last_event_id: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


# --- runtime: verified registry answers --------------------------------------------------------


class RegistryAnswerRow(Base):
    """A verified registry answer with its signature, kept so that a restart does not lose it."""

    __tablename__ = "registry_answers"

    resource: Mapped[str] = mapped_column(String(600), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The Digest and signature headers it came with: verified again when read back.
    headers: Mapped[list[Any]] = mapped_column(JSON)
    etag: Mapped[str | None] = mapped_column(String(100))
    fresh_until: Mapped[datetime]
    stale_until: Mapped[datetime]


# --- After the decision (agent.continuation) --------------------------------------------------


class DeviceTransferRow(Base):
    """The ownership of a bruikleen device moving between two gemeenten, sent or received."""

    __tablename__ = "device_transfers"

    transfer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    transfer_date: Mapped[date]
    price: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int]
    # sent; received; price-differs when the receiving side's own calculation differs.
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class ClientLetterRow(Base):
    """A letter or e-mail to a client, queued in the transaction that decided it, then sent."""

    __tablename__ = "client_letters"
    __table_args__ = (Index("ix_client_letters_state", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Recipient name, address lines, e-mail address and preferred channels (no BSN).
    recipient: Mapped[dict[str, Any]]
    subject: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # pending until a channel took it; sent; failed when no channel could (a task follows);
    # stopped when the dossier was cancelled or its consent withdrawn before it went.
    state: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
