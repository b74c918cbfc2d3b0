"""After the takeover: the register, the beschikking and the eigen bijdrage at the CAK.

Receiving side, when the dossier completes: the client (at the new address) and every device
taken over join this gemeente's register, with the receiving supplier and the continued
indicatie, so the client's next move finds them; the back office is told, by a task,
to register the continued provision with the CAK from the move date. Departing side, when the
decision arrives: a task to end the beschikking on the move date, and a task to end the CAK
registration on the day before, so the client neither pays twice nor has a gap. A changed
decision (a consulent's, or the revised one received) replaces those tasks, or asks the person
who already did one to look again (``_retask``). (Each state change also reaches the back office
as a CloudEvent, ``agent.delivery.cloudevents``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import devices_decided
from agent.core.hooks import DecisionUpdate, Hooks, StateChange
from agent.core.receiving import received_offer
from agent.core.tasks import TaskKind, open_task
from agent.register.models import RegisterClient
from agent.register.names import devices_phrase, gemeente_name, person_name
from agent.register.store import add_continued_provisions, load_client, remove_device
from agent.storage.tables import DossierRow, OrderRow, TaskRow
from agent.working_days import day_end, dutch_date_of
from protocol.messages import Device, DeviceDecision, DossierOffer, SupplierReference
from registry.server_kit.dutch import dutch_date

__all__ = ["Administration"]

# Per task kind: the task for the devices taken over now (text, due), and the text asking a person
# who already did it to look again after a change of the decision.
_Texts = tuple[dict[TaskKind, tuple[str, datetime]], dict[TaskKind, str]]
# Who closed a task that a revised decision replaced.
_REVISION = "gewijzigd besluit"


class Administration:
    """What the two gemeenten's own administrations do after the takeover."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    def register(self, hooks: Hooks) -> None:
        """Add the register, beschikking and CAK steps to a gemeente's agent."""
        hooks.on_state(self._receiving_completed, "completed")
        hooks.on_state(self._departing_decided, "decided")
        hooks.on_decision_update(self._departing_revised)

    # --- receiving side -------------------------------------------------------------------------

    async def _receiving_completed(self, session: AsyncSession, change: StateChange) -> None:
        if change.dossier.side == "receiving":
            await self.register_continued(session, change.dossier, change.now)

    async def register_continued(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        """The devices taken over join the register; the back office tells the CAK (a task).

        On completion, and again when a consulent takes a device over after completion (the
        register keeps what it has; the CAK task then names every device, ``_retask``).
        """
        offer = await received_offer(session, dossier.id)
        if offer is None:
            return  # the client's data were erased (withdrawal): nothing to register
        kept = await _continued(session, dossier.id, offer)
        if not kept:
            return
        await add_continued_provisions(session, _register_client(offer, kept), now=now)
        await self._agent.log.record(session, "continued-provision-registered", dossier, now)
        await _retask(session, dossier.id, _receiving_texts(offer, kept, now), now)

    async def withdraw_continued(
        self, session: AsyncSession, dossier: DossierRow, device_id: str, now: datetime
    ) -> None:
        """After completion a device taken over became an exception: it leaves the register.

        The CAK task follows the devices still taken over (``_retask``).
        """
        offer = await received_offer(session, dossier.id)
        if offer is None:
            return
        await remove_device(session, offer.client.bsn, device_id)
        kept = await _continued(session, dossier.id, offer)
        await _retask(session, dossier.id, _receiving_texts(offer, kept, now), now)

    # --- departing side -------------------------------------------------------------------------

    async def _departing_decided(self, session: AsyncSession, change: StateChange) -> None:
        dossier, decision, now = change.dossier, change.received_decision, change.now
        if decision is None:
            return
        client = await load_client(session, dossier.client_bsn or "")
        if client is None:
            return
        taken = {i.device_id for i in decision.decisions if i.outcome == "take-over"}
        kept = [device for device in client.devices if device.device_id in taken]
        texts = _departing_texts(dossier, client, decision, kept, now)
        await _retask(session, dossier.id, texts, now)

    async def _departing_revised(self, session: AsyncSession, update: DecisionUpdate) -> None:
        """A revised decision: the beschikking and CAK tasks follow what is taken over now.

        An open task is replaced by one for the devices taken over now; a task a person already
        did comes back, asking them to look again.
        """
        dossier, decision, now = update.dossier, update.decision, update.now
        taken = {i.device_id for i in decision.decisions if i.outcome == "take-over"}
        client = await load_client(session, dossier.client_bsn or "")
        if update.was("take-over") == taken or client is None:
            return
        kept = [device for device in client.devices if device.device_id in taken]
        texts = _departing_texts(dossier, client, decision, kept, now)
        await _retask(session, dossier.id, texts, now)


def _departing_texts(
    dossier: DossierRow,
    client: RegisterClient,
    decision: DeviceDecision,
    kept: Sequence[Device],
    now: datetime,
) -> _Texts:
    """The departing side's tasks for the devices taken over: end the beschikking, and the CAK."""
    name, receiving = person_name(client.name), gemeente_name(dossier.partner_gemeentecode)
    devices = devices_phrase(kept, articles=True) if kept else "geen hulpmiddel meer"
    changed = f"De gemeente {receiving} heeft haar besluit gewijzigd: zij zet nu {devices} voort."
    look_again: dict[TaskKind, str] = {
        "end-beschikking": f"{changed} U hebt het einde van de beschikking van {name} al "
        "geregeld. Kijk of dat nog klopt.",
        "eigen-bijdrage-end": f"{changed} U hebt het einde van de eigen bijdrage van {name} al "
        "bij het CAK gemeld. Kijk of dat nog klopt.",
    }
    if not kept:
        return {}, look_again
    move = decision.effective_date
    reference = (
        f"beschikking {client.indicatie.beschikking_reference}"
        if client.indicatie is not None
        else "de beschikking"
    )
    last_day = move - timedelta(days=1)
    return {
        "end-beschikking": (
            f"{name} is op {dutch_date(move)} verhuisd naar de gemeente {receiving}. Die "
            f"gemeente zet {devices} voort. Beëindig {reference} per {dutch_date(move)}.",
            day_end(max(move, dutch_date_of(now))),
        ),
        "eigen-bijdrage-end": (
            f"Meld bij het CAK dat de eigen bijdrage van {name} voor {devices} stopt op "
            f"{dutch_date(last_day)}. De gemeente {receiving} meldt de voortzetting vanaf "
            f"{dutch_date(move)}.",
            day_end(max(last_day, dutch_date_of(now))),
        ),
    }, look_again


def _receiving_texts(offer: DossierOffer, kept: Sequence[Device], now: datetime) -> _Texts:
    """The receiving side's task for the devices taken over: the CAK, from the move date."""
    name, move = person_name(offer.client.name), offer.client.move_date
    devices = devices_phrase(kept, articles=True) if kept else "geen hulpmiddel meer"
    look_again: dict[TaskKind, str] = {
        "eigen-bijdrage-start": f"Wij hebben ons besluit gewijzigd: wij zetten nu {devices} "
        f"voort voor {name}. U hebt de eigen bijdrage al bij het CAK gemeld. Kijk of dat nog "
        "klopt."
    }
    if not kept:
        return {}, look_again
    return {
        "eigen-bijdrage-start": (
            f"Meld bij het CAK dat {name} vanaf {dutch_date(move)} bij ons een eigen bijdrage "
            f"betaalt voor {devices}. Dit is een voortgezette maatwerkvoorziening na een "
            "verhuizing; de vorige gemeente stopt haar melding op "
            f"{dutch_date(move - timedelta(days=1))}.",
            day_end(max(move, dutch_date_of(now))),
        )
    }, look_again


async def _retask(session: AsyncSession, dossier_id: str, texts: _Texts, now: datetime) -> None:
    """The administration's tasks after a decision or a change of it.

    ``texts``: per kind the task for the devices taken over now (none: nothing to do), and the
    text that asks a person to look again. A first decision opens the tasks; after a change an
    open task is replaced, and one a person already did comes back with the look-again text.
    """
    tasks, look_again = texts
    rows = await session.scalars(
        select(TaskRow).where(TaskRow.dossier_id == dossier_id, TaskRow.kind.in_(look_again))
    )
    done_by_a_person: set[str] = set()
    for task in rows:
        if task.state == "open":
            task.state, task.done_at, task.done_by = "done", now, _REVISION
            task.note = "Vervangen: het besluit is gewijzigd."
        elif task.done_by != _REVISION:
            done_by_a_person.add(task.kind)
    for kind, again in look_again.items():
        if kind in done_by_a_person:
            await open_task(session, kind, again, now, dossier_id=dossier_id)
        elif kind in tasks:
            text, due = tasks[kind]
            await open_task(session, kind, text, now, dossier_id=dossier_id, due_at=due)


async def _continued(session: AsyncSession, dossier_id: str, offer: DossierOffer) -> list[Device]:
    """The devices taken over, with our supplier (the latest order's) instead of the departing one.

    The contract is ours now.
    """
    taken_over = await devices_decided(session, dossier_id, "take-over")
    orders = await session.scalars(
        select(OrderRow)
        .where(OrderRow.dossier_id == dossier_id, OrderRow.active.is_(True))
        .order_by(OrderRow.attempt)
    )
    latest = {order.device_id: order for order in orders}
    ours = []
    for device in [d for d in offer.devices if d.device_id in taken_over]:
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
