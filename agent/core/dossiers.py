"""Dossiers: one move of one client seen from one side, its state changes and its timeline.

Every state change is checked against the state machine (``agent.core.states``), written to the
timeline with its cause, logged, announced to the back office as a CloudEvent and passed to the
capabilities' hooks, all in the transaction of the change. Network calls happen outside
transactions.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.hooks import StateChange
from agent.core.policy import is_wlz_institution, urgency_reason
from agent.core.progress import received_progress
from agent.core.states import OPEN_STATES, WLZ_STOPPED, Side, check_transition, initial_state
from agent.core.tasks import open_task
from agent.core.views import DecisionView, DossierStart, DossierSummary, DossierView, TransitionView
from agent.delivery.cloudevents import STATE_CHANGED, state_changed_event
from agent.errors import (
    DossierUnknown,
    IllegalTransition,
    MessageNotHandled,
    NothingToMove,
    ProvisionUnknown,
    SenderNotPermitted,
)
from agent.register.names import devices_phrase, person_name
from agent.register.store import load_client
from agent.storage.tables import DossierRow, OutboxRow, ProvisionRow, TransitionRow
from protocol.logs import log_event
from protocol.messages import CancelReason, DeviceDecisionItem, DossierCancelled, Message

__all__ = [
    "DEPARTING_ROLES",
    "RECEIVING_ROLES",
    "Dossiers",
    "client_in_words",
    "decided_fields",
    "devices_decided",
    "lock_dossier",
    "own_gemeentecode",
    "own_role",
    "side",
]

# (sender role, receiver role) of the messages between the two gemeenten.
DEPARTING_ROLES = ("departing-gemeente", "receiving-gemeente")
RECEIVING_ROLES = ("receiving-gemeente", "departing-gemeente")
_log = logging.getLogger("meeverhuizen.agent")
# The reasons of a cancellation as a case worker reads them.
_CANCEL_WORDS = {
    "move-cancelled": "de verhuizing gaat niet door",
    "move-corrected": "de verhuizing is in de BRP gecorrigeerd",
    "client-deceased": "de cliënt is overleden",
}
# Departing states in which the offer (which carries the urgency) has not gone yet.
_BEFORE_OFFER = frozenset(
    {"started", "waiting-for-consent", "consent-given", "receiver-not-connected"}
)


async def client_in_words(session: AsyncSession, dossier: DossierRow) -> tuple[str, str]:
    """The client's name and movable devices as a task names them, from the register.

    ("De cliënt", "") once the register has no record of the client.
    """
    client = await load_client(session, dossier.client_bsn or "")
    if client is None:
        return "De cliënt", ""
    return person_name(client.name), devices_phrase(d for d in client.devices if d.movable)


def own_gemeentecode(dossier: DossierRow, configured: str | None) -> str:
    """The gemeente this agent acts for in the dossier (of its region), else the configured one."""
    return dossier.gemeentecode or configured or ""


def own_role(dossier: DossierRow) -> str:
    """This gemeente's protocol role in the dossier."""
    return "departing-gemeente" if dossier.side == "departing" else "receiving-gemeente"


class Dossiers:
    """Starts, changes, cancels and shows dossiers."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    # --- starting -------------------------------------------------------------------------------

    async def start(self, start: DossierStart, *, cause: str) -> DossierView:
        """Start a handover for a client in the register; it waits for the client's consent."""
        served = await self._agent.served_or_own()
        if start.new_address.gemeentecode in served:
            raise NothingToMove(
                f"the new address is in gemeente {start.new_address.gemeentecode}, which this "
                "agent serves too: the provision moves within this organisation, by hand"
            )
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await self.start_in(session, start, cause=cause, now=now)
            return await self.view_in(session, dossier.id)

    async def start_in(
        self,
        session: AsyncSession,
        start: DossierStart,
        *,
        cause: str,
        now: datetime,
        gemeentecode: str | None = None,
    ) -> DossierRow:
        """Start a dossier inside the caller's transaction (case system, BRP event, request).

        ``gemeentecode`` is the gemeente the client leaves, one of a regional service's; the
        configured gemeentecode when not given.
        """
        client = await load_client(session, start.bsn)
        if client is None:
            raise ProvisionUnknown("this client is not in the register of current provisions")
        if not any(device.movable for device in client.devices):
            raise NothingToMove("the client has no movable device")
        own = gemeentecode or self._agent.settings.gemeentecode
        if start.new_address.gemeentecode == own:
            raise NothingToMove("the new address is in this gemeente")
        dossier = DossierRow(
            id=str(uuid.uuid4()),
            side="departing",
            state=initial_state("departing"),
            gemeentecode=own,
            partner_gemeentecode=start.new_address.gemeentecode,
            client_bsn=start.bsn,
            move_date=start.move_date,
            new_address=start.new_address.model_dump(mode="json", by_alias=True, exclude_none=True),
            created_at=now,
            updated_at=now,
        )
        reason = urgency_reason(client.devices, self._agent.settings.handover.urgent_iso_codes)
        dossier.urgent, dossier.urgency_reason = reason is not None, reason
        await self.create(session, dossier, cause=cause, now=now)
        institutions = self._agent.settings.handover.wlz_institution_addresses
        if is_wlz_institution(start.new_address, institutions):
            await self.stop_for_wlz_in(
                session, dossier, cause="the new address is a Wlz institution", now=now
            )
            return dossier
        await self.transition(session, dossier, "waiting-for-consent", "consent asked", now)
        return dossier

    async def create(
        self, session: AsyncSession, dossier: DossierRow, *, cause: str, now: datetime
    ) -> None:
        """Store a new dossier in its initial state, with the first line of its timeline."""
        session.add(dossier)
        await session.flush()  # later rows refer to it
        await self._record(session, dossier, None, cause, now)

    # --- state changes --------------------------------------------------------------------------

    async def transition(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        target: str,
        cause: str,
        now: datetime,
        *,
        message: Message | None = None,
    ) -> None:
        """Move a dossier to ``target``; the capabilities' hooks for ``target`` run after it."""
        check_transition(side(dossier), dossier.state, target)
        previous = dossier.state
        dossier.state, dossier.updated_at = target, now
        await self._record(session, dossier, previous, cause, now)
        change = StateChange(dossier, previous, target, cause, now, message)
        await self._agent.hooks.entered(session, change)

    @staticmethod
    def note(session: AsyncSession, dossier: DossierRow, cause: str, now: datetime) -> None:
        """A line in the dossier's timeline that changes no state (a note, reported progress)."""
        session.add(
            TransitionRow(
                dossier_id=dossier.id,
                from_state=dossier.state,
                to_state=dossier.state,
                at=now,
                cause=cause,
            )
        )

    async def _record(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        previous: str | None,
        cause: str,
        now: datetime,
    ) -> None:
        target = dossier.state
        session.add(
            TransitionRow(
                dossier_id=dossier.id, from_state=previous, to_state=target, at=now, cause=cause
            )
        )
        log_event(
            _log,
            "dossier_state_changed",
            dossier_id=dossier.id,
            side=dossier.side,
            from_state=previous,
            to_state=target,
        )
        event_id = uuid.uuid4()
        await self._agent.outgoing.event(
            session,
            event_id=event_id,
            dossier_id=dossier.id,
            event_type=STATE_CHANGED,
            body=state_changed_event(
                event_id=event_id,
                oin=self._agent.settings.oin,
                dossier_id=dossier.id,
                side=dossier.side,
                from_state=previous,
                to_state=target,
                cause=cause,
                at=now,
            ),
            now=now,
        )

    # --- cancelling -----------------------------------------------------------------------------

    async def cancel_in(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        *,
        reason: CancelReason,
        cause: str,
        now: datetime,
    ) -> None:
        """Cancel a dossier in the caller's transaction; a partner that got a message is told."""
        await self.transition(session, dossier, "cancelled", cause, now)
        await self._stopped(session, dossier, DossierCancelled(reason=reason), now)

    async def _stopped(
        self, session: AsyncSession, dossier: DossierRow, cancelled: DossierCancelled, now: datetime
    ) -> None:
        # Suppliers (hooks) and a partner that got a message are told the move stops.
        for hook in self._agent.hooks.cancel_hooks:
            await hook(session, dossier, cancelled, now)
        told = await session.scalar(
            select(OutboxRow.message_id)
            .where(OutboxRow.dossier_id == dossier.id, OutboxRow.kind == "message")
            .where(OutboxRow.destination_oin == dossier.partner_oin)
            .limit(1)
        )
        if told is None or dossier.partner_oin is None:
            return
        roles = DEPARTING_ROLES if dossier.side == "departing" else RECEIVING_ROLES
        await self._agent.outgoing.message(
            session, dossier.id, cancelled, now, to=dossier.partner_oin, roles=roles
        )

    # --- Wlz and urgency --------------------------------------------------------------------------

    async def stop_for_wlz(self, dossier_id: str, *, reason: str) -> DossierView:
        """A case worker found the client moves into a Wlz institution: the Wmo takeover stops."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await self.locked(session, dossier_id, "departing")
            await self.stop_for_wlz_in(
                session, dossier, cause=f"Wlz institution: {reason}", now=now
            )
            return await self.view_in(session, dossier_id)

    async def stop_for_wlz_in(
        self, session: AsyncSession, dossier: DossierRow, *, cause: str, now: datetime
    ) -> None:
        """Stop the Wmo takeover (Wlz provides in an institution) and task the zorgkantoor handover.

        The client keeps using the devices until the zorgkantoor's ergotherapist has looked at
        them; the capabilities' hook for ``wlz-institution`` tells the client.
        """
        check_transition(side(dossier), dossier.state, WLZ_STOPPED)
        await self.transition(session, dossier, WLZ_STOPPED, cause, now)
        stop = DossierCancelled(
            reason="other", reason_text="De cliënt gaat wonen in een Wlz-instelling."
        )
        await self._stopped(session, dossier, stop, now)
        name, movable = await client_in_words(session, dossier)
        await open_task(
            session,
            "wlz-institution",
            f"{name} gaat wonen in een Wlz-instelling. Daar zorgt het zorgkantoor voor "
            f"hulpmiddelen, niet de Wmo. De overdracht naar de nieuwe gemeente is gestopt. "
            f"Draag de hulpmiddelen ({movable}) over aan het zorgkantoor. Tot die tijd houdt "
            f"{name} ze in gebruik.",
            now,
            dossier_id=dossier.id,
            due_at=now + timedelta(days=14),
        )

    async def mark_urgent(self, dossier_id: str, *, reason: str) -> DossierView:
        """A case worker marks a dossier urgent: the client cannot be without a device."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await session.get(DossierRow, dossier_id, with_for_update=True)
            if dossier is None:
                raise DossierUnknown(f"no dossier {dossier_id}")
            if dossier.state not in OPEN_STATES:
                raise IllegalTransition(f"a dossier in {dossier.state} is no longer open")
            if dossier.side == "departing" and dossier.state not in _BEFORE_OFFER:
                raise IllegalTransition(
                    "the dossier has gone to the receiving gemeente: ask them to mark it urgent"
                )
            dossier.urgent, dossier.urgency_reason, dossier.updated_at = True, reason, now
            log_event(_log, "dossier_marked_urgent", dossier_id=dossier.id, side=dossier.side)
            return await self.view_in(session, dossier_id)

    async def on_cancelled(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Inbound dossier-cancelled: the partner's move is void."""
        cancelled = message.body
        assert isinstance(cancelled, DossierCancelled)
        if cancelled.device_ids is not None:
            # Between gemeenten a changed decision travels as a device-decision (section 5).
            raise MessageNotHandled("a gemeente takes only the cancellation of a whole dossier")
        dossier = await self.shared_with_sender(session, message)
        if dossier.state == "completed":
            # A completed dossier stays completed; a person undoes what the handover changed.
            client = await load_client(session, dossier.client_bsn or "")
            name = person_name(client.name) if client else "de cliënt"
            why = _CANCEL_WORDS.get(cancelled.reason) or cancelled.reason_text or ""
            await open_task(
                session,
                "manual-check",
                f"De overdracht van {name} was al klaar, maar is nu gestopt: {why}. Controleer "
                "de voorziening en de hulpmiddelen. De leveranciers zijn ingelicht.",
                now,
                dossier_id=dossier.id,
            )
        else:
            cause = f"dossier-cancelled {message.message_id} received"
            await self.transition(session, dossier, "cancelled", cause, now, message=message)
        for hook in self._agent.hooks.cancel_hooks:
            await hook(session, dossier, cancelled, now)

    # --- finding --------------------------------------------------------------------------------

    async def shared_with_sender(self, session: AsyncSession, message: Message) -> DossierRow:
        """The dossier a message is about, when its sender is this dossier's partner.

        Locked for this transaction (``FOR UPDATE`` on PostgreSQL) and read afresh: a handler
        changes the dossier as it is now, not as another transaction found it before committing.
        """
        dossier = await lock_dossier(session, str(message.dossier_id))
        if dossier is None or dossier.partner_oin is None:
            raise DossierUnknown("no dossier with this id is shared with the sender")
        if dossier.partner_oin != message.sender.oin:
            raise SenderNotPermitted("this dossier is shared with another participant")
        return dossier

    async def locked(self, session: AsyncSession, dossier_id: str, side: Side) -> DossierRow:
        """A dossier of ``side``, locked for this transaction (``FOR UPDATE`` on PostgreSQL)."""
        dossier = await lock_dossier(session, dossier_id)
        if dossier is None or dossier.side != side:
            raise DossierUnknown(f"no {side} dossier {dossier_id}")
        return dossier

    # --- reading --------------------------------------------------------------------------------

    async def list(self, state: str | None = None) -> list[DossierSummary]:
        """Dossiers, optionally only those in ``state``, newest first."""
        query = select(DossierRow).order_by(DossierRow.created_at.desc(), DossierRow.id)
        if state is not None:
            query = query.where(DossierRow.state == state)
        async with self._agent.database.reading() as session:
            return [DossierSummary.model_validate(row) for row in await session.scalars(query)]

    async def view(self, dossier_id: str) -> DossierView:
        """One dossier with its timeline and decisions."""
        async with self._agent.database.reading() as session:
            return await self.view_in(session, dossier_id)

    async def view_in(self, session: AsyncSession, dossier_id: str) -> DossierView:
        """One dossier as this session sees it (inside a transaction: as it will be committed)."""
        row = await session.get(DossierRow, dossier_id)
        if row is None:
            raise DossierUnknown(f"no dossier {dossier_id}")
        transitions = await session.scalars(
            select(TransitionRow)
            .where(TransitionRow.dossier_id == dossier_id)
            .order_by(TransitionRow.id)
        )
        decisions = await session.scalars(
            select(ProvisionRow)
            .where(ProvisionRow.dossier_id == dossier_id)
            .order_by(ProvisionRow.id)
        )
        return DossierView(
            **DossierSummary.model_validate(row).model_dump(),
            timeline=tuple(TransitionView.model_validate(t) for t in transitions),
            decisions=tuple(DecisionView.model_validate(d) for d in decisions),
            progress=tuple((await received_progress(session, dossier_id)).values()),
        )


async def lock_dossier(session: AsyncSession, dossier_id: str) -> DossierRow | None:
    """The dossier as committed now, locked for this transaction (``FOR UPDATE`` on PostgreSQL).

    Read before a change that depends on the dossier's state: a transaction that committed
    meanwhile (a withdrawal, a cancellation, a consent) is seen, not overwritten.
    """
    return await session.get(DossierRow, dossier_id, with_for_update=True, populate_existing=True)


async def devices_decided(
    session: AsyncSession, dossier_id: str, outcome: Literal["take-over", "exception"]
) -> frozenset[str]:
    """The devices the dossier's stored decision gives ``outcome`` (before a revision is stored,
    the outcome they had until now)."""
    found = await session.scalars(
        select(ProvisionRow.device_id).where(
            ProvisionRow.dossier_id == dossier_id, ProvisionRow.outcome == outcome
        )
    )
    return frozenset(found)


def decided_fields(item: DeviceDecisionItem) -> dict[str, Any]:
    """What a continued provision row keeps of one decision item (its outcome and follow-up)."""
    return {
        "outcome": item.outcome,
        "reason_code": item.reason_code,
        "reason_text": item.reason_text,
        "alternative": item.alternative_offered,
        "follow_up": item.follow_up,
        "supplier_name": item.receiving_supplier.name if item.receiving_supplier else None,
    }


def side(dossier: DossierRow) -> Side:
    """The side of a dossier, typed."""
    return "departing" if dossier.side == "departing" else "receiving"
