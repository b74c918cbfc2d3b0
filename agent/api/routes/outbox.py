"""The outbox for operators: list (e.g. dead letters) and requeue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path, Query

from agent.api.deps import OperatorDep, ServiceDep, token_router
from agent.api.problems import problem_responses
from agent.delivery.outbox import OutboxEntry, OutboxState
from agent.errors import OutboxMessageUnknown

__all__ = ["list_outbox", "requeue", "router"]

router = token_router("outbox", OperatorDep)


@router.get("/outbox")
async def list_outbox(
    service: ServiceDep,
    state: Annotated[OutboxState | None, Query()] = None,
) -> list[OutboxEntry]:
    """Outbox messages, optionally in one state (dead = dead letters; skipped = not sent, as
    the receiver does not list that informative message type)."""
    return await service.outbox.list(state)


@router.post("/outbox/{messageId}/requeue", responses=problem_responses(OutboxMessageUnknown))
async def requeue(
    message_id: Annotated[uuid.UUID, Path(alias="messageId")], service: ServiceDep
) -> OutboxEntry:
    """Put a dead message back in the queue."""
    return await service.outbox.requeue(str(message_id))
