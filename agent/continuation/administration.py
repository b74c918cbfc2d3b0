"""After the takeover: the register, the beschikking and the eigen bijdrage at the CAK.

Receiving side, when the dossier completes: the client (at the new address) and every device
taken over join this gemeente's register, with the receiving supplier and the continued
indicatie, so the client's next move finds them; the back office is told, by a task,
to register the continued provision with the CAK from the move date. Departing side, when the
decision arrives: a task to end the beschikking on the move date, and a task to end the CAK
registration on the day before, so the client neither pays twice nor has a gap. (Each state
change also reaches the back office as a CloudEvent, ``agent.delivery.cloudevents``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import devices_decided
from agent.core.hooks import Hooks, StateChange
from agent.core.receiving import received_offer
from agent.core.tasks import open_task
from agent.register.models import RegisterClient
from agent.register.names import devices_phrase, gemeente_name, person_name
from agent.register.store import add_continued_provisions, load_client
from agent.storage.tables import DossierRow, OrderRow
from agent.working_days import day_end
from protocol.messages import Device, DossierOffer, SupplierReference
from registry.server_kit.dutch import dutch_date

__all__ = ["Administration"]


class Administration:
    """What the two gemeenten's own administrations do after the takeover."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    def register(self, hooks: Hooks) -> None:
        """Add the register, beschikking and CAK steps to a gemeente's agent."""
        hooks.on_state(self._receiving_completed, "completed")
        hooks.on_state(self._departing_decided, "decided")

    # --- receiving side -------------------------------------------------------------------------

    async def _receiving_completed(self, session: AsyncSession, change: StateChange) -> None:
        if change.dossier.side == "receiving":
            await self.register_continued(session, change.dossier, change.now)

    async def register_continued(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        """The devices taken over join the register; the back office tells the CAK (a task).

        On completion, and again when a consulent takes a device over after completion (the
        register keeps what it has; an open CAK task is not opened twice).
        """
        offer = await received_offer(session, dossier.id)
        if offer is None:
            return  # the client's data were erased (withdrawal): nothing to register
        taken_over = await devices_decided(session, dossier.id, "take-over")
        kept = await _ours(
            session, dossier.id, [d for d in offer.devices if d.device_id in taken_over]
        )
        if not kept:
            return
        await add_continued_provisions(session, _register_client(offer, kept), now=now)
        await self._agent.log.record(session, "continued-provision-registered", dossier, now)
        move, devices = offer.client.move_date, devices_phrase(kept, articles=True)
        await open_task(
            session,
            "eigen-bijdrage-start",
            f"Meld bij het CAK dat {person_name(offer.client.name)} vanaf {dutch_date(move)} bij "
            f"ons een eigen bijdrage betaalt voor {devices}. Dit is een voortgezette "
            "maatwerkvoorziening na een verhuizing; de vorige gemeente stopt haar melding op "
            f"{dutch_date(move - timedelta(days=1))}.",
            now,
            dossier_id=dossier.id,
            due_at=day_end(max(move, now.date())),
        )

    # --- departing side -------------------------------------------------------------------------

    async def _departing_decided(self, session: AsyncSession, change: StateChange) -> None:
        dossier, decision = change.dossier, change.received_decision
        if decision is None:
            return
        client = await load_client(session, dossier.client_bsn or "")
        if client is None:
            return
        taken = {i.device_id for i in decision.decisions if i.outcome == "take-over"}
        kept = [device for device in client.devices if device.device_id in taken]
        if not kept:
            return
        move, name = decision.effective_date, person_name(client.name)
        devices = devices_phrase(kept, articles=True)
        receiving = gemeente_name(dossier.partner_gemeentecode)
        reference = (
            f"beschikking {client.indicatie.beschikking_reference}"
            if client.indicatie is not None
            else "de beschikking"
        )
        await open_task(
            session,
            "end-beschikking",
            f"{name} is op {dutch_date(move)} verhuisd naar de gemeente {receiving}. Die "
            f"gemeente zet {devices} voort. Beëindig {reference} per {dutch_date(move)}.",
            change.now,
            dossier_id=dossier.id,
            due_at=day_end(max(move, change.now.date())),
        )
        last_day = move - timedelta(days=1)
        await open_task(
            session,
            "eigen-bijdrage-end",
            f"Meld bij het CAK dat de eigen bijdrage van {name} voor {devices} stopt op "
            f"{dutch_date(last_day)}. De gemeente {receiving} meldt de voortzetting vanaf "
            f"{dutch_date(move)}.",
            change.now,
            dossier_id=dossier.id,
            due_at=day_end(max(last_day, change.now.date())),
        )


async def _ours(session: AsyncSession, dossier_id: str, devices: Sequence[Device]) -> list[Device]:
    # Our supplier (the latest order's) replaces the departing one; the contract is ours now.
    orders = await session.scalars(
        select(OrderRow)
        .where(OrderRow.dossier_id == dossier_id, OrderRow.active.is_(True))
        .order_by(OrderRow.attempt)
    )
    latest = {order.device_id: order for order in orders}
    ours = []
    for device in devices:
        order = latest.get(device.device_id)
        supplier = (
            SupplierReference(oin=order.supplier_oin, name=order.supplier_name) if order else None
        )
        ours.append(device.model_copy(update={"supplier": supplier, "contract_reference": None}))
    return ours


def _register_client(offer: DossierOffer, devices: Sequence[Device]) -> RegisterClient:
    client = offer.client
    document: dict[str, Any] = {
        "bsn": client.bsn,
        "name": client.name,
        "address": client.new_address,
        "contactPreferences": client.contact_preferences,
        "representative": client.representative,
        "functionalInformation": offer.functional_information,
        "devices": devices,
    }
    indicatie = offer.indicatie
    if indicatie is not None and (
        indicatie.end_date is None or indicatie.end_date >= client.move_date
    ):
        # The continued provision: the same indicatie, from the move date to its own end.
        document["indicatie"] = {
            "legalBasis": indicatie.legal_basis,
            "beschikkingReference": indicatie.beschikking_reference,
            "decisionDate": indicatie.decision_date,
            "startDate": client.move_date,
            "endDate": indicatie.end_date,
        }
    return RegisterClient.model_validate(document)
