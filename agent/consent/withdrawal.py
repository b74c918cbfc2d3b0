"""Withdrawal of consent: every organisation that received the client's data is told to stop.

The departing gemeente withdraws at the client's request; a receiving gemeente that is told so
passes it on to the supplier it gave the data to, stops, and erases what it held of the client.
The message ids and digests stay, so a repeated delivery is still recognised.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.consent.page import latest_consent
from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers, client_in_words, lock_dossier, own_role
from agent.core.states import WITHDRAWABLE_STATES
from agent.core.tasks import open_task
from agent.errors import DossierUnknown, IllegalTransition
from agent.storage.tables import DossierRow, InboundMessageRow, OutboxRow, ProvisionRow
from protocol.messages import ConsentWithdrawn, Message

__all__ = ["PERSONAL_DATA_MESSAGES", "Withdrawal"]

# Messages that carry personal data, with their receiver's role: each must hear of a withdrawal.
PERSONAL_DATA_MESSAGES: Final = {
    "dossier-offer": "receiving-gemeente",
    "departure-notice": "departing-supplier",
    "takeover-order": "receiving-supplier",
}


class Withdrawal:
    """Withdrawing consent on the departing side, and taking a withdrawal on the receiving side."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    async def withdraw(self, dossier_id: str, *, cause: str) -> None:
        """Withdraw the consent: a signed consent-withdrawn to every organisation that got data."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await lock_dossier(session, dossier_id)
            if dossier is None or dossier.side != "departing":
                raise DossierUnknown("no such dossier")
            if dossier.state not in WITHDRAWABLE_STATES["departing"]:
                raise IllegalTransition(f"consent cannot be withdrawn in state {dossier.state}")
            consent = await latest_consent(session, dossier_id)
            if consent is None or consent.outcome != "given":
                raise IllegalTransition("there is no consent to withdraw")
            consent.withdrawn_at = now
            await self._tell_recipients(session, dossier, consent.consent_id, now)
            await self._dossiers.transition(session, dossier, "consent-withdrawn", cause, now)
            await self._agent.log.record(session, "consent-withdrawn", dossier, now)
            await self._withdrawn_task(session, dossier, now)

    async def _withdrawn_task(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        # The devices are still with the client under our provision: a person decides what next.
        name, devices = await client_in_words(session, dossier)
        await open_task(
            session,
            "consent-withdrawn",
            f"{name} heeft de toestemming ingetrokken. De nieuwe gemeente en de leverancier "
            f"stoppen en wissen de gegevens. Bel {name} en spreek af wat er met {devices} "
            "gebeurt: de voorziening beëindigen op de verhuisdatum, of een nieuwe aanvraag in de "
            "nieuwe gemeente.",
            now,
            dossier_id=dossier.id,
        )

    async def on_withdrawn(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Inbound consent-withdrawn: stop, tell our own supplier, erase the client's data."""
        body = message.body
        assert isinstance(body, ConsentWithdrawn)
        dossier = await self._dossiers.shared_with_sender(session, message)
        if dossier.state == "consent-withdrawn":
            return
        await self._agent.log.record(session, "consent-withdrawal-received", dossier, now)
        await self._tell_recipients(session, dossier, str(body.consent_id), now)
        cause = f"consent-withdrawn {message.message_id}"
        await self._dossiers.transition(
            session, dossier, "consent-withdrawn", cause, now, message=message
        )
        await _erase_personal_data(session, dossier)

    async def _tell_recipients(
        self, session: AsyncSession, dossier: DossierRow, consent_id: str, now: datetime
    ) -> None:
        body = ConsentWithdrawn(
            consent_id=uuid.UUID(consent_id), withdrawn_at=now, entire_consent=True
        )
        await self._agent.outgoing.follow_up(
            session,
            dossier.id,
            body,
            now,
            sender_role=own_role(dossier),
            receivers=PERSONAL_DATA_MESSAGES,
        )


async def _erase_personal_data(session: AsyncSession, dossier: DossierRow) -> None:
    # After a withdrawal the receiver keeps no personal data of this dossier.
    dossier.client_bsn = None
    inbound = await session.scalars(
        select(InboundMessageRow).where(
            InboundMessageRow.dossier_id == dossier.id,
            InboundMessageRow.message_type.in_(list(PERSONAL_DATA_MESSAGES)),
        )
    )
    for received in inbound:
        received.body = b""
    outgoing = await session.scalars(
        select(OutboxRow).where(
            OutboxRow.dossier_id == dossier.id,
            OutboxRow.message_type.in_(list(PERSONAL_DATA_MESSAGES)),
            OutboxRow.state == "delivered",
        )
    )
    for sent in outgoing:
        sent.body = b""
    await session.execute(delete(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id))
