"""A consent request without an answer: a reminder, then a consulent's task, then expiry.

Each step falls due a number of working days after the request (``consent`` settings). The job
handles only the dossiers that crossed a step since its previous run (after a start: every
dossier past its first step, each step being done once whatever runs it), and its gate
(``agent.storage.polling``) leaves a run out until the next step of any waiting dossier falls due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.consent.notices import Notices
from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers, lock_dossier
from agent.core.hooks import Hooks, StateChange
from agent.core.states import WLZ_STOPPED
from agent.core.tasks import close_open_tasks, open_task
from agent.register.names import person_name
from agent.register.store import load_client
from agent.storage.polling import PollGate
from agent.storage.tables import ConsentLinkRow, DossierRow, TaskRow
from agent.working_days import AMSTERDAM, dutch_date_of

__all__ = ["ConsentJobReport", "UnansweredRequests"]

# What closes a consulent's no-answer task, by the state the waiting dossier went to.
_ANSWER_NOTES: Final = {
    "consent-given": "De cliënt heeft alsnog toestemming gegeven.",
    "consent-refused": "De cliënt heeft alsnog geantwoord: geen toestemming.",
    "cancelled": "De verhuizing is geannuleerd. Bellen is niet meer nodig.",
    "failed": "Het dossier is gestopt. Bellen is niet meer nodig.",
    WLZ_STOPPED: "De cliënt gaat naar een Wlz-instelling. Bellen is niet meer nodig.",
}


@dataclass(frozen=True)
class ConsentJobReport:
    """What one run of the reminder and expiry job did."""

    reminders: int = 0
    tasks: int = 0
    expired: int = 0

    def __add__(self, other: ConsentJobReport) -> ConsentJobReport:
        return ConsentJobReport(
            self.reminders + other.reminders, self.tasks + other.tasks, self.expired + other.expired
        )


class UnansweredRequests:
    """Reminds, hands to a consulent and lets expire the requests nobody answered."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers, notices: Notices) -> None:
        self._agent = agent
        self._consent = agent.settings.consent
        self._dossiers = dossiers
        self._notices = notices
        # The time of the previous complete run; None after a start.
        self._last_run: datetime | None = None
        self.gate = PollGate(agent.database, agent.clock, self._next_step)

    def register(self, hooks: Hooks) -> None:
        hooks.every(
            self._consent.job_interval_seconds,
            "consent-reminders",
            self._job,
            at_start=False,
            gate=self.gate,
        )
        hooks.on_state(self._no_longer_waiting, *_ANSWER_NOTES)

    async def _no_longer_waiting(self, session: AsyncSession, change: StateChange) -> None:
        # An answer, however late, or an end of the move: nobody needs to call the client any
        # more. After expiry the task stays: the consulent still calls.
        if change.previous != "waiting-for-consent":
            return
        answered = change.target in ("consent-given", "consent-refused")
        await close_open_tasks(
            session,
            change.dossier.id,
            None,
            ("consent-no-answer",),
            done_by="de cliënt" if answered else self._agent.settings.name,
            now=change.now,
            note=_ANSWER_NOTES[change.target],
        )

    async def _job(self) -> bool:
        report = await self.run_due()
        return report != ConsentJobReport()

    async def run_due(self) -> ConsentJobReport:
        """Reminders, tasks and expiry for dossiers still waiting for an answer (periodic job)."""
        now = self._agent.clock.now()
        async with self._agent.database.reading() as session:
            waiting = (await session.execute(_waiting())).all()
        report = ConsentJobReport()
        for dossier_id, created_at in waiting:
            if not any(self._crossed(step, now) for step in self._steps(created_at)):
                continue
            async with self._agent.database.transaction() as session:
                report += await self._handle_waiting(session, dossier_id, now)
            await self._notices.deliver_pending()
        self._last_run = now
        return report

    def _steps(self, created_at: datetime) -> Iterable[datetime]:
        """When the reminder, the task and the expiry of a request made then fall due."""
        counts = (
            self._consent.reminder_after_working_days,
            self._consent.task_after_working_days,
            self._consent.expire_after_working_days,
        )
        calendar, day = self._agent.calendar, dutch_date_of(created_at)
        return (_day_start(calendar.add_working_days(day, count)) for count in counts)

    def _crossed(self, step: datetime, now: datetime) -> bool:
        return step <= now and (self._last_run is None or step > self._last_run)

    async def _next_step(self, session: AsyncSession) -> datetime | None:
        """The earliest step of a waiting dossier the job has not run for (the gate's query)."""
        steps = [
            step
            for _dossier_id, created_at in (await session.execute(_waiting())).all()
            for step in self._steps(created_at)
            if self._last_run is None or step > self._last_run
        ]
        return min(steps, default=None)

    async def _handle_waiting(
        self, session: AsyncSession, dossier_id: str, now: datetime
    ) -> ConsentJobReport:
        dossier = await lock_dossier(session, dossier_id)
        if dossier is None or dossier.state != "waiting-for-consent":
            return ConsentJobReport()
        elapsed = self._agent.calendar.working_days_between(
            dutch_date_of(dossier.created_at), dutch_date_of(now)
        )
        if elapsed >= self._consent.expire_after_working_days:
            await self._dossiers.transition(
                session, dossier, "consent-expired", "no answer in time", now
            )
            # The consulent calls, also when no run fell between the task's step and expiry.
            task = await self._call_task(session, dossier, now, expired=True)
            return ConsentJobReport(tasks=1 if task.created_at == now else 0, expired=1)
        if elapsed >= self._consent.task_after_working_days:
            task = await self._call_task(session, dossier, now, expired=False)
            return ConsentJobReport(tasks=1 if task.created_at == now else 0)
        if elapsed >= self._consent.reminder_after_working_days:
            return await self._remind(session, dossier, now)
        return ConsentJobReport()

    async def _call_task(
        self, session: AsyncSession, dossier: DossierRow, now: datetime, *, expired: bool
    ) -> TaskRow:
        """The consulent's task to call the client; its text says whether the request expired."""
        client = await load_client(session, dossier.client_bsn or "")
        name = person_name(client.name) if client else "De cliënt"
        text = (
            f"{name} heeft niet geantwoord op de vraag om toestemming. De vraag is verlopen, dus "
            "de hulpmiddelen verhuizen niet mee. Bel de cliënt of de vertegenwoordiger en leg uit "
            "hoe een hulpmiddel bij de nieuwe gemeente wordt aangevraagd."
            if expired
            else f"{name} heeft nog niet geantwoord op de vraag om toestemming om de hulpmiddelen "
            "mee te laten verhuizen. Bel de cliënt of de vertegenwoordiger."
        )
        task = await open_task(
            session,
            "consent-no-answer",
            text,
            now,
            dossier_id=dossier.id,
            due_at=now + timedelta(days=7),
        )
        task.description = text
        return task

    async def _remind(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> ConsentJobReport:
        reminders = await session.scalar(
            select(func.count())
            .select_from(ConsentLinkRow)
            .where(ConsentLinkRow.dossier_id == dossier.id, ConsentLinkRow.purpose == "reminder")
        )
        client = await load_client(session, dossier.client_bsn or "")
        if reminders or client is None:
            return ConsentJobReport()
        # Only hashes are stored, so a reminder carries a new link; the first stays valid.
        notices = await self._notices.issue(session, dossier, client, now, kind="reminder")
        self._notices.hold(notices, now)
        return ConsentJobReport(reminders=1)


def _waiting() -> Select[str, datetime]:
    return select(DossierRow.id, DossierRow.created_at).where(
        DossierRow.side == "departing", DossierRow.state == "waiting-for-consent"
    )


def _day_start(day: date) -> datetime:
    # Working days count between Dutch dates (the request's and now's).
    return datetime.combine(day, time.min, tzinfo=AMSTERDAM)
