"""The agent without HTTP: build the service, run delivery passes (tests, CLI, demo, benchmark)."""

from agent._directory import Directory, DirectoryEntry
from agent._outbox import DeliveryReport, OutboxEntry
from agent._register import CSV_COLUMNS, ImportResult
from agent._runtime import open_service, run_scheduler
from agent._service import AgentService
from agent._states import DEPARTING_TRANSITIONS, RECEIVING_TRANSITIONS
from agent._views import ConsentInput, DossierStart, DossierSummary, DossierView

__all__ = [
    "CSV_COLUMNS",
    "DEPARTING_TRANSITIONS",
    "RECEIVING_TRANSITIONS",
    "AgentService",
    "ConsentInput",
    "DeliveryReport",
    "Directory",
    "DirectoryEntry",
    "DossierStart",
    "DossierSummary",
    "DossierView",
    "ImportResult",
    "OutboxEntry",
    "open_service",
    "run_scheduler",
]
