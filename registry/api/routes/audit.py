"""The audit trail of registry writes, for the operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from registry._wire import format_time
from registry.api.answers import AuditEventsAnswer, answer_responses
from registry.api.deps import OperatorDep, RegistryDep
from registry.errors import OperatorCredentialRequired

__all__ = [
    "list_audit_events",
    "router",
]

router = APIRouter(prefix="/audit-events", tags=["audit"])


@router.get("", responses=answer_responses(AuditEventsAnswer, OperatorCredentialRequired))
async def list_audit_events(
    request: Request,
    registry: RegistryDep,
    _operator: OperatorDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The newest audit events, newest first (operator)."""
    events = await registry.store.audit_events(limit=limit)
    data = [
        {
            "recordedAt": format_time(event.recorded_at),
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "detail": event.detail,
        }
        for event in events
    ]
    return registry.signer.answer(request, data)
