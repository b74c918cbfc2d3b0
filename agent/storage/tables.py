"""Every table of the agent, in one module: the schema that the migrations describe.

Rows are grouped by the package whose rules write them; other packages may read them. Each table
is changed only through :class:`agent.storage.database.Database` transactions, and its schema
only through a migration in ``agent/storage/_migrations/versions/``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.server_kit.migrations import NAMING_CONVENTION, UtcDateTime

__all__ = [
    "Base",
    "BrpEventCountRow",
    "BrpEventRow",
    "ClientLetterRow",
    "ClientRow",
    "ConsentLinkRow",
    "ConsentRow",
    "DeadlineRow",
    "DeliveryAttemptRow",
    "DepartingDeviceRow",
    "DeviceRow",
    "DeviceTransferRow",
    "DossierRow",
    "FeedCursorRow",
    "InboundMessageRow",
    "Leased",
    "OrderRow",
    "OutboxRow",
    "PageSessionRow",
    "ProcessingRecordRow",
    "ProvisionRow",
    "RegistryAnswerRow",
    "SettlementRow",
    "SupplierOrderRow",
    "TaskRow",
    "TransitionRow",
    "WerkbakSessionRow",
]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
        bytes: LargeBinary,
    }


# --- The register of current provisions (agent.register) --------------------------------------


class ClientRow(Base):
    """A client in the register of current provisions."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bsn: Mapped[str] = mapped_column(String(9), unique=True)
    # Name, address, contact preferences, representative, indicatie: wire-shaped JSON.
    details: Mapped[dict[str, Any]]
    imported_at: Mapped[datetime]


class DeviceRow(Base):
    """A device provided to a client now."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("client_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    movable: Mapped[bool]
    details: Mapped[dict[str, Any]]


# --- Dossiers and their history (agent.core) --------------------------------------------------


class DossierRow(Base):
    """One move of one client, seen from one side."""

    __tablename__ = "dossiers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    side: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32), index=True)
    partner_oin: Mapped[str | None] = mapped_column(String(20))
    partner_gemeentecode: Mapped[str | None] = mapped_column(String(4))
    client_bsn: Mapped[str | None] = mapped_column(String(9))
    move_date: Mapped[date | None]
    # The new address for the offer (departing side), wire-shaped.
    new_address: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The client cannot be without a device (by policy per ISO code, or a case worker's word in
    # the werkbak or the API): shorter deadlines, first in task lists and order lists.
    urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    urgency_reason: Mapped[str | None] = mapped_column(Text)


class TransitionRow(Base):
    """One state change of a dossier, with time and cause."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(Text)


class ProvisionRow(Base):
    """Receiving side: the decision on one device and the continued provision."""

    __tablename__ = "continued_provisions"
    __table_args__ = (UniqueConstraint("dossier_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    alternative: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    # Who acts next for the device at the receiving gemeente: supplier-order or gemeente-task.
    follow_up: Mapped[str | None] = mapped_column(String(16), default=None)
    # The receiving supplier that got the order, as the decision names it.
    supplier_name: Mapped[str | None] = mapped_column(String(200), default=None)


class InboundMessageRow(Base):
    """A received protocol message: exact bytes, signature, digest, and the receipt given."""

    __tablename__ = "inbound_messages"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(String(36), index=True)
    sender_oin: Mapped[str] = mapped_column(String(20))
    message_type: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes]
    signature: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(60))
    received_at: Mapped[datetime]
    receipt_body: Mapped[bytes]


class TaskRow(Base):
    """A task for a person, about one dossier."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8), index=True)
    # Plain words for the case worker; never a BSN or other identifier of the person.
    description: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(100))
    # The consulent who took the task (werkbak); none while it waits for anyone.
    assigned_to: Mapped[str | None] = mapped_column(String(100), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    # The device the task is about, when it is about one (the dossier's otherwise).
    device_id: Mapped[str | None] = mapped_column(String(64))


class DeadlineRow(Base):
    """One deadline: what fires (kind), about what (subject), and when."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("kind", "subject"),
        Index("ix_deadlines_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    # An order id or settlement subject; never personal data.
    subject: Mapped[str] = mapped_column(String(120))
    dossier_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class ProcessingRecordRow(Base):
    """One processing of one person's data."""

    __tablename__ = "processing_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    activity_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 of the BSN under the agent's pseudonym key: linkable, not reversible.
    data_subject_id: Mapped[str] = mapped_column(String(64), index=True)
    dossier_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # The werkbak user on whose behalf the data was processed; none for the agent itself.
    actor: Mapped[str | None] = mapped_column(String(100), default=None)


# --- Consent (agent.consent) ------------------------------------------------------------------


class ConsentRow(Base):
    """The client's consent (or refusal) as a recorded fact."""

    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    data_kinds: Mapped[list[Any]]
    device_ids: Mapped[list[Any]]
    channel: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    # a representative's name and relation; the consulent who recorded it by hand.
    representative_name: Mapped[str | None] = mapped_column(String(200), default=None)
    representative_relation: Mapped[str | None] = mapped_column(String(32), default=None)
    recorded_by: Mapped[str | None] = mapped_column(String(100), default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsentLinkRow(Base):
    """A personal link: only the SHA-256 of its token is kept."""

    __tablename__ = "consent_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class PageSessionRow(Base):
    """A short-lived page session, made from a link; its cookie value is kept only as a hash."""

    __tablename__ = "consent_page_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key: an invalid link writes (and rolls back) a row without a dossier.
    dossier_id: Mapped[str | None] = mapped_column(String(36), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# --- Werkbak (agent.web.werkbak) ---------------------------------------------------------------


class WerkbakSessionRow(Base):
    """A werkbak session of a signed-in person, or a sign-in under way (``pending``).

    Its cookie value is kept only as a hash; a sign-in under way holds the OpenID Connect
    state, nonce and PKCE verifier until the provider sends the person back.
    """

    __tablename__ = "werkbak_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    pending: Mapped[bool]
    user_name: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[Any]]
    csrf_token: Mapped[str] = mapped_column(String(64))
    sign_in: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- Delivery (agent.delivery) ----------------------------------------------------------------


class Leased:
    """Mixin for a table whose rows are claimed with a lease (``claimed_by``, ``claimed_until``).

    Put it before the declarative base: ``class JobRow(Leased, Base)``.
    """

    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)


class OutboxRow(Leased, Base):
    """A message or CloudEvent to deliver; committed with the state change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dossier_id", "sequence"),
        Index("ix_outbox_due", "state", "execute_after"),
    )

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int]
    # Delivery order is kept per stream: one dossier's messages to one destination.
    stream: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    message_type: Mapped[str] = mapped_column(String(64))
    destination_oin: Mapped[str | None] = mapped_column(String(20))
    destination_url: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    execute_after: Mapped[datetime]
    created_at: Mapped[datetime]
    # Dead after this moment (created_at + max age; reset by a requeue).
    deadline: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt_body: Mapped[bytes | None]
    receipt_signature: Mapped[str | None] = mapped_column(Text)


class DeliveryAttemptRow(Base):
    """One delivery attempt of an outbox message."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("outbox.message_id"), index=True)
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)


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
    # The Digest and Payload-Signature headers it came with: verified again when read back.
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
    # pending until a channel took it; sent; failed when no channel could (a task follows).
    state: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
