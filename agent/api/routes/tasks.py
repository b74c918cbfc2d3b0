"""Tasks for the gemeente's consulenten and case workers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Path, Query

from agent.api.deps import CaseSystemDep, ServiceDep, token_router
from agent.api.problems import BODY_TOO_LARGE, problem_responses
from agent.core.tasks import Task, TaskCompletion
from agent.errors import TaskUnknown

__all__ = ["complete_task", "list_tasks", "router"]

router = token_router("tasks", CaseSystemDep)


@router.get("/tasks")
async def list_tasks(
    service: ServiceDep,
    state: Annotated[Literal["open", "done"] | None, Query()] = None,
    dossier_id: Annotated[uuid.UUID | None, Query(alias="dossierId")] = None,
) -> list[Task]:
    """Tasks, optionally only open or done ones, or those of one dossier."""
    return await service.tasks.list(state, dossier_id=str(dossier_id) if dossier_id else None)


@router.post("/tasks/{taskId}/done", responses=problem_responses(BODY_TOO_LARGE, TaskUnknown))
async def complete_task(
    task_id: Annotated[uuid.UUID, Path(alias="taskId")], done: TaskCompletion, service: ServiceDep
) -> Task:
    """Mark a task as done."""
    return await service.tasks.complete(str(task_id), done_by=done.done_by)
