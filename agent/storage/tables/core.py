"""Tables of the register, the dossiers and their history, consent, the werkbak and delivery."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from agent.storage.tables.base import Base

__all__ = [
    "ClientRow",
    "ConsentLinkRow",
    "ConsentRow",
    "DeadlineRow",
    "DeliveryAttemptRow",
    "DeviceRow",
    "DossierRow",
    "DossierSearchTermRow",
    "InboundMessageRow",
    "Leased",
    "OutboxRow",
    "PageSessionRow",
    "ProcessingRecordRow",
    "ProvisionRow",
    "TaskRow",
    "TransitionRow",
    "WerkbakSessionRow",
]


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
    # The gemeente this agent handles the dossier for: a regional service serves several. None
    # stands for the configured gemeentecode.
    gemeentecode: Mapped[str | None] = mapped_column(String(4))
    # Indexed: the werkbak finds a dossier by exactly this number.
    client_bsn: Mapped[str | None] = mapped_column(String(9), index=True)
    move_date: Mapped[date | None]
    # The new address for the offer (departing side), wire-shaped.
    new_address: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The client cannot be without a device (by policy per ISO code, or a case worker's word in
    # the werkbak or the API): shorter deadlines, first in task lists and order lists.
    urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    urgency_reason: Mapped[str | None] = mapped_column(Text)


class DossierSearchTermRow(Base):
    """A word the werkbak finds a dossier by: a prefix of a word of the client's name, or a
    postcode, normalised (lower case, no accents); kept up to date by ``agent.casework``."""

    __tablename__ = "dossier_search_terms"

    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), primary_key=True)
    term: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


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
    # The takeover order the task is about (a supplier's task: it has no dossier row).
    order_id: Mapped[str | None] = mapped_column(String(36), default=None)


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
    state, nonce and PKCE verifier until the provider sends the person back, a signed-in
    session the ID token (the hint for signing out at the provider).
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
