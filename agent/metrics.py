"""Prometheus metrics of one agent, in a registry of its own (no process-wide default registry).

One :class:`AgentMetrics` per agent is handed to every part that counts. Labels are closed sets
(message types, outcomes), never a BSN, id or token.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "AgentMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STALL_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


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
        self._stalls = Histogram(
            "meeverhuizen_event_loop_stall_seconds",
            "How late the event loop ran a 20 ms timer: time it could not serve anything else.",
            buckets=_STALL_BUCKETS,
            registry=self.registry,
        )
        self._longest_stall = Gauge(
            "meeverhuizen_event_loop_longest_stall_seconds",
            "The longest event loop stall since the agent started.",
            registry=self.registry,
        )
        self._longest = 0.0
        self._daily_reports = self._counter(
            "daily_reports",
            "Daily reports to the registry by outcome (sent, failed, given-up).",
            "outcome",
        )
        self._unsent = Gauge(
            "meeverhuizen_daily_reports_unsent",
            "Days whose report has not reached the registry yet (0 when up to date).",
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

    def outbox(self, counts: Mapping[str, int], oldest_pending_seconds: float) -> None:
        """Set the outbox gauges: messages per state, age of the oldest pending one."""
        by_state = dict.fromkeys(("pending", "delivered", "skipped", "dead"), 0) | dict(counts)
        for state, count in by_state.items():
            self._depth.labels(state).set(count)
        self._oldest.set(max(oldest_pending_seconds, 0.0))

    def share_event_loop(self, watched: AgentMetrics) -> None:
        """Show ``watched``'s event loop figures as this agent's: one process hosts both."""
        for own, shared in (
            (self._stalls, watched._stalls),
            (self._longest_stall, watched._longest_stall),
        ):
            self.registry.unregister(own)
            self.registry.register(shared)

    def loop_stall(self, seconds: float) -> None:
        """How much later than asked the event loop ran a timer (a blocked loop shows here)."""
        self._stalls.observe(seconds)
        self._longest_stall.set(max(self._longest, seconds))
        self._longest = max(self._longest, seconds)

    def daily_report(self, outcome: str, days: int = 1) -> None:
        """Daily reports to the registry: ``"sent"``, ``"failed"`` or ``"given-up"``."""
        self._daily_reports.labels(outcome).inc(days)

    def daily_reports_unsent(self, days: int) -> None:
        """How many days wait for their report to reach the registry."""
        self._unsent.set(days)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
