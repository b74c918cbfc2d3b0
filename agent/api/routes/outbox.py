"""The outbox for operators: list (e.g. dead letters) and requeue."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from agent.api.deps import OperatorDep, ServiceDep
from agent.api.problems import INVALID_INPUT, problem_responses
from agent.delivery.outbox import OutboxEntry
from agent.errors import OutboxMessageUnknown, Unauthorised

__all__ = ["list_outbox", "requeue", "router"]

router = APIRouter(
    tags=["outbox"],
    dependencies=[OperatorDep],
    responses=problem_responses(INVALID_INPUT, Unauthorised),
)


@router.get("/outbox")
async def list_outbox(
    service: ServiceDep,
    state: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
) -> list[OutboxEntry]:
    """Outbox messages, optionally in one state (dead = dead letters)."""
    return await service.outbox.list(state)


@router.post("/outbox/{messageId}/requeue", responses=problem_responses(OutboxMessageUnknown))
async def requeue(
    message_id: Annotated[uuid.UUID, Path(alias="messageId")], service: ServiceDep
) -> OutboxEntry:
    """Put a dead message back in the queue."""
    return await service.outbox.requeue(str(message_id))
