"""The outbox for operators: list (e.g. dead letters) and requeue."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from agent._outbox import OutboxEntry
from agent._views import OutboxEntryView
from agent.api._problems import INVALID_INPUT, problem_responses
from agent.api.deps import OperatorDep, ServiceDep
from agent.errors import OutboxMessageUnknown, Unauthorised

__all__ = ["list_outbox", "requeue", "router"]

router = APIRouter(
    tags=["outbox"],
    dependencies=[OperatorDep],
    responses=problem_responses(INVALID_INPUT, Unauthorised),
)


def _view(entry: OutboxEntry) -> OutboxEntryView:
    return OutboxEntryView.model_validate(dataclasses.asdict(entry))


@router.get("/outbox")
async def list_outbox(
    service: ServiceDep,
    state: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
) -> list[OutboxEntryView]:
    """Outbox messages, optionally in one state (dead = dead letters)."""
    return [_view(entry) for entry in await service.outbox.list(state)]


@router.post("/outbox/{messageId}/requeue", responses=problem_responses(OutboxMessageUnknown))
async def requeue(
    message_id: Annotated[uuid.UUID, Path(alias="messageId")], service: ServiceDep
) -> OutboxEntryView:
    """Put a dead message back in the queue."""
    return _view(await service.outbox.requeue(str(message_id)))
