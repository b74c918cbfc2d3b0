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

from agent.storage.tables import (
    DeadlineRow,
    DossierRow,
    OrderRow,
    SupplierOrderRow,
    TaskRow,
    TransitionRow,
)
from agent.supplier.settlement import ORDER_AWAITED
from agent.working_days import AMSTERDAM, dutch_date_of
from registry.monitoring import (
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
# An order's statuses: the client was contacted in time, or the order still waits for it.
_CONTACTED: Final = frozenset({"client-contacted", "taken-over", "inspected", "replaced"})
_WAITING: Final = frozenset({"placed", "received", "problem"})


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
        days = (dutch_date_of(at) - move_date).days
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


def _contact_outcome(status: str, overdue: bool, *, ended: bool) -> str | None:
    """Met, missed, or not counted: an order refused or stopped was not the supplier's to meet."""
    if overdue:
        return "missed"
    if status in _CONTACTED:
        return "met"
    if status in _WAITING:
        return "missed" if ended else None
    return None


async def _client_contact(
    session: AsyncSession, kind: str, day: date, *, ended: bool
) -> DeadlineOutcomes:
    """Orders whose last day to contact the client (5 working days) is ``day``."""
    table = OrderRow if kind == "gemeente" else SupplierOrderRow
    rows = await session.execute(
        select(table.status, table.overdue).where(table.contact_before == day)
    )
    outcomes = Counter(
        _contact_outcome(status, overdue, ended=ended) for status, overdue in rows.all()
    )
    return DeadlineOutcomes(met=outcomes["met"], missed=outcomes["missed"])


async def _settlement_order(
    session: AsyncSession, start: datetime, end: datetime, now: datetime
) -> DeadlineOutcomes:
    """A price offer that came before its takeover order: met when the order came in time."""
    rows = await session.execute(
        select(DeadlineRow.state, DeadlineRow.due_at).where(
            DeadlineRow.kind == ORDER_AWAITED, DeadlineRow.due_at >= start, DeadlineRow.due_at < end
        )
    )
    outcomes: Counter[str] = Counter()
    for state, due_at in rows.all():
        if state == "cancelled":
            outcomes["met"] += 1
        elif state == "fired" or due_at <= now:
            outcomes["missed"] += 1
    return DeadlineOutcomes(met=outcomes["met"], missed=outcomes["missed"])


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
        deadlines=Deadlines(
            client_contact=await _client_contact(session, kind, day, ended=end <= now),
            settlement_order=await _settlement_order(session, start, end, now),
        ),
        open_tasks=await _open_tasks(session, end),
    )
