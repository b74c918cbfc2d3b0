"""Letters and e-mails to a client that hold no link: queued in a transaction, sent after it.

A letter is a row written with the decision that causes it, so a crash loses none; the job
sends pending letters through the configured channels (e-mail when the client prefers it and
gave an address, else a printed letter). A letter no channel can send becomes a task. When the
dossier is cancelled or the consent withdrawn, its letters not sent yet are stopped: what they
say no longer holds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.consent.channels import ClientLetter
from agent.core.context import AgentContext
from agent.core.hooks import Hooks, StateChange
from agent.core.tasks import open_task
from agent.errors import DeliveryFailed
from agent.register.names import address_lines, person_name
from agent.storage.tables import ClientLetterRow, DossierRow
from protocol.logs import log_event
from protocol.messages import Address, ContactPreferences, DossierCancelled, PersonName

__all__ = ["ClientLetters", "LetterChannel"]

_log = logging.getLogger("meeverhuizen.agent.letters")


@runtime_checkable
class LetterChannel(Protocol):
    """A channel that can bring a letter without a link (``agent.consent.channels``)."""

    name: str

    async def deliver_letter(self, letter: ClientLetter) -> None: ...


class ClientLetters:
    """Queues letters to clients and sends them."""

    def __init__(self, agent: AgentContext, *, channels: Sequence[object]) -> None:
        self._agent = agent
        self.channels: list[LetterChannel] = [c for c in channels if isinstance(c, LetterChannel)]

    def register(self, hooks: Hooks) -> None:
        """Stop a dossier's unsent letters when it is cancelled or its consent withdrawn."""
        hooks.on_state(self._withdrawn, "consent-withdrawn")
        hooks.on_cancel(self._cancelled)

    async def _withdrawn(self, session: AsyncSession, change: StateChange) -> None:
        await _stop_pending(session, change.dossier.id)
        if change.dossier.side == "receiving":
            # The receiver keeps no personal data after a withdrawal (agent.consent.withdrawal):
            # of its letters only kind, subject, state and times stay.
            letters = await session.scalars(
                select(ClientLetterRow).where(ClientLetterRow.dossier_id == change.dossier.id)
            )
            for letter in letters:
                letter.recipient, letter.text = {}, ""

    async def _cancelled(
        self, session: AsyncSession, dossier: DossierRow, _: DossierCancelled, now: datetime
    ) -> None:
        await _stop_pending(session, dossier.id)

    async def queue(
        self,
        session: AsyncSession,
        *,
        dossier_id: str,
        kind: str,
        name: PersonName,
        address: Address,
        contact: ContactPreferences,
        subject: str,
        text: str,
        now: datetime,
    ) -> None:
        """Add a letter to the client inside the caller's transaction."""
        addressee = person_name(name)
        session.add(
            ClientLetterRow(
                id=str(uuid.uuid4()),
                dossier_id=dossier_id,
                kind=kind,
                recipient={
                    "name": addressee,
                    "addressLines": list(address_lines(addressee, address)),
                    "emailAddress": contact.email_address,
                    "channels": list(contact.channels),
                },
                subject=subject,
                text=text,
                state="pending",
                created_at=now,
            )
        )

    @staticmethod
    async def earliest(session: AsyncSession) -> datetime | None:
        """When the oldest letter still to send was written (None: every letter went out)."""
        return await session.scalar(
            select(func.min(ClientLetterRow.created_at)).where(ClientLetterRow.state == "pending")
        )

    async def send_pending(self) -> int:
        """Send every pending letter; return how many went out."""
        async with self._agent.database.reading() as session:
            pending = list(
                await session.scalars(
                    select(ClientLetterRow.id)
                    .where(ClientLetterRow.state == "pending")
                    .order_by(ClientLetterRow.created_at)
                )
            )
        sent = 0
        for letter_id in pending:
            sent += await self._send(letter_id)
        return sent

    async def _send(self, letter_id: str) -> int:
        # The channel is called outside any transaction (it may reach an SMTP server); at worst
        # a crash between sending and marking sends a letter twice, never not at all.
        async with self._agent.database.reading() as session:
            row = await session.get(ClientLetterRow, letter_id)
            if row is None or row.state != "pending":
                return 0
            recipient, dossier_id = dict(row.recipient), row.dossier_id
            letter = ClientLetter(
                letter_id=row.id,
                recipient_name=recipient["name"],
                address_lines=tuple(recipient["addressLines"]),
                subject=row.subject,
                text=row.text,
                email_address=recipient.get("emailAddress"),
            )
        used = None
        for channel in self._choose(recipient):
            try:
                await channel.deliver_letter(letter)
            except DeliveryFailed as exc:
                log_event(_log, "client_letter_failed", channel=channel.name, error=str(exc))
                continue
            used = channel.name
            break
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            row = await session.get(ClientLetterRow, letter_id, with_for_update=True)
            if row is None or row.state != "pending":
                return 0
            if used is not None:
                row.state, row.channel, row.sent_at = "sent", used, now
                return 1
            row.state = "failed"
            await open_task(
                session,
                "letter-not-sent",
                f"De brief '{letter.subject}' aan {letter.recipient_name} kon niet worden "
                "verstuurd. Stuur de brief zelf of bel de cliënt. Dit is de tekst:\n\n"
                + letter.text,
                now,
                dossier_id=dossier_id,
            )
            return 0

    def _choose(self, recipient: dict[str, Any]) -> list[LetterChannel]:
        by_name = {channel.name: channel for channel in self.channels}
        ordered = []
        if "email" in recipient.get("channels", []) and recipient.get("emailAddress"):
            ordered.append("email")
        ordered.append("letter")
        return [by_name[name] for name in ordered if name in by_name]


async def _stop_pending(session: AsyncSession, dossier_id: str) -> None:
    # In the transaction of the cancellation or withdrawal: a letter handed to a channel before
    # it committed has gone; every later one stays unsent (``send_pending`` reads pending only).
    letters = await session.scalars(
        select(ClientLetterRow).where(
            ClientLetterRow.dossier_id == dossier_id, ClientLetterRow.state == "pending"
        )
    )
    stopped = 0
    for letter in letters:
        letter.state = "stopped"
        stopped += 1
    if stopped:
        log_event(_log, "client_letters_stopped", dossier_id=dossier_id, letters=stopped)
