"""Personal links on their way to the client: made in a transaction, sent after it commits.

A link's token is stored only as a hash, so a notice holding it lives in memory from the
transaction that made it until a channel has sent it. A link lost in a crash is replaced by the
reminder; a notice that no channel can send becomes a task for a consulent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.consent.channels import DeliveryChannel, LinkNotice, NoticeKind, channels_for
from agent.consent.links import LINK_PATH, issue_link
from agent.consent.page import answer_before
from agent.core.context import AgentContext
from agent.core.dossiers import own_gemeentecode
from agent.core.tasks import open_task
from agent.errors import DeliveryFailed
from agent.register.models import RegisterClient
from agent.register.names import address_lines, device_name, gemeente_name, person_name
from agent.storage.tables import DossierRow
from agent.working_days import dutch_date_of
from protocol.messages import Address, ContactPreferences, PersonName

__all__ = ["Notices"]

_log = logging.getLogger("meeverhuizen.agent.consent")
# How long a notice waits for its dossier's start to be committed before it is dropped.
_UNCOMMITTED_GRACE = timedelta(minutes=10)
_PREFERRED = ("email", "sms", "letter")


class Notices:
    """Makes personal links with their notices, and sends the notices by the right channel."""

    def __init__(self, agent: AgentContext, *, channels: Sequence[DeliveryChannel]) -> None:
        self._agent = agent
        self.channels = list(channels)
        # Notices with the time they were made: kept until their dossier's start is committed.
        self._pending: list[tuple[datetime, LinkNotice]] = []

    def link_url(self, token: str) -> str:
        return self._agent.settings.public_base_url.rstrip("/") + LINK_PATH + token

    async def issue(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        client: RegisterClient,
        now: datetime,
        *,
        kind: NoticeKind,
    ) -> list[LinkNotice]:
        """A new link for the dossier, in the caller's transaction, and a notice per person."""
        token = await issue_link(
            session,
            dossier_id=dossier.id,
            now=now,
            valid_for=timedelta(days=self._agent.settings.consent.link_valid_days),
            purpose=kind,
        )
        await self._agent.log.record(session, "consent-link-issued", dossier, now)
        settings = self._agent.settings
        gemeentecode = own_gemeentecode(dossier, settings.gemeentecode)
        moved = dossier.move_date is not None and dossier.move_date <= dutch_date_of(now)
        # Before the move the client lives at the registered address; from the move date on,
        # at the new one. A representative gets letters at their own address when it is known.
        home = client.address
        if moved and dossier.new_address is not None:
            home = Address.model_validate(dossier.new_address)
        client_name = person_name(client.name)
        people: list[tuple[PersonName, Address, ContactPreferences, str | None]] = []
        # Under 16 a parent or guardian answers: the letters go to them only.
        if not client.consents_through_representative(dutch_date_of(now)):
            people.append((client.name, home, client.contact_preferences, None))
        representative = client.representative
        if representative is not None:
            own = representative.address or home
            people.append((representative.name, own, representative.contact, client_name))
        return [
            LinkNotice(
                dossier_id=dossier.id,
                kind=kind,
                link=self.link_url(token),
                recipient_name=person_name(name),
                address_lines=address_lines(person_name(name), address),
                departing_gemeente=gemeente_name(gemeentecode),
                receiving_gemeente=gemeente_name(dossier.partner_gemeentecode),
                device_names=tuple(
                    device_name(d.iso_code, d.description) for d in client.devices if d.movable
                ),
                answer_before=answer_before(dossier.created_at, self._agent),
                email_address=contact.email_address,
                phone_number=contact.phone_number,
                gemeente_phone=settings.consent.phone_number
                or settings.handover.phone_numbers.get(gemeentecode),
                moved=moved,
                on_behalf_of=on_behalf_of,
            )
            for name, address, contact, on_behalf_of in people
        ]

    @property
    def waiting(self) -> bool:
        """Notices are held until their dossier's transaction has committed."""
        return bool(self._pending)

    def hold(self, notices: Sequence[LinkNotice], now: datetime) -> None:
        """Keep notices made in an open transaction until :meth:`deliver_pending` sends them."""
        self._pending.extend((now, notice) for notice in notices)

    async def deliver_pending(self) -> None:
        """Deliver the notices of committed dossiers (after a commit, and in the delivery job).

        A notice whose dossier is not committed yet waits (the delivery job may run while the
        start's transaction is still open); after ``_UNCOMMITTED_GRACE`` the start counts as
        rolled back and it is dropped.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        async with self._agent.database.reading() as session:
            committed = set(
                await session.scalars(
                    select(DossierRow.id).where(
                        DossierRow.id.in_({notice.dossier_id for _, notice in pending})
                    )
                )
            )
        now = self._agent.clock.now()
        self._pending.extend(
            (made, notice)
            for made, notice in pending
            if notice.dossier_id not in committed and now - made < _UNCOMMITTED_GRACE
        )
        await self.deliver([notice for _, notice in pending if notice.dossier_id in committed])

    async def deliver(self, notices: Sequence[LinkNotice]) -> list[str]:
        """Send each notice by the person's preferred available channel; a task when none can.

        Returns the names of the channels used, one per notice that went out.
        """
        used: list[str] = []
        for notice in notices:
            channel = await self._deliver_one(notice)
            if channel is not None:
                used.append(channel)
                continue
            async with self._agent.database.transaction() as session:
                await open_task(
                    session,
                    "manual-check",
                    f"De brief of e-mail aan {notice.recipient_name} met de persoonlijke link "
                    "kon niet worden verstuurd. Neem contact op met "
                    f"{notice.recipient_name} en geef de link op een andere manier.",
                    self._agent.clock.now(),
                    dossier_id=notice.dossier_id,
                )
        return used

    async def _deliver_one(self, notice: LinkNotice) -> str | None:
        usable = [
            name
            for name in _PREFERRED
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
