"""Tasks for the gemeente's consulenten and case workers."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from agent._tasks import Task
from agent._views import TaskCompletion, TaskView
from agent.api._problems import BODY_TOO_LARGE, INVALID_INPUT, problem_responses
from agent.api.deps import CaseSystemDep, ServiceDep
from agent.errors import TaskUnknown, Unauthorised

__all__ = ["complete_task", "list_tasks", "router"]

router = APIRouter(
    tags=["tasks"],
    dependencies=[CaseSystemDep],
    responses=problem_responses(INVALID_INPUT, Unauthorised),
)


def _view(task: Task) -> TaskView:
    return TaskView.model_validate(dataclasses.asdict(task))


@router.get("/tasks")
async def list_tasks(
    service: ServiceDep,
    state: Annotated[Literal["open", "done"] | None, Query()] = None,
    dossier_id: Annotated[uuid.UUID | None, Query(alias="dossierId")] = None,
) -> list[TaskView]:
    """Tasks, optionally only open or done ones, or those of one dossier."""
    tasks = await service.tasks.list(state, dossier_id=str(dossier_id) if dossier_id else None)
    return [_view(task) for task in tasks]


@router.post("/tasks/{taskId}/done", responses=problem_responses(BODY_TOO_LARGE, TaskUnknown))
async def complete_task(
    task_id: Annotated[uuid.UUID, Path(alias="taskId")], done: TaskCompletion, service: ServiceDep
) -> TaskView:
    """Mark a task as done."""
    return _view(await service.tasks.complete(str(task_id), done_by=done.done_by))
