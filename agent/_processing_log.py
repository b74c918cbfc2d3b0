"""Logboek Dataverwerkingen (Logius): one record per view or change of one person's data.

Each record holds the W3C trace context (trace id, span id, parent span id), the processing
activity, and the data subject as a keyed hash (HMAC-SHA256), never the BSN. An inbound
message's ``traceparent`` becomes the parent of the records made while applying it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agent._db import Base, Database, add_rows

__all__ = [
    "PROCESSING_ACTIVITIES",
    "Operation",
    "ProcessingLog",
    "ProcessingRecord",
    "ProcessingRecordRow",
    "TraceContext",
    "inbound_trace",
    "parse_traceparent",
]

Operation = Literal["read", "create", "update", "delete", "send", "receive"]

# The register of processing activities this agent performs (Logboek: verwerkingsactiviteit).
PROCESSING_ACTIVITIES: Final[Mapping[str, str]] = {
    "consent-link-issued": "Persoonlijke link voor toestemming gemaakt en verstuurd",
    "consent-link-revoked": "Persoonlijke link ingetrokken door een consulent",
    "consent-page-viewed": "Cliënt bekijkt de toestemmingspagina of de status",
    "consent-recorded": "Toestemming of weigering vastgelegd",
    "consent-withdrawn": "Toestemming ingetrokken",
    "consent-withdrawal-received": "Intrekking ontvangen: verwerking gestopt, gegevens gewist",
    "dossier-offer-sent": "Dossier naar de ontvangende gemeente gestuurd",
    "dossier-offer-received": "Dossier van de vertrekgemeente ontvangen",
}

_TRACEPARENT: Final = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INBOUND: ContextVar[TraceContext | None] = ContextVar("_INBOUND", default=None)


@dataclass(frozen=True)
class TraceContext:
    """W3C Trace Context: trace id (32 hex) and the current span id (16 hex)."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    def child(self) -> TraceContext:
        """A new span in the same trace."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The trace context of a ``traceparent`` header (version 00), or None when invalid."""
    match = _TRACEPARENT.match((value or "").strip())
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return None
    return TraceContext(match[1], match[2], match[3])


@contextmanager
def inbound_trace(context: TraceContext | None) -> Iterator[None]:
    """Records made inside this block are children of the inbound message's span."""
    token = _INBOUND.set(context)
    try:
        yield
    finally:
        _INBOUND.reset(token)


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


@dataclass(frozen=True)
class ProcessingRecord:
    """A processing log record as read back."""

    at: datetime
    trace_id: str
    span_id: str
    parent_span_id: str | None
    activity_id: str
    operation: str
    data_subject_id: str
    dossier_id: str | None


class ProcessingLog:
    """Writes processing records inside the caller's transaction."""

    def __init__(self, *, key: bytes) -> None:
        self._key = key

    def pseudonym(self, bsn: str) -> str:
        """The data subject id of a BSN: a keyed hash."""
        return hmac.new(self._key, bsn.encode(), hashlib.sha256).hexdigest()

    async def record(
        self,
        session: AsyncSession,
        *,
        activity_id: str,
        operation: Operation,
        bsn: str,
        now: datetime,
        dossier_id: str | None = None,
        trace: TraceContext | None = None,
    ) -> TraceContext:
        """Add one record; returns the span it was recorded under."""
        if activity_id not in PROCESSING_ACTIVITIES:
            raise ValueError(f"unknown processing activity {activity_id}")
        parent = trace or _INBOUND.get()
        span = parent.child() if parent is not None else TraceContext.new()
        await add_rows(
            session,
            ProcessingRecordRow,
            {
                "at": now,
                "trace_id": span.trace_id,
                "span_id": span.span_id,
                "parent_span_id": parent.span_id if parent is not None else None,
                "activity_id": activity_id,
                "operation": operation,
                "data_subject_id": self.pseudonym(bsn),
                "dossier_id": dossier_id,
            },
        )
        return span

    @staticmethod
    async def records(
        database: Database, *, dossier_id: str | None = None
    ) -> list[ProcessingRecord]:
        """Records, oldest first, optionally of one dossier."""
        query = select(ProcessingRecordRow).order_by(ProcessingRecordRow.id)
        if dossier_id is not None:
            query = query.where(ProcessingRecordRow.dossier_id == dossier_id)
        async with database.reading() as session:
            return [
                ProcessingRecord(
                    at=row.at,
                    trace_id=row.trace_id,
                    span_id=row.span_id,
                    parent_span_id=row.parent_span_id,
                    activity_id=row.activity_id,
                    operation=row.operation,
                    data_subject_id=row.data_subject_id,
                    dossier_id=row.dossier_id,
                )
                for row in await session.scalars(query)
            ]
