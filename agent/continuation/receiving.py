"""Receiving side after the decision: a person for every device the supplier does not take over.

An exception (other than a fixed or client-owned device) opens a task to provide the
alternative within the configured working days, and the client gets a letter with the reason,
the alternative and whom to call; once the alternative is delivered the departing gemeente is
told (``alternative-delivered``), so its supplier may collect the old device. A fixed device
(traplift, woningaanpassing) opens a task to contact the client about the need in the new home.
A bruikleen device taken over carries this gemeente's transfer price in the decision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.continuation.letters import ClientLetters
from agent.core.context import AgentContext
from agent.core.dossiers import RECEIVING_ROLES, Dossiers
from agent.core.hooks import Hooks
from agent.core.tasks import open_task
from agent.errors import DecisionNotChangeable, DossierUnknown, IllegalTransition
from agent.register.names import gemeente_name, person_name, the_device
from agent.storage.tables import DossierRow, OutboxRow, ProvisionRow, TaskRow
from agent.supplier.continued_use import ALTERNATIVE_REASONS
from agent.working_days import day_end, dutch_date_of
from protocol.messages import (
    AlternativeDelivered,
    Device,
    DeviceDecision,
    DeviceDecisionItem,
    DossierOffer,
    Representative,
)
from registry.server_kit.dutch import dutch_date

__all__ = ["ReceivingFollowUp"]


class ReceivingFollowUp:
    """Tasks, letters and transfer prices the receiving gemeente adds to its decision."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers, letters: ClientLetters) -> None:
        self._agent = agent
        self._dossiers = dossiers
        self._letters = letters

    def register(self, hooks: Hooks) -> None:
        """Run after the supplier side named its orders (registered after it)."""
        hooks.on_decision(self.on_decision)

    async def on_decision(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        decision: DeviceDecision,
        now: datetime,
    ) -> DeviceDecision:
        """Task a person for each exception and fixed device; name the bruikleen price."""
        devices = {device.device_id: device for device in offer.devices}
        alternatives = [
            (devices[i.device_id], i)
            for i in decision.decisions
            if i.outcome == "exception" and i.reason_code in ALTERNATIVE_REASONS
        ]
        fixed = [
            devices[i.device_id]
            for i in decision.decisions
            if i.outcome == "exception" and i.reason_code == "not-movable"
        ]
        tasked = {device.device_id for device, _ in alternatives} | {d.device_id for d in fixed}
        if alternatives:
            await self.provide_alternatives(session, dossier, offer, alternatives, now)
        if fixed:
            await self._fixed_needs(session, dossier, offer, fixed, now)
        price = self._agent.settings.continuation.transfer_price
        lent = {
            i.device_id
            for i in decision.decisions
            if i.outcome == "take-over" and devices[i.device_id].ownership == "bruikleen"
        }
        items = tuple(
            item.model_copy(
                update={
                    "follow_up": "gemeente-task" if item.device_id in tasked else item.follow_up,
                    "transfer_price": price if item.device_id in lent else None,
                }
            )
            for item in decision.decisions
        )
        await _record_follow_up(session, dossier.id, items)
        return decision.model_copy(update={"decisions": items})

    def _due(self, now: datetime, days: int) -> date:
        return self._agent.calendar.add_working_days(dutch_date_of(now), days)

    async def provide_alternatives(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        excepted: Sequence[tuple[Device, DeviceDecisionItem]],
        now: datetime,
    ) -> None:
        """Per excepted device a task to provide the alternative, and letters to the client."""
        due = self._due(now, self._agent.settings.continuation.alternative_working_days)
        name = person_name(offer.client.name)
        # One task per device: each names who acts for that device until the alternative is there.
        for device, item in excepted:
            await open_task(
                session,
                "provide-alternative",
                f"{name} verhuist op {dutch_date(offer.client.move_date)} naar onze gemeente. "
                f"Voor {the_device(device)} maakten wij een uitzondering ({item.reason_text}). "
                f"Wij beloofden: {item.alternative_offered} Zorg dat {name} het andere "
                f"hulpmiddel uiterlijk {dutch_date(due)} heeft. Tot die dag houdt de cliënt het "
                "oude hulpmiddel. Meld de levering in Meeverhuizen; dan hoort de vorige gemeente "
                "dat de leverancier het oude hulpmiddel mag ophalen.",
                now,
                dossier_id=dossier.id,
                device_id=device.device_id,
                due_at=day_end(due),
            )
        client, representative = offer.client, offer.client.representative
        for device, item in excepted:
            await self._letters.queue(
                session,
                dossier_id=dossier.id,
                kind="exception",
                name=client.name,
                address=client.new_address,
                contact=client.contact_preferences,
                subject=f"Over uw {the_device(device).split(' ', 1)[1]}",
                text=self._exception_letter(offer, device, item, due),
                now=now,
            )
            if representative is None:
                continue
            # The representative gets their own letter, at their own address when the offer
            # names one (as the departing gemeente's consent letters do), else at the client's.
            await self._letters.queue(
                session,
                dossier_id=dossier.id,
                kind="exception",
                name=representative.name,
                address=representative.address or client.new_address,
                contact=representative.contact,
                subject=f"Over {the_device(device)} van {name}",
                text=self._representative_letter(offer, representative, device, item, due),
                now=now,
            )

    def _exception_letter(
        self, offer: DossierOffer, device: Device, item: DeviceDecisionItem, due: date
    ) -> str:
        # The gemeente of the new address: a regional service writes in its name.
        code = offer.client.new_address.gemeentecode
        own = gemeente_name(code)
        named = the_device(device)
        return (
            f"Beste {person_name(offer.client.name)},\n\n"
            f"U verhuist op {dutch_date(offer.client.move_date)} naar de gemeente {own}. "
            f"Uw hulpmiddelen verhuizen mee. Voor {named} maken wij een uitzondering: "
            "wij nemen dit hulpmiddel niet over.\n\n"
            f"Waarom niet? {item.reason_text}\n\n"
            f"Wat krijgt u? {item.alternative_offered} U heeft dit uiterlijk op "
            f"{dutch_date(due)}.\n\n"
            f"Tot die dag houdt u {named}. De leverancier haalt het pas op als u het andere "
            "hulpmiddel heeft.\n\n"
            f"Heeft u vragen? {self._call(code)}\n\n"
            f"Met vriendelijke groet,\nGemeente {own}\n"
        )

    def _representative_letter(
        self,
        offer: DossierOffer,
        representative: Representative,
        device: Device,
        item: DeviceDecisionItem,
        due: date,
    ) -> str:
        code = offer.client.new_address.gemeentecode
        own = gemeente_name(code)
        client = person_name(offer.client.name)
        named = the_device(device)
        # The reason and the alternative are written to the client: quoted, not rephrased.
        return (
            f"Beste {person_name(representative.name)},\n\n"
            f"U krijgt deze brief omdat u {client} vertegenwoordigt. {client} verhuist op "
            f"{dutch_date(offer.client.move_date)} naar de gemeente {own}. De hulpmiddelen "
            f"van {client} verhuizen mee. Voor {named} maken wij een uitzondering: wij nemen "
            "dit hulpmiddel niet over.\n\n"
            f"Aan {client} schreven wij waarom niet en wat {client} krijgt:\n"
            f'"{item.reason_text} {item.alternative_offered}"\n\n'
            f"{client} heeft het andere hulpmiddel uiterlijk op {dutch_date(due)}. Tot die dag "
            f"houdt {client} {named}. De leverancier haalt het pas op als {client} het andere "
            "hulpmiddel heeft.\n\n"
            f"Heeft u vragen? {self._call(code)}\n\n"
            f"Met vriendelijke groet,\nGemeente {own}\n"
        )

    async def taken_over_after_all(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        device: Device,
        now: datetime,
        *,
        supplier: str | None,
        contact_before: date | None,
    ) -> None:
        """A letter to the client (and the representative) that an exception was taken back."""
        client, representative = offer.client, offer.client.representative
        code = client.new_address.gemeentecode
        named = the_device(device)
        next_step = (
            f"{supplier} neemt uiterlijk op {dutch_date(contact_before)} contact op over {named}."
            if supplier is not None and contact_before is not None
            else f"Een medewerker van de gemeente belt over wie {named} gaat onderhouden."
        )
        body = (
            f"Eerder schreven wij dat wij {named} niet overnemen. Dat besluit hebben wij "
            f"veranderd: wij nemen {named} toch over. Het hulpmiddel blijft gewoon in gebruik. "
            f"Het andere hulpmiddel dat wij beloofden, komt er dus niet.\n\n{next_step}\n\n"
            f"Heeft u vragen? {self._call(code)}\n\n"
            f"Met vriendelijke groet,\nGemeente {gemeente_name(code)}\n"
        )
        readers = [(client.name, client.new_address, client.contact_preferences, "")]
        if representative is not None:
            why = f"U krijgt deze brief omdat u {person_name(client.name)} vertegenwoordigt. "
            address = representative.address or client.new_address
            readers.append((representative.name, address, representative.contact, why))
        for name, address, contact, why in readers:
            await self._letters.queue(
                session,
                dossier_id=dossier.id,
                kind="exception-withdrawn",
                name=name,
                address=address,
                contact=contact,
                subject=f"Wij nemen {named} toch over",
                text=f"Beste {person_name(name)},\n\n{why}{body}",
                now=now,
            )

    def _call(self, gemeentecode: str) -> str:
        settings = self._agent.settings
        phone = settings.consent.phone_number or settings.handover.phone_numbers.get(gemeentecode)
        return (
            f"Bel ons op {phone}." if phone else f"Bel de gemeente {gemeente_name(gemeentecode)}."
        )

    async def _fixed_needs(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        fixed: Sequence[Device],
        now: datetime,
    ) -> None:
        due = self._due(now, self._agent.settings.continuation.fixed_device_contact_working_days)
        name = person_name(offer.client.name)
        phone = offer.client.contact_preferences.phone_number
        reach = f" Telefoon: {phone}." if phone else ""
        for device in fixed:  # one task per device: each names who acts for it
            await open_task(
                session,
                "fixed-device-need",
                f"{name} verhuist op {dutch_date(offer.client.move_date)} naar onze gemeente. In "
                f"de oude woning had {name} {the_device(device)}. Dat zit vast aan de woning en "
                f"verhuist niet mee. Neem uiterlijk {dutch_date(due)} contact op met {name} en "
                f"bespreek of in de nieuwe woning ook zo'n voorziening nodig is.{reach}",
                now,
                dossier_id=dossier.id,
                device_id=device.device_id,
                due_at=day_end(due),
            )

    # --- the case worker's action -------------------------------------------------------------

    async def alternative_delivered(
        self, dossier_id: str, device_id: str, *, delivered_on: date, done_by: str
    ) -> None:
        """The alternative for an excepted device is with the client: tell the departing side."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await self._dossiers.locked(session, dossier_id, "receiving")
            provision = await session.scalar(
                select(ProvisionRow).where(
                    ProvisionRow.dossier_id == dossier.id, ProvisionRow.device_id == device_id
                )
            )
            if provision is None or provision.reason_code not in ALTERNATIVE_REASONS:
                raise DossierUnknown(f"no alternative was promised for device {device_id}")
            if device_id in await _delivered_devices(session, dossier.id):
                raise IllegalTransition("this alternative was reported delivered before")
            if dossier.partner_oin is not None:
                await self._agent.outgoing.message(
                    session,
                    dossier.id,
                    AlternativeDelivered(device_id=device_id, delivered_on=delivered_on),
                    now,
                    to=dossier.partner_oin,
                    roles=RECEIVING_ROLES,
                )
            # The task of this device (one per device) is done: its alternative is there.
            await _close_alternative_task(session, dossier.id, device_id, done_by, now)

    async def withdraw_alternative(
        self, session: AsyncSession, dossier_id: str, device_id: str, done_by: str, now: datetime
    ) -> None:
        """The device is taken over after all: no alternative, its task is done.

        Refused once the alternative was delivered (the old device may be collected by then).
        """
        if device_id in await _delivered_devices(session, dossier_id):
            raise DecisionNotChangeable("the alternative for this device was delivered")
        await _close_alternative_task(session, dossier_id, device_id, done_by, now)


async def _close_alternative_task(
    session: AsyncSession, dossier_id: str, device_id: str, done_by: str, now: datetime
) -> None:
    task = await session.scalar(
        select(TaskRow).where(
            TaskRow.dossier_id == dossier_id,
            TaskRow.kind == "provide-alternative",
            TaskRow.device_id == device_id,
            TaskRow.state == "open",
        )
    )
    if task is not None:
        task.state, task.done_at, task.done_by = "done", now, done_by


async def _record_follow_up(
    session: AsyncSession, dossier_id: str, items: Sequence[DeviceDecisionItem]
) -> None:
    rows = await session.scalars(select(ProvisionRow).where(ProvisionRow.dossier_id == dossier_id))
    by_device = {item.device_id: item for item in items}
    for row in rows:
        item = by_device.get(row.device_id)
        if item is not None:
            row.follow_up = item.follow_up
            supplier = item.receiving_supplier
            row.supplier_name = supplier.name if supplier else None


async def _delivered_devices(session: AsyncSession, dossier_id: str) -> set[str]:
    sent = await session.scalars(
        select(OutboxRow.body).where(
            OutboxRow.dossier_id == dossier_id, OutboxRow.message_type == "alternative-delivered"
        )
    )
    return {json.loads(body)["body"]["deviceId"] for body in sent if body}
