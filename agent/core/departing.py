"""Departing side: the offer once the client consented, and the receiving gemeente's decision."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import DEPARTING_ROLES, Dossiers, decided_fields, own_gemeentecode
from agent.core.hooks import DecisionUpdate
from agent.core.offer import build_offer
from agent.core.progress import received_progress
from agent.core.states import check_transition
from agent.errors import (
    DossierUnknown,
    IllegalTransition,
    MessageNotHandled,
    ProvisionUnknown,
    ReceiverNotConnected,
    registry_failure,
)
from agent.register.names import the_device
from agent.register.store import load_client
from agent.storage.tables import ConsentRow, DossierRow, InboundMessageRow, ProvisionRow
from protocol.messages import DeviceDecision, DeviceDecisionItem, Message
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["DECISION_UPDATE_STATES", "Departing"]

# A departing dossier in one of these states takes a later device-decision: another receiving
# supplier (a refusal moved an order on), or a revised outcome (docs/protocol.md, section 5).
DECISION_UPDATE_STATES: Final = frozenset({"orders-placed", "completed"})
# Nothing moves any more: a later decision is receipted and ignored.
_STOPPED: Final = frozenset({"cancelled", "consent-withdrawn", "failed"})


class Departing:
    """The departing gemeente's part of a handover after the client's answer."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    async def receiving_oin(self, dossier_id: str) -> str:
        """The OIN of the agent of the gemeente the client moves to (a registry look-up)."""
        async with self._agent.database.reading() as session:
            dossier = await session.get(DossierRow, dossier_id)
        if dossier is None or dossier.side != "departing":
            raise DossierUnknown(f"no departing dossier {dossier_id}")
        gemeentecode = dossier.partner_gemeentecode or ""
        try:
            entry = await self._agent.directory.gemeente(gemeentecode, message_type="dossier-offer")
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise ReceiverNotConnected(exc.detail) from exc
        except RegistryError as exc:
            raise registry_failure(exc) from exc
        if entry.oin is None:
            raise ReceiverNotConnected(f"gemeente {gemeentecode} has not enrolled")
        if entry.oin == self._agent.settings.oin:
            # A move within a regional service's own gemeenten (started while the registry could
            # not say so): there is no other agent; a consulent arranges it, as when not connected.
            raise ReceiverNotConnected(f"gemeente {gemeentecode} is served by this agent itself")
        return entry.oin

    async def send_offer(self, dossier_id: str) -> None:
        """Send the offer of a dossier in ``consent-given`` (refused without a consent record)."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await self._dossiers.locked(session, dossier_id, "departing")
            await self.send_offer_in(session, dossier, now)

    async def send_offer_in(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        now: datetime,
        *,
        consent: ConsentRow | None = None,
    ) -> None:
        """Queue the offer with exactly what the client consented to, in this transaction."""
        check_transition("departing", dossier.state, "offer-sent")
        if consent is None:
            consent = await session.scalar(
                select(ConsentRow)
                .where(ConsentRow.dossier_id == dossier.id, ConsentRow.outcome == "given")
                .order_by(ConsentRow.recorded_at.desc())
                .limit(1)
            )
        client = await load_client(session, dossier.client_bsn or "")
        if client is None:
            raise ProvisionUnknown("the client is no longer in the register")
        if dossier.partner_oin is None or dossier.new_address is None or dossier.move_date is None:
            raise IllegalTransition("the dossier has no receiving gemeente or move yet")
        offer = build_offer(
            client=client,
            consent=consent,
            new_address=dossier.new_address,
            move_date=dossier.move_date,
            departing_gemeentecode=own_gemeentecode(dossier, self._agent.settings.gemeentecode),
            urgent=dossier.urgent,
            urgency_reason=(dossier.urgency_reason or "Dringend.") if dossier.urgent else None,
        )
        await self._dossiers.transition(session, dossier, "offer-sent", "dossier-offer queued", now)
        await self._agent.outgoing.message(
            session, dossier.id, offer, now, to=dossier.partner_oin, roles=DEPARTING_ROLES
        )
        await self._agent.log.record(session, "dossier-offer-sent", dossier, now)

    async def on_decision(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Inbound device-decision: the receiving gemeente decided on each device offered.

        A capability that acts on the decision (departure notices) moves the dossier on from
        ``decided``; when none did, the decision completes it.
        """
        decision = message.body
        assert isinstance(decision, DeviceDecision)
        dossier = await self._dossiers.shared_with_sender(session, message)
        if dossier.state != "offer-sent":
            await self._on_later_decision(session, dossier, message, now)
            return
        client = await load_client(session, dossier.client_bsn or "")
        iso_codes = {d.device_id: d.iso_code for d in client.devices} if client else {}
        session.add_all(
            ProvisionRow(
                dossier_id=dossier.id,
                device_id=item.device_id,
                iso_code=iso_codes.get(item.device_id, ""),
                # Departing side: our own provision ends on the effective (move) date.
                start_date=None,
                end_date=decision.effective_date,
                **decided_fields(item),
            )
            for item in decision.decisions
        )
        cause = f"device-decision {message.message_id} received"
        await self._dossiers.transition(session, dossier, "decided", cause, now, message=message)
        if dossier.state == "decided":
            await self._dossiers.transition(session, dossier, "completed", "decision received", now)

    async def _on_later_decision(
        self, session: AsyncSession, dossier: DossierRow, message: Message, now: datetime
    ) -> None:
        """A later decision: another receiving supplier, or with ``revisedAt`` new outcomes.

        The capabilities' update hooks get each device's outcome until now, so they see per
        device what changed (docs/protocol.md, section 5).
        """
        decision = message.body
        assert isinstance(decision, DeviceDecision)
        if dossier.state in _STOPPED:
            return
        if dossier.state not in DECISION_UPDATE_STATES:
            raise IllegalTransition(f"a departing dossier in {dossier.state} takes no decision")
        rows = await session.scalars(
            select(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id)
        )
        stored = {row.device_id: row for row in rows}
        if set(stored) != {item.device_id for item in decision.decisions}:
            raise MessageNotHandled("a later device-decision names the devices of the first")
        changed = [i for i in decision.decisions if i.outcome != stored[i.device_id].outcome]
        if decision.revised_at is None and changed:
            raise MessageNotHandled(
                "a later device-decision without revisedAt may only change the receiving supplier"
            )
        if decision.revised_at is not None:
            latest = await _latest_revision(session, dossier.id, str(message.message_id))
            if latest is not None and decision.revised_at <= latest:
                return  # an older revision, arriving late: the newer one stands
            progress = await received_progress(session, dossier.id)
            if any(
                (known := progress.get(item.device_id)) is not None and known.state == "taken-over"
                for item in changed
            ):
                raise MessageNotHandled("a device taken over keeps its decision")
        update = DecisionUpdate(
            dossier, message, {device: row.outcome for device, row in stored.items()}, now
        )
        for hook in self._agent.hooks.decision_update_hooks:
            await hook(session, update)
        for item in decision.decisions:
            for name, value in decided_fields(item).items():
                setattr(stored[item.device_id], name, value)
        if changed:
            client = await load_client(session, dossier.client_bsn or "")
            names = {d.device_id: the_device(d) for d in client.devices} if client else {}
            for item in changed:
                what = names.get(item.device_id, f"hulpmiddel {item.device_id}")
                self._dossiers.note(session, dossier, _revision_note(item, what), now)


def _revision_note(item: DeviceDecisionItem, what: str) -> str:
    if item.outcome == "take-over":
        return f"De nieuwe gemeente heeft haar besluit gewijzigd: zij neemt {what} toch over."
    return (
        f"De nieuwe gemeente heeft haar besluit gewijzigd: zij neemt {what} niet over. "
        f"Reden: {item.reason_text} Wat de cliënt krijgt: {item.alternative_offered}"
    )


async def _latest_revision(session: AsyncSession, dossier_id: str, besides: str) -> datetime | None:
    """The latest ``revisedAt`` of the decisions received for a dossier before this one."""
    bodies = await session.scalars(
        select(InboundMessageRow.body).where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "device-decision",
            InboundMessageRow.message_id != besides,
        )
    )
    revised = [
        DeviceDecision.model_validate(json.loads(body)["body"]).revised_at
        for body in bodies
        if body
    ]
    return max((at for at in revised if at is not None), default=None)
