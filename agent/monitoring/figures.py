"""The counts of one day, read from the agent's own tables (``registry.monitoring``).

Days are days in Europe/Amsterdam. A gemeente counts its dossiers on each side; a supplier counts
the takeover orders it received as receiving handovers (the departing gemeente counts the
departing side). Days without a device are counted by the receiving gemeente, from the move date
until its dossier completed (every device taken over or its alternative delivered).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.tables import DeadlineRow, DossierRow, SupplierOrderRow, TaskRow, TransitionRow
from agent.working_days import AMSTERDAM
from registry.monitoring import (
    DEADLINE_KINDS,
    DailyReport,
    DaysWithoutDevice,
    DeadlineOutcomes,
    Deadlines,
    HandoverCounts,
    Handovers,
    OpenTasks,
    bucket_for_days,
)

__all__ = ["count_day", "day_bounds"]

_TAKEN_OVER: Final = "taken-over"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The start of ``day`` and of the next day in Amsterdam, in UTC."""
    start = datetime.combine(day, time(), tzinfo=AMSTERDAM)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=AMSTERDAM)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _dossiers_started(session: AsyncSession, start: datetime, end: datetime) -> Counter[str]:
    rows = await session.execute(
        select(DossierRow.side, func.count())
        .where(DossierRow.created_at >= start, DossierRow.created_at < end)
        .group_by(DossierRow.side)
    )
    return Counter(dict(rows.all()))


async def _completions(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[str, date | None, datetime]]:
    rows = await session.execute(
        select(DossierRow.side, DossierRow.move_date, TransitionRow.at)
        .join(DossierRow, DossierRow.id == TransitionRow.dossier_id)
        .where(
            TransitionRow.to_state == "completed",
            TransitionRow.at >= start,
            TransitionRow.at < end,
        )
    )
    return list(rows.all())


def _days_without_device(completions: list[tuple[str, date | None, datetime]]) -> DaysWithoutDevice:
    buckets: Counter[str] = Counter()
    for side, move_date, at in completions:
        if side != "receiving" or move_date is None:
            continue
        days = (at.astimezone(AMSTERDAM).date() - move_date).days
        buckets[bucket_for_days(max(0, days))] += 1
    return DaysWithoutDevice.model_validate(dict(buckets))


async def _gemeente_handovers(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[HandoverCounts, DaysWithoutDevice]:
    started = await _dossiers_started(session, start, end)
    completions = await _completions(session, start, end)
    completed = Counter(side for side, _, _ in completions)
    handovers = HandoverCounts(
        departing=Handovers(started=started["departing"], completed=completed["departing"]),
        receiving=Handovers(started=started["receiving"], completed=completed["receiving"]),
    )
    return handovers, _days_without_device(completions)


async def _supplier_handovers(
    session: AsyncSession, start: datetime, end: datetime
) -> HandoverCounts:
    received = await session.scalar(
        select(func.count())
        .select_from(SupplierOrderRow)
        .where(SupplierOrderRow.received_at >= start, SupplierOrderRow.received_at < end)
    )
    taken_over = await session.scalar(
        select(func.count())
        .select_from(SupplierOrderRow)
        .where(
            SupplierOrderRow.status == _TAKEN_OVER,
            SupplierOrderRow.updated_at >= start,
            SupplierOrderRow.updated_at < end,
        )
    )
    return HandoverCounts(receiving=Handovers(started=received or 0, completed=taken_over or 0))


async def _deadlines(session: AsyncSession, start: datetime, end: datetime) -> Deadlines:
    """Deadlines that came due on the day: met when stopped before, missed when they fired."""
    rows = await session.execute(
        select(DeadlineRow.kind, DeadlineRow.state, func.count())
        .where(
            DeadlineRow.kind.in_(list(DEADLINE_KINDS.values())),
            DeadlineRow.due_at >= start,
            DeadlineRow.due_at < end,
        )
        .group_by(DeadlineRow.kind, DeadlineRow.state)
    )
    outcomes: dict[str, Counter[str]] = {kind: Counter() for kind in DEADLINE_KINDS.values()}
    for kind, state, count in rows.all():
        # A deadline still pending after its day has passed without the fact it waits for.
        outcomes[kind]["met" if state == "cancelled" else "missed"] += count
    return Deadlines.model_validate(
        {
            field: DeadlineOutcomes(met=outcomes[kind]["met"], missed=outcomes[kind]["missed"])
            for field, kind in DEADLINE_KINDS.items()
        }
    )


async def _open_tasks(session: AsyncSession, end: datetime) -> OpenTasks:
    """Tasks open at the end of the day: made before it, and not done before it."""
    rows = await session.execute(
        select(TaskRow.kind, func.count())
        .where(TaskRow.created_at < end, or_(TaskRow.done_at.is_(None), TaskRow.done_at >= end))
        .group_by(TaskRow.kind)
    )
    known = set(OpenTasks.model_fields)
    counts = {kind.replace("-", "_"): count for kind, count in rows.all()}
    return OpenTasks.model_validate({k: v for k, v in counts.items() if k in known})


async def count_day(
    session: AsyncSession,
    *,
    oin: str,
    kind: Literal["gemeente", "supplier"],
    day: date,
    now: datetime,
) -> DailyReport:
    """The report of ``day`` for this organisation, counted at ``now``."""
    start, end = day_bounds(day)
    if kind == "gemeente":
        handovers, days = await _gemeente_handovers(session, start, end)
    else:
        handovers, days = await _supplier_handovers(session, start, end), DaysWithoutDevice()
    return DailyReport(
        oin=oin,
        kind=kind,
        day=day,
        reported_at=now,
        handovers=handovers,
        days_without_device=days,
        deadlines=await _deadlines(session, start, end),
        open_tasks=await _open_tasks(session, end),
    )
