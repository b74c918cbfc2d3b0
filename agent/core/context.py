"""What every part of one agent works with: its settings, database, clock, registry and outbox."""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.hooks import Hooks
from agent.core.processing_log import ProcessingLog
from agent.delivery.outgoing import Outgoing
from agent.directory import Directory
from agent.errors import registry_failure
from agent.metrics import AgentMetrics
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.working_days import WorkingDayCalendar
from protocol.clock import Clock
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["AgentContext"]


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
