"""Work for people: tasks for a consulent or the gemeente when the process cannot go on by itself.

A passed deadline or a party that cannot be reached is escalated to a person, never dropped
silently. Tasks name the dossier and a stable kind; they never hold a BSN.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import Field
from sqlalchemy import ColumnElement, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.errors import TaskNotOpen, TaskUnknown
from agent.storage.database import Database
from agent.storage.tables import DossierRow, TaskRow
from protocol.clock import Clock

__all__ = [
    "TASK_KINDS",
    "Task",
    "TaskCompletion",
    "TaskKind",
    "Tasks",
    "close_open_tasks",
    "close_order_tasks",
    "devices_with_open_tasks",
    "open_task",
]

TaskKind = Literal[
    "consent-refused",
    "consent-no-answer",
    "receiver-not-connected",
    "no-supplier",
    "supplier-refused",
    "supplier-overdue",
    "supplier-problem",
    "supplier-contact-due",
    "settlement-disputed",
    "settlement-unanswered",
    "order-stopped",
    "emigration",
    "wlz-institution",
    "manual-check",
    "provide-alternative",
    "fixed-device-need",
    "end-beschikking",
    "eigen-bijdrage-start",
    "eigen-bijdrage-end",
    "transfer-price",
    "letter-not-sent",
    "collect-device",
    "client-deceased",
    "consent-withdrawn",
    "move-within-region",
]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
TaskState = Literal["open", "done"]


class Task(ApiModel):
    """A task for a consulent or case worker about one dossier; never holds a BSN."""

    id: str
    dossier_id: str | None
    device_id: str | None = Field(default=None, description="The device the task is about.")
    order_id: str | None = Field(
        default=None, description="The takeover order the task is about (a supplier's task)."
    )
    kind: str
    state: str
    description: str
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    done_by: str | None
    assigned_to: str | None = None
    note: str | None = None


class TaskCompletion(ApiModel):
    """Who finished the task (a name or employee number, not a client identifier)."""

    done_by: str = Field(min_length=1, max_length=100)


async def open_task(
    session: AsyncSession,
    kind: TaskKind,
    description: str,
    now: datetime,
    *,
    dossier_id: str | None = None,
    device_id: str | None = None,
    order_id: str | None = None,
    due_at: datetime | None = None,
) -> TaskRow:
    """Open a task inside the caller's transaction; one open task per dossier, kind and device,
    and on a supplier's agent one per order and kind.

    ``description`` names the client and the device in whole Dutch sentences (B1).
    """
    if order_id is not None:
        existing = await session.scalar(
            select(TaskRow).where(
                TaskRow.order_id == order_id, TaskRow.kind == kind, TaskRow.state == "open"
            )
        )
        if existing is not None:
            return existing
    if dossier_id is not None:
        existing = await session.scalar(
            select(TaskRow).where(
                TaskRow.dossier_id == dossier_id,
                TaskRow.kind == kind,
                TaskRow.state == "open",
                TaskRow.device_id.is_(None)
                if device_id is None
                else TaskRow.device_id == device_id,
            )
        )
        if existing is not None:
            return existing
    row = TaskRow(
        id=str(uuid.uuid4()),
        dossier_id=dossier_id,
        device_id=device_id,
        order_id=order_id,
        kind=kind,
        state="open",
        description=description,
        due_at=due_at,
        created_at=now,
    )
    session.add(row)
    return row


async def close_open_tasks(
    session: AsyncSession,
    dossier_id: str,
    device_id: str | None,
    kinds: tuple[TaskKind, ...],
    *,
    done_by: str,
    now: datetime,
    note: str | None = None,
) -> None:
    """The device's open tasks of these kinds are done: what they asked for happened.

    ``device_id`` None: the dossier's own tasks (about no single device).
    """
    device = TaskRow.device_id.is_(None) if device_id is None else TaskRow.device_id == device_id
    about = (TaskRow.dossier_id == dossier_id, device)
    await _close(session, about, kinds, done_by=done_by, now=now, note=note)


async def close_order_tasks(
    session: AsyncSession,
    order_id: str,
    kinds: tuple[TaskKind, ...],
    *,
    done_by: str,
    now: datetime,
    note: str,
) -> None:
    """A supplier's open tasks of these kinds about the order are done or no longer needed."""
    await _close(
        session, (TaskRow.order_id == order_id,), kinds, done_by=done_by, now=now, note=note
    )


async def _close(
    session: AsyncSession,
    about: tuple[ColumnElement[bool], ...],
    kinds: tuple[TaskKind, ...],
    *,
    done_by: str,
    now: datetime,
    note: str | None,
) -> None:
    tasks = await session.scalars(
        select(TaskRow).where(*about, TaskRow.kind.in_(kinds), TaskRow.state == "open")
    )
    for task in tasks:
        task.state, task.done_at, task.done_by, task.note = "done", now, done_by, note


async def devices_with_open_tasks(
    session: AsyncSession, dossier_id: str, kinds: tuple[str, ...]
) -> set[str]:
    """The devices of a dossier that have an open task of one of ``kinds``."""
    rows = await session.scalars(
        select(TaskRow.device_id).where(
            TaskRow.dossier_id == dossier_id,
            TaskRow.kind.in_(kinds),
            TaskRow.state == "open",
            TaskRow.device_id.is_not(None),
        )
    )
    return {device_id for device_id in rows if device_id is not None}


class Tasks:
    """Reading and closing tasks."""

    def __init__(self, *, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def list(
        self, state: TaskState | None = None, *, dossier_id: str | None = None
    ) -> list[Task]:
        """Tasks of urgent dossiers first, then oldest first."""
        query = (
            select(TaskRow)
            .outerjoin(DossierRow, DossierRow.id == TaskRow.dossier_id)
            .order_by(
                case((DossierRow.urgent.is_(True), 0), else_=1), TaskRow.created_at, TaskRow.id
            )
        )
        if state is not None:
            query = query.where(TaskRow.state == state)
        if dossier_id is not None:
            query = query.where(TaskRow.dossier_id == dossier_id)
        async with self._database.reading() as session:
            return [Task.model_validate(row) for row in await session.scalars(query)]

    async def complete(self, task_id: str, *, done_by: str, note: str | None = None) -> Task:
        """Close a task; ``note`` says what was done (a closed task stays as it was closed)."""
        async with self._database.transaction() as session:
            row = await _locked(session, task_id)
            if row.state == "open":
                row.state = "done"
                row.done_at = self._clock.now()
                row.done_by = done_by
                row.note = note
            return Task.model_validate(row)

    async def take(self, task_id: str, *, by: str) -> Task:
        """``by`` takes an open task: it is theirs until they close it or hand it back."""
        async with self._database.transaction() as session:
            row = await _locked(session, task_id)
            if row.state != "open":
                raise TaskNotOpen("this task is closed already")
            if row.assigned_to not in (None, by):
                raise TaskNotOpen(f"this task is taken by {row.assigned_to}")
            row.assigned_to = by
            return Task.model_validate(row)

    async def hand_back(self, task_id: str, *, by: str) -> Task:
        """Give a taken task back to the werkbak, for anyone to take."""
        async with self._database.transaction() as session:
            row = await _locked(session, task_id)
            if row.state != "open" or row.assigned_to != by:
                raise TaskNotOpen("only the person who took an open task can hand it back")
            row.assigned_to = None
            return Task.model_validate(row)


async def _locked(session: AsyncSession, task_id: str) -> TaskRow:
    row = await session.get(TaskRow, task_id, with_for_update=True)
    if row is None:
        raise TaskUnknown("no task with this id")
    return row
