"""One agent, composed: the place where the core and the capabilities of its role are wired.

This is the only module that knows every package. It builds the storage, delivery and the
dossier core, builds each capability and lets it register its message handlers, hooks on state
changes and jobs with the core (``agent.core.hooks``): a gemeente's agent gets consent, takeover
orders, departure notices and BRP events; a supplier's agent gets the supplier desk. The API,
the CLI and the tests call the :class:`AgentService` it returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from agent.brp.feed import FeedReader
from agent.brp.handling import BrpEvents
from agent.brp.requests import DossierRequests
from agent.casework.search_index import SearchIndex
from agent.casework.work import CaseWork
from agent.consent.channels import DeliveryChannel, configured_channels
from agent.consent.flow import ConsentFlow, ConsentInput
from agent.continuation.administration import Administration
from agent.continuation.letters import ClientLetters
from agent.continuation.override import DecisionChange, DecisionOverride
from agent.continuation.receiving import ReceivingFollowUp
from agent.continuation.transfer import DeviceTransfers
from agent.core.context import AgentContext
from agent.core.deadlines import Deadlines
from agent.core.departing import Departing
from agent.core.dossiers import Dossiers
from agent.core.hooks import Hooks
from agent.core.inbound import Inbound
from agent.core.processing_log import ProcessingLog
from agent.core.receiving import Receiving
from agent.core.tasks import Tasks
from agent.core.views import DossierStart, DossierSummary, DossierView
from agent.delivery.attempts import DeliveryReport
from agent.delivery.outbox import Outbox, OutboxEntry
from agent.delivery.outgoing import OutboxPolicy, Outgoing
from agent.directory import Directory
from agent.metrics import AgentMetrics
from agent.monitoring.reporting import DailyReports
from agent.register.imports import CSV_COLUMNS, ImportFormat
from agent.register.models import ImportResult
from agent.register.store import Register
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.storage.polling import PollGate
from agent.supplier.continued_use import ContinuedUseDesk, ContinuedUseNotices
from agent.supplier.desk import SupplierDesk
from agent.supplier.notices import DepartureNotices
from agent.supplier.orders import OrderDesk
from agent.working_days import WorkingDayCalendar
from protocol.clock import Clock
from protocol.signing import SignedBody, VerificationPolicy
from registry.server_kit.endpoints import EndpointRules, Resolver, system_resolver

__all__ = [
    "CSV_COLUMNS",
    "AgentService",
    "ConsentInput",
    "DecisionChange",
    "DeliveryReport",
    "DossierStart",
    "DossierSummary",
    "DossierView",
    "ImportResult",
    "OutboxEntry",
]


class AgentService:
    """One agent's behaviour, without HTTP: the API routes, the CLI and tests call this."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        database: Database,
        directory: Directory,
        http: httpx.AsyncClient,
        clock: Clock,
        random: Callable[[], float],
        channels: Sequence[DeliveryChannel] | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.database = database
        self.directory = directory
        self.http = http
        self.clock = clock
        self.metrics = AgentMetrics()
        self.hooks = Hooks()
        self._wake: Callable[[], None] = lambda: None
        # Set by the scheduler while it runs (readiness).
        self.scheduler_running: Callable[[], bool] = lambda: False

        policy = OutboxPolicy(
            max_age=settings.outbox_max_age,
            base_delay=timedelta(seconds=settings.outbox_base_delay_seconds),
            max_delay=timedelta(seconds=settings.outbox_max_delay_seconds),
            batch_size=settings.outbox_batch_size,
            claim_lease=timedelta(seconds=settings.outbox_claim_lease_seconds),
        )
        verification = VerificationPolicy(
            receiver_oin=settings.oin,
            max_body_bytes=settings.max_body_bytes,
            clock_skew=settings.clock_skew,
        )
        self.outbox = Outbox(
            database=database,
            directory=directory,
            http=http,
            clock=clock,
            random=random,
            private_jwk=settings.private_jwk(),
            verification=verification,
            policy=policy,
            on_delivered=self.hooks.delivered,
            metrics=self.metrics,
            endpoints=EndpointRules(settings.peer_allow_list, resolver=resolver),
        )
        # A scheduled delivery pass runs only when a message or letter is due.
        self._delivery_gate = PollGate(database, clock, self._earliest_delivery)
        self.tasks = Tasks(database=database, clock=clock)
        self.deadlines = Deadlines(database=database, clock=clock)
        self.provisions = Register(database=database, clock=clock)
        agent = AgentContext(
            settings=settings,
            database=database,
            clock=clock,
            directory=directory,
            outgoing=Outgoing(oin=settings.oin, policy=policy, webhook_url=settings.webhook_url),
            hooks=self.hooks,
            log=ProcessingLog.of(settings),
            metrics=self.metrics,
            calendar=WorkingDayCalendar(bevrijdingsdag=settings.takeover.bevrijdingsdag),
        )
        self._agent = agent
        self.dossiers = Dossiers(agent)
        self.inbound = Inbound(agent, verification=verification, committed=self.wake)
        self.departing = Departing(agent, dossiers=self.dossiers)
        if channels is None:
            channels = configured_channels(settings.consent)
        self.consent = ConsentFlow(
            agent, dossiers=self.dossiers, departing=self.departing, channels=channels
        )
        self.orders = OrderDesk(agent, dossiers=self.dossiers)
        self.supplier = SupplierDesk(agent)
        self.letters = ClientLetters(agent, channels=channels)
        self.follow_up = ReceivingFollowUp(agent, dossiers=self.dossiers, letters=self.letters)
        self.administration = Administration(agent)
        self.decision_override = DecisionOverride(
            agent,
            dossiers=self.dossiers,
            orders=self.orders,
            follow_up=self.follow_up,
            administration=self.administration,
        )
        self.brp = BrpEvents(agent, dossiers=self.dossiers, committed=self.wake)
        self.casework = CaseWork(agent, dossiers=self.dossiers, tasks=self.tasks)
        if settings.role == "gemeente":
            self._compose_gemeente()
        else:
            self.supplier.register(self.hooks, self.deadlines)
            ContinuedUseDesk(agent).register(self.hooks)
        self.hooks.every(
            settings.takeover.deadline_interval_seconds,
            "deadlines",
            self._deadlines,
            gate=self.deadlines.gate,
        )
        self.daily_reports = DailyReports(agent)
        if settings.daily_reports:
            self.daily_reports.register(self.hooks)

    def _compose_gemeente(self) -> None:
        hooks, agent, dossiers = self.hooks, self._agent, self.dossiers
        receiving = Receiving(agent, dossiers=dossiers)
        hooks.handle("dossier-offer", receiving.on_offer)
        hooks.on_delivered(receiving.on_delivered)
        hooks.handle("device-decision", self.departing.on_decision)
        hooks.handle("dossier-cancelled", dossiers.on_cancelled)
        self.consent.register(hooks)
        self.orders.register(hooks, self.deadlines)
        DepartureNotices(agent, dossiers=dossiers).register(hooks)
        DossierRequests(agent, dossiers=dossiers).register(hooks)
        # After the supplier side named its orders: tasks, letters and transfers per device.
        self.follow_up.register(hooks)
        self.letters.register(hooks)
        SearchIndex(agent).register(hooks, self.provisions)
        DeviceTransfers(agent, dossiers=dossiers).register(hooks)
        ContinuedUseNotices(agent, dossiers=dossiers).register(hooks)
        self.administration.register(hooks)
        url = agent.settings.brp_feed_url
        if url is not None:
            seconds = agent.settings.brp_feed_interval_seconds
            self.feed_reader(url, http=self.http).register(hooks, seconds=seconds)

    def feed_reader(self, url: str, *, http: httpx.AsyncClient) -> FeedReader:
        """A reader of the BRP feed at ``url`` that hands its events to this agent."""
        return FeedReader(self._agent, events=self.brp, http=http, url=url)

    # --- waking the delivery job ----------------------------------------------------------------

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Called after each commit that enqueued something (the scheduler's wake-up)."""
        self._wake = wake

    def wake(self) -> None:
        """Wake the delivery job (after a commit that enqueued something)."""
        self.outbox.notify()
        self._wake()

    async def _deadlines(self) -> bool:
        return await self.deadlines.run_due() > 0

    # --- delivery -------------------------------------------------------------------------------

    async def deliver_due(self) -> DeliveryReport:
        """One delivery pass: every due message that is first in its stream, once."""
        return await self.outbox.deliver_due()

    async def deliver_until_quiet(self, *, max_passes: int = 100) -> DeliveryReport:
        """Delivery passes until one delivers nothing (what the scheduled job runs)."""
        try:
            await self.consent.deliver_pending()
            if self.settings.role == "gemeente":  # the client letters go out with each pass only
                await self.letters.send_pending()
            total = DeliveryReport()
            for _ in range(max_passes):
                report = await self.outbox.deliver_due()
                total += report
                if report.delivered == 0:
                    break
            return total
        finally:
            self._delivery_gate.ran()

    async def delivery_due(self) -> bool:
        """Whether a delivery pass on the interval has anything to do (a woken one always runs)."""
        return self.consent.notices.waiting or await self._delivery_gate.due()

    async def _earliest_delivery(self, session: AsyncSession) -> datetime | None:
        due = [await self.outbox.earliest(session)]
        if self.settings.role == "gemeente":
            due.append(await self.letters.earliest(session))
        return min((at for at in due if at is not None), default=None)

    # --- the case system's and the client's actions ---------------------------------------------

    async def import_provisions(self, content: bytes, import_format: ImportFormat) -> ImportResult:
        """Validate the whole import, then apply it in one transaction (all or nothing)."""
        return await self.provisions.import_provisions(content, import_format)

    async def start_dossier(self, start: DossierStart) -> DossierView:
        """Start a handover for a client in the register; the client's link goes out."""
        view = await self.dossiers.start(start, cause="started by case system")
        await self.consent.deliver_pending()
        self.wake()
        return view

    async def stop_for_wlz(self, dossier_id: str, *, reason: str) -> DossierView:
        """The client moves into a Wlz institution: the takeover stops; the notices go out."""
        view = await self.dossiers.stop_for_wlz(dossier_id, reason=reason)
        await self.consent.deliver_pending()
        self.wake()
        return view

    async def record_consent(self, dossier_id: str, consent: ConsentInput) -> DossierView:
        """Record the client's consent or refusal; with consent the offer goes out at once."""
        view = await self.consent.record(dossier_id, consent)
        self.wake()
        return view

    async def send_offer(self, dossier_id: str) -> None:
        """Send the offer of a dossier in ``consent-given`` (refused without a consent record)."""
        await self.departing.send_offer(dossier_id)
        self.wake()

    async def receive_message(self, body: bytes, headers: Iterable[tuple[str, str]]) -> SignedBody:
        """Verify, store and apply one inbound message; return the signed receipt to answer."""
        return await self.inbound.receive(body, headers)

    async def list_dossiers(self, state: str | None = None) -> list[DossierSummary]:
        """Dossiers, optionally only those in ``state``, newest first."""
        return await self.dossiers.list(state)

    async def alternative_delivered(
        self, dossier_id: str, device_id: str, *, delivered_on: date, done_by: str
    ) -> DossierView:
        """Receiving side: the alternative for an excepted device is with the client."""
        await self.follow_up.alternative_delivered(
            dossier_id, device_id, delivered_on=delivered_on, done_by=done_by
        )
        self.wake()
        return await self.dossiers.view(dossier_id)

    async def change_decision(
        self, dossier_id: str, device_id: str, change: DecisionChange
    ) -> DossierView:
        """Receiving side: a consulent changes the decision for one device, with a reason."""
        await self.decision_override.change(dossier_id, device_id, change)
        self.wake()
        return await self.dossiers.view(str(uuid.UUID(dossier_id)))

    async def dossier(self, dossier_id: str) -> DossierView:
        """One dossier with its timeline and decisions."""
        return await self.dossiers.view(dossier_id)
