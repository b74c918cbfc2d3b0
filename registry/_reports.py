"""Storage of the daily reports and their sums over a period (``registry.monitoring``).

A report is stored per organisation and day; a newer report for the same day replaces it (the
agent sends again after a failure), an older one is refused. Sums are exact here: counts below
the threshold are hidden only where the public sees them (``registry.monitoring.suppress``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from protocol.clock import Clock
from registry._db import AuditEvent, DailyReportRow, ParticipantRow, session_factory
from registry.errors import ParticipantUnknown, RequestReplayed
from registry.monitoring import DailyReport, add_counts, count_fields

__all__ = ["PeriodFigures", "ReportStore"]

# The tasks open at the end of a period come from each organisation's last report in it; every
# other count is a flow over the period and is added up over its days.
_SNAPSHOT_PREFIX = "openTasks."


@dataclass(frozen=True)
class PeriodFigures:
    """Exact sums over a period, one per organisation that reported in it."""

    parts: tuple[dict[str, int], ...]

    @property
    def organisations(self) -> int:
        """How many organisations reported in the period."""
        return len(self.parts)


def _period_sum(rows: Sequence[DailyReportRow]) -> dict[str, int]:
    """One organisation's period: its flows added up, its open tasks as on its last day."""
    flows = [
        {k: v for k, v in row.counts.items() if not k.startswith(_SNAPSHOT_PREFIX)} for row in rows
    ]
    last = max(rows, key=lambda row: row.day)
    snapshot = {k: v for k, v in last.counts.items() if k.startswith(_SNAPSHOT_PREFIX)}
    return add_counts([*flows, snapshot])


class ReportStore:
    """Stores reports and answers sums per organisation or per kind of organisation."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock) -> None:
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._clock = clock

    async def record(self, report: DailyReport) -> None:
        """Store ``report`` (its sender already verified), replacing an older one of its day."""
        now = self._clock.now()
        try:
            async with self._sessions.begin() as session:
                participant = await session.scalar(
                    select(ParticipantRow).where(ParticipantRow.oin == report.oin)
                )
                if participant is None:
                    raise ParticipantUnknown(f"no participant with OIN {report.oin}")
                await self._replace(session, participant.id, report, now)
                session.add(
                    AuditEvent(
                        recorded_at=now,
                        actor=report.oin,
                        action="daily_report_recorded",
                        subject=report.oin,
                        detail={"day": report.day.isoformat()},
                    )
                )
        except IntegrityError as exc:
            # Two reports of one day at once: the other one was stored first.
            raise RequestReplayed("a report for this day was stored at the same time") from exc

    @staticmethod
    async def _replace(
        session: AsyncSession, participant_id: int, report: DailyReport, now: datetime
    ) -> None:
        existing = await session.scalar(
            select(DailyReportRow).where(
                DailyReportRow.participant_id == participant_id,
                DailyReportRow.day == report.day,
            )
        )
        counts = count_fields(report)
        if existing is None:
            session.add(
                DailyReportRow(
                    participant_id=participant_id,
                    day=report.day,
                    counts=counts,
                    reported_at=report.reported_at,
                    recorded_at=now,
                )
            )
            return
        if existing.reported_at >= report.reported_at:
            raise RequestReplayed("a report for this day made at the same time or later is stored")
        existing.counts, existing.reported_at, existing.recorded_at = (
            counts,
            report.reported_at,
            now,
        )

    async def of_organisation(self, oin: str, *, first: date, last: date) -> PeriodFigures:
        """The sums of one organisation's reports from ``first`` to ``last`` (inclusive)."""
        query = (
            select(DailyReportRow)
            .join(ParticipantRow, ParticipantRow.id == DailyReportRow.participant_id)
            .where(ParticipantRow.oin == oin)
        )
        return await self._figures(query, first, last)

    async def of_kind(
        self, kind: Literal["gemeente", "supplier"], *, first: date, last: date
    ) -> PeriodFigures:
        """The sums of every gemeente's, or every supplier's, reports in the period."""
        query = (
            select(DailyReportRow)
            .join(ParticipantRow, ParticipantRow.id == DailyReportRow.participant_id)
            .where(ParticipantRow.kind == kind)
        )
        return await self._figures(query, first, last)

    async def _figures(
        self, query: Select[DailyReportRow], first: date, last: date
    ) -> PeriodFigures:
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    query.where(DailyReportRow.day >= first, DailyReportRow.day <= last)
                )
            )
        by_organisation: dict[int, list[DailyReportRow]] = {}
        for row in rows:
            by_organisation.setdefault(row.participant_id, []).append(row)
        return PeriodFigures(tuple(_period_sum(group) for group in by_organisation.values()))
