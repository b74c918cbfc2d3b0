"""Receiving side: an offer becomes a dossier, a decision per device and a continued provision.

Takeover is the default (verhuisconvenant 2021, principle 2); exceptions follow the configured
policy (``agent.core.policy``). A capability may add to the decision before it is sent (the
supplier side names the receiving supplier of each device it ordered).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import RECEIVING_ROLES, Dossiers, decided_fields, lock_dossier
from agent.core.policy import continued_provision_end, decide_devices
from agent.core.states import initial_state
from agent.delivery.outbox import DeliveredMessage
from agent.errors import IllegalTransition, SenderNotPermitted
from agent.storage.tables import DossierRow, InboundMessageRow, ProvisionRow
from protocol.messages import DeviceDecision, DossierOffer, Message

__all__ = ["Receiving", "received_offer"]


class Receiving:
    """The receiving gemeente's part of a handover."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    async def on_offer(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Inbound dossier-offer: store the dossier, decide per device, answer the decision."""
        offer = message.body
        assert isinstance(offer, DossierOffer)
        # Inbound checked that this agent serves the new address's gemeente (one of its region).
        dossier_id = str(message.dossier_id)
        known = await session.get(DossierRow, dossier_id)
        if known is not None and known.partner_oin != message.sender.oin:
            raise SenderNotPermitted("this dossier is shared with another participant")
        if known is not None:
            raise IllegalTransition("an offer for this dossier was received before")
        dossier = DossierRow(
            id=dossier_id,
            side="receiving",
            state=initial_state("receiving"),
            partner_oin=message.sender.oin,
            gemeentecode=offer.client.new_address.gemeentecode,
            partner_gemeentecode=offer.departing_gemeentecode,
            client_bsn=offer.client.bsn,
            move_date=offer.client.move_date,
            urgent=offer.urgent,
            urgency_reason=offer.urgency_reason,
            created_at=now,
            updated_at=now,
        )
        cause = f"dossier-offer {message.message_id} received"
        await self._dossiers.create(session, dossier, cause=cause, now=now)
        await self._agent.log.record(session, "dossier-offer-received", dossier, now)
        decision = self._decide(session, dossier, offer)
        for hook in self._agent.hooks.decision_hooks:
            decision = await hook(session, dossier, offer, decision, now)
        await self._agent.outgoing.message(
            session,
            dossier_id,
            decision,
            now,
            to=message.sender.oin,
            roles=RECEIVING_ROLES,
            in_reply_to=str(message.message_id),
        )
        cause = "decided by takeover policy"
        await self._dossiers.transition(session, dossier, "decided", cause, now, message=message)

    def _decide(
        self, session: AsyncSession, dossier: DossierRow, offer: DossierOffer
    ) -> DeviceDecision:
        # The policy of the gemeente the client moves to: a regional service serves several.
        exceptions = self._agent.settings.device_exceptions_for(
            offer.client.new_address.gemeentecode
        )
        items = decide_devices(offer.devices, exceptions)
        end = continued_provision_end(offer.indicatie)
        iso_codes = {device.device_id: device.iso_code for device in offer.devices}
        for item in items:
            taken_over = item.outcome == "take-over"
            session.add(
                ProvisionRow(
                    dossier_id=dossier.id,
                    device_id=item.device_id,
                    iso_code=iso_codes[item.device_id],
                    **decided_fields(item),
                    # Continued provision: from the move date, with the indicatie's own end.
                    start_date=offer.client.move_date if taken_over else None,
                    end_date=end if taken_over else None,
                )
            )
        return DeviceDecision(
            decisions=items,
            effective_date=offer.client.move_date,
            provision_end_date=end,
        )

    async def on_delivered(
        self, session: AsyncSession, row: DeliveredMessage, now: datetime
    ) -> None:
        """Without takeover orders, the receipted decision completes the dossier."""
        if row.kind != "message" or row.message_type != "device-decision":
            return
        dossier = await lock_dossier(session, row.dossier_id)
        if dossier is not None and dossier.state == "decided":
            await self._dossiers.transition(
                session, dossier, "completed", "device-decision receipted", now
            )


async def received_offer(session: AsyncSession, dossier_id: str) -> DossierOffer | None:
    """The offer a receiving dossier started from, or None once erased (a withdrawal)."""
    raw = await session.scalar(
        select(InboundMessageRow.body).where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "dossier-offer",
        )
    )
    if not raw:
        return None
    return DossierOffer.model_validate(json.loads(raw)["body"])
