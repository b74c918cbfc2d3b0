"""Logboek Dataverwerkingen (Logius): one record per view or change of one person's data.

Each record holds the W3C trace context (trace id, span id, parent span id), the processing
activity, and the data subject as a keyed hash (HMAC-SHA256), never the BSN. A record is a child
of the running span (``protocol.logs``): while an inbound message is applied, that is the span
of its request, in the trace its sender's ``traceparent`` named.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.storage.tables import DossierRow, ProcessingRecordRow
from protocol import canonicalize
from protocol.logs import TraceContext, current_trace

__all__ = [
    "PROCESSING_ACTIVITIES",
    "Operation",
    "ProcessingLog",
    "ProcessingRecord",
]

Operation = Literal["read", "create", "update", "delete", "send", "receive"]

# The register of processing activities this agent performs (Logboek: verwerkingsactiviteit),
# each with the operation it is and its description.
PROCESSING_ACTIVITIES: Final[Mapping[str, tuple[Operation, str]]] = {
    "consent-link-issued": ("create", "Persoonlijke link voor toestemming gemaakt en verstuurd"),
    "consent-link-revoked": ("update", "Persoonlijke link ingetrokken door een consulent"),
    "consent-page-viewed": ("read", "Cliënt bekijkt de toestemmingspagina of de status"),
    "consent-recorded": ("create", "Toestemming of weigering vastgelegd"),
    "consent-withdrawn": ("update", "Toestemming ingetrokken"),
    "consent-withdrawal-received": (
        "delete",
        "Intrekking ontvangen: verwerking gestopt, gegevens gewist",
    ),
    "dossier-offer-sent": ("send", "Dossier naar de ontvangende gemeente gestuurd"),
    "dossier-offer-received": ("receive", "Dossier van de vertrekgemeente ontvangen"),
    "continued-provision-registered": (
        "create",
        "Cliënt en overgenomen hulpmiddelen in het register van voorzieningen opgenomen",
    ),
    "werkbak-search": ("read", "Consulent zoekt een dossier in de werkbak"),
    "werkbak-worklist-viewed": ("read", "Consulent bekijkt de open taken in de werkbak"),
    "werkbak-dossier-viewed": ("read", "Consulent bekijkt een dossier in de werkbak"),
    "werkbak-dossier-changed": ("update", "Consulent legt een handeling vast in de werkbak"),
    "werkbak-orders-viewed": ("read", "Planner bekijkt de open overnameopdrachten in de werkbak"),
    "werkbak-order-viewed": ("read", "Planner bekijkt een overnameopdracht in de werkbak"),
    "werkbak-order-changed": (
        "update",
        "Planner legt een status van een overnameopdracht vast in de werkbak",
    ),
    "dossier-pdf-made": (
        "read",
        "Dossier als PDF gemaakt om beveiligd te mailen naar een gemeente zonder aansluiting",
    ),
}


class ProcessingRecord(ApiModel):
    """A processing log record as read back."""

    at: datetime
    trace_id: str
    span_id: str
    parent_span_id: str | None
    activity_id: str
    operation: str
    data_subject_id: str
    dossier_id: str | None
    actor: str | None = None


class ProcessingLog:
    """Writes processing records inside the caller's transaction."""

    def __init__(self, *, key: bytes) -> None:
        self._key = key

    @classmethod
    def of(cls, settings: AgentSettings) -> ProcessingLog:
        """The log with the configured pseudonym key, else one derived from the signing key."""
        if settings.consent.pseudonym_key is not None:
            return cls(key=settings.consent.pseudonym_key.encode())
        # Derived from the private signing key, so each organisation has its own pseudonyms.
        secret = canonicalize(settings.private_jwk())
        return cls(
            key=hashlib.sha256(b"meeverhuizen processing log pseudonym key\0" + secret).digest()
        )

    def pseudonym(self, bsn: str) -> str:
        """The data subject id of a BSN: a keyed hash."""
        return hmac.new(self._key, bsn.encode(), hashlib.sha256).hexdigest()

    async def record(
        self,
        session: AsyncSession,
        activity_id: str,
        dossier: DossierRow,
        now: datetime,
        *,
        trace: TraceContext | None = None,
        actor: str | None = None,
    ) -> TraceContext:
        """Add one record of an activity on the dossier's client; returns its span.

        ``actor`` names the person (a werkbak user) on whose behalf the data is processed.
        """
        subject = self.pseudonym(dossier.client_bsn or "")
        return self._add(session, activity_id, dossier.id, subject, now, trace, actor)

    async def record_order(
        self,
        session: AsyncSession,
        activity_id: str,
        dossier_id: str,
        now: datetime,
        *,
        actor: str | None = None,
    ) -> TraceContext:
        """Add one record of an activity on the client of a supplier's order; returns its span.

        A supplier holds no dossier and no BSN: the record carries the dossier id the order
        names (the gemeente's, on every message about this move), and the data subject is that
        id under the same keyed hash, so the records of one client at this supplier link.
        """
        subject = self.pseudonym(f"dossier:{dossier_id}")
        return self._add(session, activity_id, dossier_id, subject, now, None, actor)

    def _add(
        self,
        session: AsyncSession,
        activity_id: str,
        dossier_id: str,
        subject: str,
        now: datetime,
        trace: TraceContext | None,
        actor: str | None,
    ) -> TraceContext:
        if activity_id not in PROCESSING_ACTIVITIES:
            raise ValueError(f"unknown processing activity {activity_id}")
        operation, _ = PROCESSING_ACTIVITIES[activity_id]
        parent = trace or current_trace()
        trace_id = parent.trace_id if parent is not None else secrets.token_hex(16)
        span = TraceContext(trace_id, secrets.token_hex(8))
        session.add(
            ProcessingRecordRow(
                at=now,
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_span_id=parent.span_id if parent is not None else None,
                activity_id=activity_id,
                operation=operation,
                data_subject_id=subject,
                dossier_id=dossier_id,
                actor=actor,
            )
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
            return [ProcessingRecord.model_validate(row) for row in await session.scalars(query)]
