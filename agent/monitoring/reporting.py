"""The daily job: yesterday's counts (and any day not sent yet), signed, to the registry.

The job runs every quarter of an hour. Each run sends every day that is not yet in the registry,
oldest first, and stops at the first failure; the next run tries again. After a start it sends
the last week again (the registry replaces a day's report with a newer one), so a day missed
while the agent was down is filled in. A failure never stops the agent: it is logged
(``daily_report_failed``) and counted, and ``meeverhuizen_daily_reports_unsent`` tells the
operator how many days wait (docs/operations.md).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Final

from agent.core.context import AgentContext
from agent.core.hooks import Hooks
from agent.monitoring.figures import count_day
from agent.working_days import AMSTERDAM
from protocol.logs import log_event
from registry.errors import RegistryError
from registry.monitoring import DailyReport

__all__ = ["CATCH_UP_DAYS", "INTERVAL_SECONDS", "DailyReports"]

INTERVAL_SECONDS: Final = 900.0
CATCH_UP_DAYS: Final = 7
_log = logging.getLogger("meeverhuizen.agent.monitoring")


class DailyReports:
    """Counts this organisation's days and sends them, signed, to the registry."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent
        today = self._today()
        self._unsent = {today - timedelta(days=n) for n in range(1, CATCH_UP_DAYS + 1)}
        agent.metrics.daily_reports_unsent(len(self._unsent))

    def register(self, hooks: Hooks) -> None:
        """Send the reports on a schedule, from the start."""
        hooks.every(INTERVAL_SECONDS, "daily-report", self.run)

    def _today(self) -> date:
        return self._agent.clock.now().astimezone(AMSTERDAM).date()

    async def report(self, day: date) -> DailyReport:
        """The counts of ``day`` for this organisation, as they stand now."""
        settings = self._agent.settings
        async with self._agent.database.reading() as session:
            return await count_day(
                session,
                oin=settings.oin,
                kind=settings.role,
                day=day,
                now=self._agent.clock.now(),
            )

    async def run(self) -> bool:
        """Send every day not yet sent, up to yesterday; never raises (nothing to deliver)."""
        self._unsent.add(self._today() - timedelta(days=1))
        metrics = self._agent.metrics
        for day in sorted(self._unsent):
            try:
                report = await self.report(day)
                await self._agent.directory.send_daily_report(
                    report, private_jwk=self._agent.settings.private_jwk()
                )
            # The job's boundary: whatever went wrong, the day waits for the next run and the
            # operator sees it; the text of the error is not logged (it may quote data).
            except Exception as exc:
                code = exc.code if isinstance(exc, RegistryError) else type(exc).__name__
                log_event(_log, "daily_report_failed", level=logging.WARNING, code=code)
                metrics.daily_report("failed")
                break
            self._unsent.discard(day)
            metrics.daily_report("sent")
            log_event(_log, "daily_report_sent", count=len(self._unsent))
        metrics.daily_reports_unsent(len(self._unsent))
        return False
