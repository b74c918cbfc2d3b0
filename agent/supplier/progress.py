"""The supplier's progress, passed from the receiving gemeente to the departing gemeente.

Receiving gemeente: each time its view of an ordered device changes (the order is placed with a
supplier, the supplier contacted the client or took the device over, reported a problem, missed
the contact date, or every supplier refused), it sends a ``handover-progress`` to the departing
gemeente: the device's state, the date it is about, who acts next and the supplier with its
phone number. No BSN and no client data: the departing gemeente has them. When a refusal moved
an order to the next supplier, the decision goes again first, naming that supplier.

Departing gemeente: it accepts progress only from the dossier's partner and only for devices
that partner decided to take over, and writes a line in the dossier's timeline; the client's
page reads the latest state per device (``agent.core.progress``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers, devices_decided
from agent.core.hooks import Hooks
from agent.errors import MessageNotHandled
from agent.register.names import the_device
from agent.register.store import load_client
from agent.storage.tables import DossierRow, OrderRow, OutboxRow
from agent.working_days import dutch_date_of
from protocol.messages import (
    DeviceDecision,
    DeviceDecisionItem,
    DeviceProgress,
    FollowUp,
    HandoverProgress,
    Message,
    ProgressState,
    SupplierReference,
)
from registry.server_kit.dutch import dutch_date

__all__ = ["ProgressReports", "progress_note", "reason_in_words"]

_ROLES: Final = ("receiving-gemeente", "departing-gemeente")
# Dossiers that no longer move: nothing is reported, and a late report changes nothing.
_STOPPED: Final = frozenset({"cancelled", "consent-withdrawn", "failed"})
_FOLLOW_UP: Final[dict[str, FollowUp | None]] = {
    "contact-planned": "supplier-order",
    "client-contacted": "supplier-order",
    "taken-over": None,
    "contact-overdue": "gemeente-task",
    "problem": "gemeente-task",
    "refused": "gemeente-task",
}
# The supplier's reasons, as a case worker reads them.
_REASONS: Final = {
    "client-unreachable": "de cliënt is niet bereikbaar",
    "device-not-found": "het hulpmiddel is niet gevonden",
    "device-unsafe": "het hulpmiddel is niet veilig",
    "not-contracted": "de leverancier heeft geen contract voor dit hulpmiddel",
    "no-capacity": "de leverancier heeft geen capaciteit",
    "other": "een andere reden",
}


class ProgressReports:
    """Sends (receiving gemeente) and takes in (departing gemeente) ``handover-progress``."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    def register(self, hooks: Hooks) -> None:
        """Take the receiving gemeente's progress in, on a gemeente's agent."""
        hooks.handle("handover-progress", self.on_progress)

    # --- receiving gemeente: report ---------------------------------------------------------

    async def report(
        self,
        session: AsyncSession,
        order: OrderRow,
        state: ProgressState,
        now: datetime,
        *,
        on: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        """Tell the departing gemeente where the device of ``order`` stands now.

        ``on``: when the supplier contacted the client or took the device over.
        """
        day = dutch_date_of(on) if on is not None else None
        dossier = await session.get(DossierRow, order.dossier_id)
        if dossier is None or dossier.side != "receiving" or dossier.partner_oin is None:
            return
        if dossier.state in _STOPPED:
            return
        device = DeviceProgress.model_validate(
            {
                "deviceId": order.device_id,
                "state": state,
                "followUp": _FOLLOW_UP[state],
                "supplier": SupplierReference(oin=order.supplier_oin, name=order.supplier_name),
                "supplierPhone": self._agent.settings.handover.phone_numbers.get(
                    order.supplier_oin
                ),
                "contactBefore": order.contact_before
                if state in ("contact-planned", "contact-overdue")
                else None,
                "contactedOn": day if state == "client-contacted" else None,
                "takenOverOn": day if state == "taken-over" else None,
                "reasonCode": reason if state in ("problem", "refused") else None,
                "changedAt": now,
            }
        )
        await self._agent.outgoing.message(
            session,
            dossier.id,
            HandoverProgress(devices=(device,)),
            now,
            to=dossier.partner_oin,
            roles=_ROLES,
        )

    async def moved_on(
        self, session: AsyncSession, dossier: DossierRow, placed: OrderRow, now: datetime
    ) -> None:
        """A refusal moved the order to ``placed``'s supplier: tell the departing gemeente.

        The decision is sent again with the new receivingSupplier for this device, which the
        departing gemeente passes on in a new departure notice (docs/supplier.md), followed by
        the device's progress with the new supplier.
        """
        supplier = SupplierReference(oin=placed.supplier_oin, name=placed.supplier_name)
        await self.decision_again(
            session,
            dossier,
            placed.device_id,
            lambda item: item.model_copy(update={"receiving_supplier": supplier}),
            now,
        )
        await self.report(session, placed, "contact-planned", now)

    async def decision_again(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        device_id: str,
        change: Callable[[DeviceDecisionItem], DeviceDecisionItem],
        now: datetime,
    ) -> bool:
        """Send the decision sent last again, revised now, with ``change`` made to one device's
        item.

        Returns whether there was a decision to send again (docs/protocol.md, section 5).
        """
        previous = await session.scalar(
            select(OutboxRow)
            .where(OutboxRow.dossier_id == dossier.id, OutboxRow.message_type == "device-decision")
            .order_by(OutboxRow.sequence.desc())
            .limit(1)
        )
        if previous is None or not previous.body or dossier.partner_oin is None:
            return False
        document = json.loads(previous.body)
        decision = DeviceDecision.model_validate(document["body"])
        items = tuple(
            change(item) if item.device_id == device_id else item for item in decision.decisions
        )
        await self._agent.outgoing.message(
            session,
            dossier.id,
            decision.model_copy(update={"decisions": items, "revised_at": now}),
            now,
            to=dossier.partner_oin,
            roles=_ROLES,
            in_reply_to=document.get("inReplyTo"),
        )
        return True

    # --- departing gemeente: take in --------------------------------------------------------

    async def on_progress(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Keep the partner's progress for devices it took over; note it in the timeline."""
        progress = message.body
        assert isinstance(progress, HandoverProgress)
        dossier = await self._dossiers.shared_with_sender(session, message)
        if dossier.side != "departing":
            raise MessageNotHandled("progress is sent to the gemeente the client leaves")
        if dossier.state in _STOPPED:
            return  # stored and receipted; nothing moves any more
        taken_over = await devices_decided(session, dossier.id, "take-over")
        if any(device.device_id not in taken_over for device in progress.devices):
            raise MessageNotHandled(
                "progress names a device this dossier's decision did not take over"
            )
        client = await load_client(session, dossier.client_bsn or "")
        names = {d.device_id: the_device(d) for d in client.devices} if client else {}
        for device in progress.devices:
            what = names.get(device.device_id, f"hulpmiddel {device.device_id}")
            note = f"voortgang bij de nieuwe gemeente: {progress_note(device, what)}"
            self._dossiers.note(session, dossier, note, now)


def reason_in_words(code: str | None) -> str:
    """A supplier's reason code as a case worker reads it ("de cliënt is niet bereikbaar")."""
    return _REASONS.get(code or "other", _REASONS["other"])


def progress_note(device: DeviceProgress, what: str) -> str:
    """The progress of one device as a case worker reads it: whole sentence, no ids."""
    supplier = device.supplier.name if device.supplier else "de leverancier"
    if device.state == "contact-planned" and device.contact_before:
        return (
            f"{supplier} heeft de opdracht voor {what} en neemt uiterlijk op "
            f"{dutch_date(device.contact_before)} contact op met de cliënt."
        )
    if device.state == "client-contacted" and device.contacted_on:
        return (
            f"{supplier} heeft op {dutch_date(device.contacted_on)} contact gehad met de cliënt "
            f"over {what}."
        )
    if device.state == "taken-over" and device.taken_over_on:
        return f"{supplier} heeft {what} op {dutch_date(device.taken_over_on)} overgenomen."
    if device.state == "contact-overdue":
        return (
            f"{supplier} heeft niet op tijd contact opgenomen over {what}. Een medewerker van "
            "de nieuwe gemeente heeft hiervoor een taak."
        )
    why = reason_in_words(device.reason_code)
    if device.state == "refused":
        return (
            f"Geen leverancier van de nieuwe gemeente neemt {what} over ({why}). Een medewerker "
            "van de nieuwe gemeente heeft hiervoor een taak."
        )
    return (
        f"{supplier} meldt een probleem met {what} ({why}). Een medewerker van de nieuwe "
        "gemeente heeft hiervoor een taak."
    )
