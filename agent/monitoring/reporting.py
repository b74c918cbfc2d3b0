"""The daily job: yesterday's counts (and any day not sent yet), signed, to the registry.

The job runs every quarter of an hour. Each run sends every day that is not yet in the registry,
oldest first; a day that fails waits for the next run (all of them, when the registry cannot be
reached). After a start it sends the last week again (the registry replaces a day's report with
a newer one), so a day missed while the agent was down is filled in. The registry takes a day
for a week (``REPORT_WINDOW_DAYS``); a day still unsent then is given up
(``daily_report_given_up``). A failure never stops the agent: it is logged
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
from agent.working_days import dutch_date_of
from protocol.logs import log_event
from registry.errors import RegistryError, RegistryUnavailable
from registry.monitoring import REPORT_WINDOW_DAYS, DailyReport

__all__ = ["CATCH_UP_DAYS", "INTERVAL_SECONDS", "DailyReports"]

INTERVAL_SECONDS: Final = 900.0
# The registry takes a report up to this many days after its day.
CATCH_UP_DAYS: Final = REPORT_WINDOW_DAYS
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
        return dutch_date_of(self._agent.clock.now())

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
        today, metrics = self._today(), self._agent.metrics
        self._unsent.add(today - timedelta(days=1))
        too_old = {day for day in self._unsent if day < today - timedelta(days=CATCH_UP_DAYS)}
        if too_old:
            # The registry no longer takes these days: they stay missing there.
            log_event(_log, "daily_report_given_up", level=logging.ERROR, count=len(too_old))
            metrics.daily_report("given-up", len(too_old))
            self._unsent -= too_old
        for day in sorted(self._unsent):
            try:
                await self._send(day)
            # The job's boundary: whatever went wrong, the day waits for the next run and the
            # operator sees it; the text of the error is not logged (it may quote data).
            except Exception as exc:
                code = exc.code if isinstance(exc, RegistryError) else type(exc).__name__
                log_event(_log, "daily_report_failed", level=logging.WARNING, code=code)
                metrics.daily_report("failed")
                if isinstance(exc, RegistryUnavailable):
                    break  # the other days would fail alike
                continue
            self._unsent.discard(day)
            metrics.daily_report("sent")
        log_event(_log, "daily_reports_run", count=len(self._unsent))
        metrics.daily_reports_unsent(len(self._unsent))
        return False

    async def _send(self, day: date) -> None:
        report = await self.report(day)
        await self._agent.directory.send_daily_report(
            report, private_jwk=self._agent.settings.private_jwk()
        )
