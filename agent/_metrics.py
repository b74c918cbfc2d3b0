"""Prometheus metrics of one agent, in a registry of its own (no process-wide default registry).

Other modules count through the service: ``service.metrics.consent_outcome("given")``. Labels are
closed sets (message types, outcomes), never a BSN, id or token.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import func, select

from agent._db import Database, OutboxRow

__all__ = ["CONTENT_TYPE", "AgentMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AgentMetrics:
    """The agent's counters and gauges; :meth:`render` gives the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._received = self._counter(
            "messages_received", "Inbound protocol messages stored.", "message_type"
        )
        self._delivered = self._counter(
            "messages_delivered", "Outbox messages delivered.", "kind", "message_type"
        )
        self._failed = self._counter(
            "delivery_attempts_failed", "Failed delivery attempts.", "kind", "message_type"
        )
        self._dead = self._counter(
            "dead_letters", "Outbox messages that became dead letters.", "kind", "message_type"
        )
        self._deadlines = self._counter(
            "deadlines_breached", "Deadlines that passed without an answer.", "kind"
        )
        self._consent = self._counter("consent_outcomes", "Consent answers recorded.", "outcome")
        self._resolutions = self._counter(
            "registry_resolutions", "Registry look-ups by how they were answered.", "result"
        )
        self._depth = Gauge(
            "meeverhuizen_outbox_messages",
            "Outbox messages by state.",
            ["state"],
            registry=self.registry,
        )
        self._oldest = Gauge(
            "meeverhuizen_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox message (0 when none).",
            registry=self.registry,
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(f"meeverhuizen_{name}", documentation, labels, registry=self.registry)

    def message_received(self, message_type: str) -> None:
        self._received.labels(message_type).inc()

    def message_delivered(self, kind: str, message_type: str) -> None:
        self._delivered.labels(kind, message_type).inc()

    def delivery_failed(self, kind: str, message_type: str) -> None:
        self._failed.labels(kind, message_type).inc()

    def message_dead(self, kind: str, message_type: str) -> None:
        self._dead.labels(kind, message_type).inc()

    def deadline_breached(self, kind: str) -> None:
        """A deadline passed (e.g. ``"consent-answer"``, ``"supplier-contact"``)."""
        self._deadlines.labels(kind).inc()

    def consent_outcome(self, outcome: str) -> None:
        """A consent answer (``"given"``, ``"refused"``, ``"withdrawn"``, ``"expired"``)."""
        self._consent.labels(outcome).inc()

    def registry_resolution(self, result: str) -> None:
        """A registry look-up: cache-hit, fetched, revalidated, stale or failed."""
        self._resolutions.labels(result).inc()

    async def refresh_outbox(self, database: Database, now: datetime) -> None:
        """Set the outbox gauges from the database (called per scrape)."""
        async with database.reading() as session:
            counts = await session.execute(
                select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            )
            oldest = await session.scalar(
                select(func.min(OutboxRow.created_at)).where(OutboxRow.state == "pending")
            )
        found: dict[str, int] = {row[0]: row[1] for row in counts.all()}
        by_state = dict.fromkeys(("pending", "delivered", "dead"), 0) | found
        for state, count in by_state.items():
            self._depth.labels(state).set(count)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        self._oldest.set(max(age, 0.0))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
