"""What every part of one agent works with: its settings, database, clock, registry and outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.core.hooks import Hooks
from agent.core.processing_log import ProcessingLog
from agent.delivery.outgoing import Outgoing
from agent.directory import Directory
from agent.errors import AgentError, registry_failure
from agent.metrics import AgentMetrics
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.working_days import WorkingDayCalendar
from protocol.clock import Clock
from protocol.logs import log_event
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["AgentContext"]

_log = logging.getLogger("meeverhuizen.agent")


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """The shared parts of one agent, made once in ``agent.service`` and handed to each part."""

    settings: AgentSettings
    database: Database
    clock: Clock
    # The registry: endpoints, keys and contracts of the other participants.
    directory: Directory
    # Queues this agent's messages and back-office events in the caller's transaction.
    outgoing: Outgoing
    # Where the capabilities register their handlers, hooks and jobs with the core.
    hooks: Hooks
    log: ProcessingLog
    metrics: AgentMetrics
    calendar: WorkingDayCalendar

    async def served_gemeentecodes(self, *, refresh: bool = False) -> frozenset[str]:
        """The gemeenten this agent serves: the configured one and those the registry lists.

        A regional service serves several gemeenten with one agent (docs/protocol.md section 2).
        ``refresh`` asks the registry again at once (a gemeente assigned since the kept answer).
        """
        configured = {self.settings.gemeentecode} if self.settings.gemeentecode else set()
        try:
            own = await self.directory.participant(self.settings.oin, refresh=refresh)
        except (ParticipantUnknown, ParticipantNotEnrolled):
            return frozenset(configured)
        except RegistryError as exc:
            raise registry_failure(exc) from exc
        return frozenset(configured | set(own.gemeentecodes))

    async def served_or_own(self) -> frozenset[str]:
        """:meth:`served_gemeentecodes`, or the configured gemeente alone while the registry
        cannot be asked: work goes on, and an offer is never addressed to this agent itself
        (``core.departing``)."""
        try:
            return await self.served_gemeentecodes()
        except AgentError as exc:
            log_event(_log, "served_gemeenten_unknown", level=logging.WARNING, code=exc.code)
            return frozenset({self.settings.gemeentecode or ""})
