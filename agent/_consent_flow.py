"""The consent flow (issue 6): link at the start, answer, refusal, no answer, withdrawal, status.

State changes go through the service's transition helper and the messages they cause through the
outbox, in one transaction. Every view and change of a person's data is written to the
processing log.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent._consent_links import (
    LINK_PATH,
    ConsentLinkRow,
    ConsentLinks,
    issue_link,
    revoke_links,
)
from agent._db import (
    ConsentRow,
    Database,
    DossierRow,
    InboundMessageRow,
    OutboxRow,
    ProvisionRow,
    TransitionRow,
)
from agent._delivery_channels import DeliveryChannel, LinkNotice, NoticeKind, channels_for
from agent._outbox import OutboxPolicy, enqueue
from agent._processing_log import ProcessingLog
from agent._register import RegisterClient, load_client
from agent._states import WITHDRAWABLE_STATES
from agent._tasks import open_task
from agent.errors import DeliveryFailed, DossierUnknown, IllegalTransition
from agent.settings import AgentSettings
from agent.working_days import WorkingDayCalendar
from protocol import canonicalize
from protocol.clock import Clock
from protocol.messages import ConsentWithdrawn, Message, PersonName, message_to_json

__all__ = [
    "ClientPage",
    "ConsentFlow",
    "ConsentJobReport",
    "DeviceLine",
    "LinkIssue",
    "LinkRevocation",
    "Transition",
    "gemeente_name",
]

Transition = Callable[[AsyncSession, DossierRow, str, str, datetime], Awaitable[None]]

_log = logging.getLogger("meeverhuizen.agent.consent")
# Messages that carry personal data: their receivers must hear of a withdrawal.
_PERSONAL_DATA_MESSAGES = {
    "dossier-offer": "receiving-gemeente",
    "departure-notice": "departing-supplier",
    "takeover-order": "receiving-supplier",
}
# Normenkader 2020: the supplier contacts the client within 5 working days after the order.
_SUPPLIER_CONTACT_WORKING_DAYS = 5
# How long a link notice waits for its dossier's start to be committed before it is dropped.
_UNCOMMITTED_GRACE = timedelta(minutes=10)


@cache
def _gemeenten() -> dict[str, str]:
    text = resources.files("registry").joinpath("data/gemeenten.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


def gemeente_name(gemeentecode: str | None) -> str:
    """The CBS name of a gemeente, or its code when unknown."""
    return _gemeenten().get(gemeentecode or "", gemeentecode or "onbekend")


def _person(name: PersonName) -> str:
    first = name.initials or name.given_names or ""
    return " ".join(part for part in (first, name.surname_prefix, name.surname) if part)


@dataclass(frozen=True)
class DeviceLine:
    """One device as the client sees it."""

    device_id: str
    name: str
    movable: bool
    outcome: str | None = None
    reason_text: str | None = None
    alternative: str | None = None
    consented: bool = False


@dataclass(frozen=True)
class ClientPage:
    """Everything the consent and status pages show (no BSN)."""

    dossier_id: str
    state: str
    client_name: str
    departing_gemeente: str
    receiving_gemeente: str
    move_date: date | None
    answer_before: date
    devices: tuple[DeviceLine, ...]
    has_indicatie: bool
    has_functional_information: bool
    consented_kinds: tuple[str, ...]
    consent_by: str | None
    withdrawn: bool
    supplier_contact_before: date | None
    timeline: tuple[tuple[datetime, str], ...]
    gemeente_phone: str | None
    clientondersteuning: str


@dataclass(frozen=True)
class ConsentJobReport:
    """What one run of the reminder and expiry job did."""

    reminders: int = 0
    tasks: int = 0
    expired: int = 0


@dataclass(frozen=True)
class LinkIssue:
    """A new personal link made by a consulent: when, until when, and how it went out."""

    dossier_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_links: int
    delivered_by: tuple[str, ...]


@dataclass(frozen=True)
class LinkRevocation:
    """The personal links of a dossier revoked by a consulent."""

    dossier_id: str
    revoked_at: datetime
    revoked_links: int


@dataclass
class _Pending:
    notices: list[LinkNotice] = field(default_factory=list)


class ConsentFlow:
    """The consent flow of the departing side and the withdrawal handling of receivers."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        database: Database,
        clock: Clock,
        outbox_policy: OutboxPolicy,
        transition: Transition,
        channels: Sequence[DeliveryChannel],
        calendar: WorkingDayCalendar | None = None,
    ) -> None:
        self._settings = settings
        self._consent = settings.consent
        self._database = database
        self._clock = clock
        self._outbox_policy = outbox_policy
        self._transition = transition
        self.channels = list(channels)
        self._calendar = calendar or WorkingDayCalendar()
        # Notices with the time they were made: kept until their dossier's start is committed.
        self._pending: list[tuple[datetime, LinkNotice]] = []
        self.links = ConsentLinks(database=database, clock=clock, settings=settings.consent)
        self.log = ProcessingLog(key=self._pseudonym_key())

    def _pseudonym_key(self) -> bytes:
        if self._consent.pseudonym_key is not None:
            return self._consent.pseudonym_key.encode()
        # Derived from the private signing key, so each organisation has its own pseudonyms.
        secret = canonicalize(self._settings.private_jwk())
        return hashlib.sha256(b"meeverhuizen processing log pseudonym key\0" + secret).digest()

    # --- the link ----------------------------------------------------------------------------

    def link_url(self, token: str) -> str:
        return self._settings.public_base_url.rstrip("/") + LINK_PATH + token

    async def on_started(
        self, session: AsyncSession, dossier: DossierRow, client: RegisterClient, now: datetime
    ) -> None:
        """A new dossier: a link, inside the start transaction; it goes out after the commit."""
        notices = await self._issue(session, dossier, client, now, kind="invitation")
        self._pending.extend((now, notice) for notice in notices)

    async def deliver_pending(self) -> None:
        """Deliver the links of committed dossiers (after a commit, and in the delivery job).

        The token exists only in memory until it is delivered. A notice whose dossier is not
        committed yet waits (the delivery job may run while the start's transaction is still
        open); after ``_UNCOMMITTED_GRACE`` the start counts as rolled back and it is dropped.
        A link lost in a crash is replaced by the reminder.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        async with self._database.reading() as session:
            committed = set(
                await session.scalars(
                    select(DossierRow.id).where(
                        DossierRow.id.in_({notice.dossier_id for _, notice in pending})
                    )
                )
            )
        now = self._clock.now()
        self._pending.extend(
            (made, notice)
            for made, notice in pending
            if notice.dossier_id not in committed and now - made < _UNCOMMITTED_GRACE
        )
        await self.deliver([notice for _, notice in pending if notice.dossier_id in committed])

    async def _issue(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        client: RegisterClient,
        now: datetime,
        *,
        kind: NoticeKind,
    ) -> list[LinkNotice]:
        # No ORM relationship orders the inserts: the dossier row must exist first.
        await session.flush()
        token = await issue_link(
            session,
            dossier_id=dossier.id,
            now=now,
            valid_for=timedelta(days=self._consent.link_valid_days),
            purpose=kind,
        )
        await self.log.record(
            session,
            activity_id="consent-link-issued",
            operation="create",
            bsn=client.bsn,
            now=now,
            dossier_id=dossier.id,
        )
        return self._notices(dossier, client, self.link_url(token), now, kind=kind)

    def _notices(
        self,
        dossier: DossierRow,
        client: RegisterClient,
        link: str,
        now: datetime,
        *,
        kind: NoticeKind,
    ) -> list[LinkNotice]:
        people = [(client.name, client.address, client.contact_preferences)]
        if client.representative is not None:
            representative = client.representative
            people.append((representative.name, client.address, representative.contact))
        answer_before = self._answer_before(dossier.created_at)
        return [
            LinkNotice(
                dossier_id=dossier.id,
                kind=kind,
                link=link,
                recipient_name=_person(name),
                address_lines=(
                    _person(name),
                    f"{address.street} {address.house_number}{address.house_letter or ''}",
                    f"{address.postal_code} {address.city}",
                ),
                departing_gemeente=gemeente_name(self._settings.gemeentecode),
                receiving_gemeente=gemeente_name(dossier.partner_gemeentecode),
                device_names=tuple(d.description for d in client.devices if d.movable),
                answer_before=answer_before,
                email_address=contact.email_address,
                phone_number=contact.phone_number,
                gemeente_phone=self._consent.phone_number,
            )
            for name, address, contact in people
        ]

    def _answer_before(self, started: datetime) -> date:
        return self._calendar.add_working_days(
            started.date(), self._consent.expire_after_working_days
        )

    async def deliver(self, notices: Sequence[LinkNotice]) -> list[str]:
        """Send each notice by the person's preferred available channel; a task when none can.

        Returns the names of the channels used, one per notice that went out.
        """
        used: list[str] = []
        for notice in notices:
            preferred = ("email", "sms", "letter")
            channel = await self._deliver_one(notice, preferred)
            if channel is not None:
                used.append(channel)
                continue
            async with self._database.transaction() as session:
                await open_task(
                    session,
                    kind="manual-check",
                    description="De persoonlijke link kon niet worden verstuurd. "
                    "Neem contact op met de cliënt.",
                    now=self._clock.now(),
                    dossier_id=notice.dossier_id,
                )
        return used

    async def _deliver_one(self, notice: LinkNotice, preferred: Sequence[str]) -> str | None:
        usable = [
            name
            for name in preferred
            if (name != "email" or notice.email_address) and (name != "sms" or notice.phone_number)
        ]
        for channel in channels_for(self.channels, usable):
            try:
                await channel.deliver(notice)
            except DeliveryFailed:
                _log.warning(
                    "consent_link_delivery_failed",
                    extra={"dossier_id": notice.dossier_id, "channel": channel.name},
                )
                return None
            return channel.name
        return None

    # --- the consulent's link actions --------------------------------------------------------

    async def revoke(self, dossier_id: str) -> LinkRevocation:
        """Revoke every personal link of a dossier and end its page sessions (issue 6)."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            revoked = await revoke_links(session, dossier_id=dossier.id, now=now)
            await self.log.record(
                session,
                activity_id="consent-link-revoked",
                operation="update",
                bsn=dossier.client_bsn or "",
                now=now,
                dossier_id=dossier.id,
            )
        return LinkRevocation(dossier_id=dossier_id, revoked_at=now, revoked_links=revoked)

    async def issue_new_link(self, dossier_id: str) -> LinkIssue:
        """A new link in place of every earlier one, delivered by the configured channels."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            dossier = await _departing_dossier(session, dossier_id)
            client = await load_client(session, dossier.client_bsn or "")
            if client is None:
                raise DossierUnknown("the client is no longer in the register")
            # One valid link after this call: a lost letter may be in someone else's hands.
            revoked = await revoke_links(session, dossier_id=dossier.id, now=now)
            notices = await self._issue(session, dossier, client, now, kind="new-link")
        delivered_by = await self.deliver(notices)
        return LinkIssue(
            dossier_id=dossier_id,
            issued_at=now,
            expires_at=now + timedelta(days=self._consent.link_valid_days),
            revoked_links=revoked,
            delivered_by=tuple(delivered_by),
        )

    # --- answers -----------------------------------------------------------------------------

    async def on_recorded(
        self, session: AsyncSession, dossier: DossierRow, consent: ConsentRow, now: datetime
    ) -> None:
        """Inside the consent transaction: the processing record, and a task on refusal."""
        await self.log.record(
            session,
            activity_id="consent-recorded",
            operation="create",
            bsn=dossier.client_bsn or "",
            now=now,
            dossier_id=dossier.id,
        )
        if consent.outcome == "refused":
            await open_task(
                session,
                kind="consent-refused",
                description="De cliënt wil niet dat de hulpmiddelen meeverhuizen. Er gaan geen "
                "gegevens weg. Beëindig de voorziening op de verhuisdatum.",
                now=now,
                dossier_id=dossier.id,
            )

    async def page(self, dossier_id: str) -> ClientPage:
        """What the client's page shows; the view itself is written to the processing log."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            dossier = await session.get(DossierRow, dossier_id)
            if dossier is None or dossier.side != "departing" or dossier.client_bsn is None:
                raise DossierUnknown("no such dossier for this link")
            client = await load_client(session, dossier.client_bsn)
            if client is None:
                raise DossierUnknown("the client is no longer in the register")
            await self.log.record(
                session,
                activity_id="consent-page-viewed",
                operation="read",
                bsn=client.bsn,
                now=now,
                dossier_id=dossier.id,
            )
            return await self._page(session, dossier, client)

    async def _page(
        self, session: AsyncSession, dossier: DossierRow, client: RegisterClient
    ) -> ClientPage:
        consent = await _latest_consent(session, dossier.id)
        decisions = {
            row.device_id: row
            for row in await session.scalars(
                select(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id)
            )
        }
        transitions = list(
            await session.scalars(
                select(TransitionRow)
                .where(TransitionRow.dossier_id == dossier.id)
                .order_by(TransitionRow.id)
            )
        )
        consented = set(consent.device_ids) if consent and consent.outcome == "given" else set()
        devices = tuple(
            _device_line(device.device_id, device.description, device.movable, decisions, consented)
            for device in client.devices
        )
        decided_at = next((t.at for t in transitions if t.to_state == "decided"), None)
        return ClientPage(
            dossier_id=dossier.id,
            state=dossier.state,
            client_name=_person(client.name),
            departing_gemeente=gemeente_name(self._settings.gemeentecode),
            receiving_gemeente=gemeente_name(dossier.partner_gemeentecode),
            move_date=dossier.move_date,
            answer_before=self._answer_before(dossier.created_at),
            devices=devices,
            has_indicatie=client.indicatie is not None,
            has_functional_information=client.functional_information is not None,
            consented_kinds=tuple(consent.data_kinds) if consent else (),
            consent_by=consent.representative_name if consent else None,
            withdrawn=consent is not None and consent.withdrawn_at is not None,
            supplier_contact_before=(
                self._calendar.add_working_days(decided_at.date(), _SUPPLIER_CONTACT_WORKING_DAYS)
                if decided_at is not None
                else None
            ),
            timeline=tuple((t.at, t.to_state) for t in transitions),
            gemeente_phone=self._consent.phone_number,
            clientondersteuning=self._consent.clientondersteuning,
        )

    # --- withdrawal --------------------------------------------------------------------------

    async def withdraw(self, dossier_id: str, *, cause: str = "withdrawn by the client") -> None:
        """Withdraw the consent: a signed consent-withdrawn to every organisation that got data."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            dossier = await session.get(DossierRow, dossier_id)
            if dossier is None or dossier.side != "departing":
                raise DossierUnknown("no such dossier")
            if dossier.state not in WITHDRAWABLE_STATES["departing"]:
                raise IllegalTransition(f"consent cannot be withdrawn in state {dossier.state}")
            consent = await _latest_consent(session, dossier_id)
            if consent is None or consent.outcome != "given":
                raise IllegalTransition("there is no consent to withdraw")
            consent.withdrawn_at = now
            await self._notify_recipients(session, dossier, consent.consent_id, now)
            await self._transition(session, dossier, "consent-withdrawn", cause, now)
            await self.log.record(
                session,
                activity_id="consent-withdrawn",
                operation="update",
                bsn=dossier.client_bsn or "",
                now=now,
                dossier_id=dossier.id,
            )

    async def _notify_recipients(
        self, session: AsyncSession, dossier: DossierRow, consent_id: str, now: datetime
    ) -> int:
        rows = await session.execute(
            select(OutboxRow.destination_oin, OutboxRow.message_type)
            .where(
                OutboxRow.dossier_id == dossier.id,
                OutboxRow.kind == "message",
                OutboxRow.message_type.in_(list(_PERSONAL_DATA_MESSAGES)),
            )
            .distinct()
        )
        sender_role = "departing-gemeente" if dossier.side == "departing" else "receiving-gemeente"
        recipients = {
            oin: _PERSONAL_DATA_MESSAGES[message_type]
            for oin, message_type in rows
            if oin is not None and oin != self._settings.oin
        }
        body = ConsentWithdrawn(
            consent_id=uuid.UUID(consent_id), withdrawn_at=now, entire_consent=True
        )
        for oin, role in sorted(recipients.items()):
            await self._enqueue(
                session, dossier, body, receiver=(oin, role), sender_role=sender_role
            )
        return len(recipients)

    async def _enqueue(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        body: ConsentWithdrawn,
        *,
        receiver: tuple[str, str],
        sender_role: str,
    ) -> None:
        now = self._clock.now()
        message_id = uuid.uuid4()
        message = Message.model_validate(
            {
                "messageId": message_id,
                "dossierId": dossier.id,
                "messageType": "consent-withdrawn",
                "sender": {"oin": self._settings.oin, "role": sender_role},
                "receiver": {"oin": receiver[0], "role": receiver[1]},
                "createdAt": now,
                "body": body,
            }
        )
        await enqueue(
            session,
            message_id=str(message_id),
            dossier_id=dossier.id,
            kind="message",
            message_type="consent-withdrawn",
            body=canonicalize(message_to_json(message)),
            now=now,
            policy=self._outbox_policy,
            destination_oin=receiver[0],
        )

    async def on_withdrawn(
        self, session: AsyncSession, message: Message, body: ConsentWithdrawn, now: datetime
    ) -> None:
        """Inbound consent-withdrawn: stop, delete the client's data, tell our own supplier."""
        dossier = await session.get(DossierRow, str(message.dossier_id))
        if dossier is None or dossier.partner_oin != message.sender.oin:
            raise DossierUnknown("no dossier with this id is shared with the sender")
        if dossier.state == "consent-withdrawn":
            return
        await self.log.record(
            session,
            activity_id="consent-withdrawal-received",
            operation="delete",
            bsn=dossier.client_bsn or "",
            now=now,
            dossier_id=dossier.id,
        )
        await self._notify_recipients(session, dossier, str(body.consent_id), now)
        await self._transition(
            session, dossier, "consent-withdrawn", f"consent-withdrawn {message.message_id}", now
        )
        await _erase_personal_data(session, dossier)

    # --- no answer ---------------------------------------------------------------------------

    async def run_due(self) -> ConsentJobReport:
        """Reminders, tasks and expiry for dossiers still waiting for an answer (periodic job)."""
        now = self._clock.now()
        async with self._database.reading() as session:
            waiting = list(
                await session.scalars(
                    select(DossierRow.id).where(
                        DossierRow.side == "departing", DossierRow.state == "waiting-for-consent"
                    )
                )
            )
        report = ConsentJobReport()
        for dossier_id in waiting:
            pending = _Pending()
            report = _add(report, await self._handle_waiting(dossier_id, now, pending))
            await self.deliver(pending.notices)
        return report

    async def _handle_waiting(
        self, dossier_id: str, now: datetime, pending: _Pending
    ) -> ConsentJobReport:
        async with self._database.transaction() as session:
            dossier = await session.get(DossierRow, dossier_id)
            if dossier is None or dossier.state != "waiting-for-consent":
                return ConsentJobReport()
            elapsed = self._calendar.working_days_between(dossier.created_at.date(), now.date())
            if elapsed >= self._consent.expire_after_working_days:
                await self._transition(
                    session, dossier, "consent-expired", "no answer in time", now
                )
                return ConsentJobReport(expired=1)
            if elapsed >= self._consent.task_after_working_days:
                return await self._task_for_consulent(session, dossier, now)
            if elapsed >= self._consent.reminder_after_working_days:
                return await self._remind(session, dossier, now, pending)
            return ConsentJobReport()

    async def _task_for_consulent(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> ConsentJobReport:
        task = await open_task(
            session,
            kind="consent-no-answer",
            description="De cliënt heeft nog niet geantwoord op de vraag om toestemming. "
            "Bel de cliënt of de vertegenwoordiger.",
            now=now,
            dossier_id=dossier.id,
            due_at=now + timedelta(days=7),
        )
        return ConsentJobReport(tasks=1 if task.created_at == now else 0)

    async def _remind(
        self, session: AsyncSession, dossier: DossierRow, now: datetime, pending: _Pending
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
        pending.notices.extend(await self._issue(session, dossier, client, now, kind="reminder"))
        return ConsentJobReport(reminders=1)


def _add(one: ConsentJobReport, other: ConsentJobReport) -> ConsentJobReport:
    return ConsentJobReport(
        one.reminders + other.reminders, one.tasks + other.tasks, one.expired + other.expired
    )


async def _departing_dossier(session: AsyncSession, dossier_id: str) -> DossierRow:
    dossier = await session.get(DossierRow, dossier_id)
    if dossier is None or dossier.side != "departing" or dossier.client_bsn is None:
        # A receiving dossier has no personal link: the same answer as an unknown one.
        raise DossierUnknown("no dossier with a personal link")
    return dossier


async def _latest_consent(session: AsyncSession, dossier_id: str) -> ConsentRow | None:
    result: ConsentRow | None = await session.scalar(
        select(ConsentRow)
        .where(ConsentRow.dossier_id == dossier_id)
        .order_by(ConsentRow.recorded_at.desc())
        .limit(1)
    )
    return result


def _device_line(
    device_id: str,
    description: str,
    movable: bool,
    decisions: dict[str, Any],
    consented: set[str],
) -> DeviceLine:
    decision = decisions.get(device_id)
    return DeviceLine(
        device_id=device_id,
        name=description,
        movable=movable,
        outcome=decision.outcome if decision is not None else None,
        reason_text=decision.reason_text if decision is not None else None,
        alternative=decision.alternative if decision is not None else None,
        consented=device_id in consented,
    )


async def _erase_personal_data(session: AsyncSession, dossier: DossierRow) -> None:
    # Issue 6: after a withdrawal the receiver keeps no personal data of this dossier. The
    # message ids and digests stay, so a repeated delivery is still recognised.
    dossier.client_bsn = None
    inbound = await session.scalars(
        select(InboundMessageRow).where(
            InboundMessageRow.dossier_id == dossier.id,
            InboundMessageRow.message_type.in_(list(_PERSONAL_DATA_MESSAGES)),
        )
    )
    for received in inbound:
        received.body = b""
    outgoing = await session.scalars(
        select(OutboxRow).where(
            OutboxRow.dossier_id == dossier.id,
            OutboxRow.message_type.in_(list(_PERSONAL_DATA_MESSAGES)),
            OutboxRow.state == "delivered",
        )
    )
    for sent in outgoing:
        sent.body = b""
    await session.execute(delete(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id))
