"""The consent flow: a link at the start, the answer, no answer, the consulent's link actions.

State changes go through the core's dossiers and the messages they cause through the outbox, in
one transaction. Every view and change of a person's data is written to the processing log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal
from uuid import uuid4

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel, DeviceId
from agent.consent.channels import DeliveryChannel
from agent.consent.dossier_pdf import dossier_pdf, dossier_pdf_lines
from agent.consent.links import ConsentLinks, revoke_links
from agent.consent.notices import Notices
from agent.consent.page import ClientPage, client_page
from agent.consent.unanswered import UnansweredRequests
from agent.consent.withdrawal import Withdrawal
from agent.core.context import AgentContext
from agent.core.departing import Departing
from agent.core.dossiers import Dossiers, own_gemeentecode
from agent.core.hooks import Hooks, StateChange
from agent.core.offer import REQUIRED_KINDS
from agent.core.states import WLZ_STOPPED, check_transition
from agent.core.tasks import open_task
from agent.core.views import DossierView
from agent.errors import (
    ConsentByWrongPerson,
    ConsentMissing,
    DossierUnknown,
    IllegalTransition,
    ReceiverNotConnected,
)
from agent.register.models import RegisterClient
from agent.register.names import devices_phrase, gemeente_name, person_name
from agent.register.store import load_client
from agent.storage.tables import ConsentRow, DossierRow
from agent.working_days import dutch_date_of
from protocol.messages import DataKind, RepresentativeKind

__all__ = ["ConsentFlow", "ConsentInput", "LinkIssue", "LinkRevocation"]

ConsentChannel = Literal["online", "phone", "paper", "in-person"]
_OUTCOMES = {
    "consent-given": "given",
    "consent-refused": "refused",
    "consent-expired": "expired",
    "consent-withdrawn": "withdrawn",
}


class ConsentInput(ApiModel):
    """The client's answer to the consent request, as a recorded fact."""

    outcome: Literal["given", "refused"] = "given"
    data_kinds: tuple[DataKind, ...] = ()
    device_ids: tuple[DeviceId, ...] = ()
    channel: ConsentChannel
    given_by: Literal["client", "representative"]
    given_at: datetime
    representative_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name of the representative."
    )
    representative_relation: RepresentativeKind | None = Field(
        default=None, description="How the representative relates to the client."
    )
    recorded_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Consulent who recorded consent given by phone, paper or at the counter.",
    )


class LinkIssue(ApiModel):
    """A new personal link went out: when, until when, and by which channels.

    The token itself is in no answer: it reaches the client only through the channels.
    """

    dossier_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_links: int
    delivered_by: tuple[str, ...]


class LinkRevocation(ApiModel):
    """Every personal link of the dossier stopped working; open page sessions ended."""

    dossier_id: str
    revoked_at: datetime
    revoked_links: int


class ConsentFlow:
    """The consent flow of the departing side and the withdrawal handling of receivers."""

    def __init__(
        self,
        agent: AgentContext,
        *,
        dossiers: Dossiers,
        departing: Departing,
        channels: Sequence[DeliveryChannel],
    ) -> None:
        self._agent = agent
        self._consent = agent.settings.consent
        self._dossiers = dossiers
        self._departing = departing
        self.log = agent.log
        self.links = ConsentLinks(
            database=agent.database, clock=agent.clock, settings=self._consent
        )
        self.notices = Notices(agent, channels=channels)
        self.withdrawal = Withdrawal(agent, dossiers=dossiers)
        self.unanswered = UnansweredRequests(agent, dossiers=dossiers, notices=self.notices)

    @property
    def channels(self) -> list[DeliveryChannel]:
        """The channels links go out by (letter, e-mail, SMS)."""
        return self.notices.channels

    @channels.setter
    def channels(self, channels: Sequence[DeliveryChannel]) -> None:
        self.notices.channels = list(channels)

    def register(self, hooks: Hooks) -> None:
        """Add the consent flow to the core: the link at the start, withdrawals, reminders."""
        hooks.on_state(self._ask, "waiting-for-consent")
        hooks.on_state(self._tell_wlz, WLZ_STOPPED)
        hooks.on_state(self._count, *_OUTCOMES)
        hooks.handle("consent-withdrawn", self.withdrawal.on_withdrawn)
        self.unanswered.register(hooks)

    async def _ask(self, session: AsyncSession, change: StateChange) -> None:
        # A new dossier waits for consent: a link, inside the start transaction; it goes out
        # after the commit.
        client = await load_client(session, change.dossier.client_bsn or "")
        if client is None:
            return
        notices = await self.notices.issue(
            session, change.dossier, client, change.now, kind="invitation"
        )
        self.notices.hold(notices, change.now)

    async def _tell_wlz(self, session: AsyncSession, change: StateChange) -> None:
        # The client hears that the Wmo takeover stops and the zorgkantoor takes it up; the
        # link leads to the status page that says so.
        client = await load_client(session, change.dossier.client_bsn or "")
        if client is None or change.dossier.side != "departing":
            return
        notices = await self.notices.issue(session, change.dossier, client, change.now, kind="wlz")
        self.notices.hold(notices, change.now)

    async def _count(self, _session: AsyncSession, change: StateChange) -> None:
        # Consent is the departing side's to count; the receiver records a withdrawal too.
        if change.dossier.side != "departing":
            return
        self._agent.metrics.consent_outcome(_OUTCOMES[change.target])
        if change.target == "consent-expired":
            self._agent.metrics.deadline_breached("consent-answer")

    async def deliver_pending(self) -> None:
        """Send the links of dossiers whose start has committed."""
        await self.notices.deliver_pending()

    # --- answers --------------------------------------------------------------------------------

    async def record(self, dossier_id: str, consent: ConsentInput) -> DossierView:
        """Record the client's consent or refusal; with consent the offer goes out at once.

        When the receiving gemeente has no agent, the consent is kept all the same: the dossier
        waits in ``receiver-not-connected`` and a consulent sends it by secure mail (task).
        """
        receiver_oin: str | None = None
        if consent.outcome == "given":
            missing = sorted(REQUIRED_KINDS - set(consent.data_kinds))
            if missing or not consent.device_ids:
                raise ConsentMissing(f"consent must cover {', '.join(missing) or 'a device'}")
            # The registry is asked before the transaction: no network call holds a lock.
            try:
                receiver_oin = await self._departing.receiving_oin(dossier_id)
            except ReceiverNotConnected:
                receiver_oin = None
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await self._dossiers.locked(session, dossier_id, "departing")
            target = "consent-given" if consent.outcome == "given" else "consent-refused"
            check_transition("departing", dossier.state, target)
            client = await _registered_client(session, dossier)
            if consent.given_by == "client" and client.consents_through_representative(
                dutch_date_of(now)
            ):
                raise ConsentByWrongPerson("the client is under 16: a parent or guardian answers")
            row = _consent_row(dossier_id, consent, now)
            session.add(row)
            await self.log.record(session, "consent-recorded", dossier, now)
            if consent.outcome == "refused":
                await self._refused_task(session, dossier, client, now)
            await self._dossiers.transition(
                session, dossier, target, f"consent {consent.outcome}", now
            )
            if consent.outcome == "given" and receiver_oin is None:
                await self._not_connected(session, dossier, client, row, now)
            elif consent.outcome == "given":
                dossier.partner_oin = receiver_oin
                await self._departing.send_offer_in(session, dossier, now, consent=row)
            return await self._dossiers.view_in(session, dossier_id)

    async def _refused_task(
        self, session: AsyncSession, dossier: DossierRow, client: RegisterClient, now: datetime
    ) -> None:
        name = person_name(client.name)
        devices = devices_phrase(d for d in client.devices if d.movable)
        await open_task(
            session,
            "consent-refused",
            f"{name} wil niet dat de hulpmiddelen meeverhuizen ({devices}). Er gaan geen "
            "gegevens naar de nieuwe gemeente. Beëindig de voorziening op de verhuisdatum en "
            "spreek af wanneer de hulpmiddelen worden opgehaald.",
            now,
            dossier_id=dossier.id,
        )

    async def _not_connected(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        client: RegisterClient,
        consent: ConsentRow,
        now: datetime,
    ) -> None:
        receiving = gemeente_name(dossier.partner_gemeentecode)
        await self._dossiers.transition(
            session,
            dossier,
            "receiver-not-connected",
            f"gemeente {dossier.partner_gemeentecode} has no agent in the registry",
            now,
        )
        consented = [d for d in client.devices if d.device_id in consent.device_ids]
        await open_task(
            session,
            "receiver-not-connected",
            f"{person_name(client.name)} verhuist naar de gemeente {receiving} en gaf "
            f"toestemming voor {devices_phrase(consented)}. De gemeente {receiving} is nog niet "
            "aangesloten. Download het dossier als PDF (GET /v1/dossiers/"
            f"{dossier.id}/consented-dossier) en stuur het met beveiligde e-mail naar de "
            f"gemeente {receiving}. Bel de cliënt daarna en vertel wat er gebeurt.",
            now,
            dossier_id=dossier.id,
            due_at=now + timedelta(days=7),
        )

    async def consented_dossier_pdf(self, dossier_id: str) -> bytes:
        """The dossier with exactly what was consented, as PDF, to send by secure mail."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            client = await _registered_client(session, dossier)
            consent = await session.scalar(
                select(ConsentRow)
                .where(ConsentRow.dossier_id == dossier.id, ConsentRow.outcome == "given")
                .order_by(ConsentRow.recorded_at.desc())
                .limit(1)
            )
            if consent is None or consent.withdrawn_at is not None:
                raise ConsentMissing("no valid consent for this dossier: nothing may be sent")
            if dossier.new_address is None or dossier.move_date is None:
                raise IllegalTransition("the dossier has no new address or move date")
            await self.log.record(session, "dossier-pdf-made", dossier, now)
            lines = dossier_pdf_lines(
                client=client,
                consent=consent,
                new_address=dossier.new_address,
                move_date=dossier.move_date,
                departing_gemeente=gemeente_name(
                    own_gemeentecode(dossier, self._agent.settings.gemeentecode)
                ),
                receiving_gemeente=gemeente_name(dossier.partner_gemeentecode),
            )
        return dossier_pdf(lines, title="Dossier hulpmiddelen bij verhuizing")

    async def page(self, dossier_id: str) -> ClientPage:
        """What the client's page shows; the view itself is written to the processing log."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            client = await _registered_client(session, dossier)
            await self.log.record(session, "consent-page-viewed", dossier, now)
            return await client_page(session, dossier, client, self._agent)

    async def withdraw(self, dossier_id: str, *, cause: str = "withdrawn by the client") -> None:
        """Withdraw the consent: a signed consent-withdrawn to every organisation that got data."""
        await self.withdrawal.withdraw(dossier_id, cause=cause)

    # --- the consulent's link actions -----------------------------------------------------------

    async def revoke(self, dossier_id: str) -> LinkRevocation:
        """Revoke every personal link of a dossier and end its page sessions."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            revoked = await revoke_links(session, dossier_id=dossier.id, now=now)
            await self.log.record(session, "consent-link-revoked", dossier, now)
        return LinkRevocation(dossier_id=dossier_id, revoked_at=now, revoked_links=revoked)

    async def issue_new_link(self, dossier_id: str) -> LinkIssue:
        """A new link in place of every earlier one, delivered by the configured channels."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            client = await _registered_client(session, dossier)
            # One valid link after this call: a lost letter may be in someone else's hands.
            revoked = await revoke_links(session, dossier_id=dossier.id, now=now)
            notices = await self.notices.issue(session, dossier, client, now, kind="new-link")
        delivered_by = await self.notices.deliver(notices)
        return LinkIssue(
            dossier_id=dossier_id,
            issued_at=now,
            expires_at=now + timedelta(days=self._consent.link_valid_days),
            revoked_links=revoked,
            delivered_by=tuple(delivered_by),
        )


async def _departing_dossier(session: AsyncSession, dossier_id: str) -> DossierRow:
    dossier = await session.get(DossierRow, dossier_id)
    if dossier is None or dossier.side != "departing" or dossier.client_bsn is None:
        # A receiving dossier has no personal link: the same answer as an unknown one.
        raise DossierUnknown("no dossier with a personal link")
    return dossier


async def _registered_client(session: AsyncSession, dossier: DossierRow) -> RegisterClient:
    client = await load_client(session, dossier.client_bsn or "")
    if client is None:
        raise DossierUnknown("the client is no longer in the register")
    return client


def _consent_row(dossier_id: str, consent: ConsentInput, now: datetime) -> ConsentRow:
    return ConsentRow(
        consent_id=str(uuid4()),
        dossier_id=dossier_id,
        outcome=consent.outcome,
        data_kinds=list(consent.data_kinds),
        device_ids=list(consent.device_ids),
        channel=consent.channel,
        granted_by=consent.given_by,
        granted_at=consent.given_at,
        recorded_at=now,
        representative_name=consent.representative_name,
        representative_relation=consent.representative_relation,
        recorded_by=consent.recorded_by,
    )
