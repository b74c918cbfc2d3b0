"""SQLAlchemy 2 models and engine of the registry (SQLite by default, PostgreSQL by URL).

History is kept by never updating an entry or key in place: a change inserts a new version row,
and the current state is the newest version. On start the schema is
upgraded to the newest Alembic migration (``registry/_migrations/``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.server_kit.deployment import create_private_sqlite_file
from registry.server_kit.migrations import NAMING_CONVENTION, UtcDateTime

__all__ = [
    "AuditEvent",
    "Base",
    "Contract",
    "DailyReportRow",
    "EnrolmentCode",
    "EntryVersion",
    "KeyVersion",
    "ParticipantRow",
    "SignedRequest",
    "create_engine",
    "session_factory",
]


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ParticipantRow(Base):
    """A gemeente (seeded from the CBS list) or an onboarded supplier."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    gemeentecode: Mapped[str | None] = mapped_column(String(4), unique=True)
    # Set once: for a gemeente when it enrols, for a supplier when it is onboarded.
    oin: Mapped[str | None] = mapped_column(String(20), unique=True)
    kvk_number: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The protocol roles the participant may play (docs/registry.md, "Roles and territory").
    roles: Mapped[list[str] | None] = mapped_column(JSON)
    # The gemeentecodes its agent serves: a gemeente its own, a regional service more; none for
    # a supplier.
    gemeentecodes: Mapped[list[str] | None] = mapped_column(JSON)
    # A gemeente whose code another participant's agent serves: resolution by code finds that one.
    served_by_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))


class EntryVersion(Base):
    """One version of a participant's agent entry: endpoint and capabilities."""

    __tablename__ = "entry_versions"
    __table_args__ = (Index("ix_entry_versions_participant", "participant_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    endpoint: Mapped[str] = mapped_column(String(500))
    protocol_versions: Mapped[list[str]] = mapped_column(JSON)
    message_types: Mapped[list[str]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KeyVersion(Base):
    """One version of a participant's public key with its validity and revocation."""

    __tablename__ = "key_versions"
    __table_args__ = (Index("ix_key_versions_participant_kid", "participant_id", "kid", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    kid: Mapped[str] = mapped_column(String(64))
    key_use: Mapped[str] = mapped_column(String(8))
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Contract(Base):
    """A gemeente's contract with a supplier for ISO 9999 prefixes over a validity period."""

    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gemeente_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    iso_prefixes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    preference: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EnrolmentCode(Base):
    """A one-time enrolment code, stored only as its SHA-256 hash."""

    __tablename__ = "enrolment_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SignedRequest(Base):
    """Request ids of processed signed changes: a captured request cannot be replayed."""

    __tablename__ = "signed_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEvent(Base):
    """One write to the registry: who did what to which participant."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)


class DailyReportRow(Base):
    """One organisation's counts for one day (``registry.monitoring``); a new report replaces it."""

    __tablename__ = "daily_reports"
    __table_args__ = (
        UniqueConstraint("participant_id", "day"),
        Index("ix_daily_reports_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    day: Mapped[date] = mapped_column(Date)
    # Counts only, by dotted field name (``registry.monitoring.count_fields``).
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine for ``database_url`` (``sqlite+aiosqlite`` or ``postgresql+psycopg``)."""
    create_private_sqlite_file(database_url)  # a new SQLite file is the owner's only (0600)
    return create_async_engine(database_url, pool_pre_ping=not database_url.startswith("sqlite"))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
