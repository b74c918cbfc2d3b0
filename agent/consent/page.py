"""What the client's consent and status pages show, read from the dossier and the register."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import own_gemeentecode
from agent.core.progress import received_progress
from agent.register.models import RegisterClient
from agent.register.names import device_name, gemeente_name, person_name
from agent.storage.tables import (
    ConsentRow,
    DossierRow,
    InboundMessageRow,
    ProvisionRow,
    TransitionRow,
)
from agent.working_days import dutch_date_of
from protocol.messages import (
    Device,
    DeviceDecision,
    DeviceProgress,
    SupplierReference,
    parse_message,
)

__all__ = [
    "ClientPage",
    "DeviceLine",
    "answer_before",
    "client_page",
    "latest_consent",
]

# Normenkader 2020: the supplier contacts the client within 5 working days after the order.
_SUPPLIER_CONTACT_WORKING_DAYS = 5


@dataclass(frozen=True)
class DeviceLine:
    """One device as the client sees it."""

    device_id: str
    name: str
    movable: bool
    outcome: str | None = None
    reason_text: str | None = None
    alternative: str | None = None
    consented: bool = False
    rented: bool = False
    # The receiving gemeente's supplier that takes the device over, with its phone number.
    supplier_name: str | None = None
    supplier_phone: str | None = None
    # Who acts next at the receiving gemeente, as its decision says (supplier-order,
    # gemeente-task), and the latest progress it reported for the device.
    follow_up: str | None = None
    progress: DeviceProgress | None = None


@dataclass(frozen=True)
class ClientPage:
    """Everything the consent and status pages show (no BSN)."""

    dossier_id: str
    state: str
    client_name: str
    departing_gemeente: str
    receiving_gemeente: str
    move_date: date | None
    answer_before: date
    devices: tuple[DeviceLine, ...]
    has_indicatie: bool
    has_functional_information: bool
    consented_kinds: tuple[str, ...]
    consent_by: str | None
    withdrawn: bool
    supplier_contact_before: date | None
    timeline: tuple[tuple[datetime, str], ...]
    gemeente_phone: str | None
    clientondersteuning: str
    receiving_phone: str | None = None
    urgent: bool = False
    # Under 16: a parent or guardian answers, the client cannot.
    representative_answers: bool = False


async def latest_consent(session: AsyncSession, dossier_id: str) -> ConsentRow | None:
    """The consent or refusal recorded last for a dossier."""
    result: ConsentRow | None = await session.scalar(
        select(ConsentRow)
        .where(ConsentRow.dossier_id == dossier_id)
        .order_by(ConsentRow.recorded_at.desc())
        .limit(1)
    )
    return result


async def client_page(
    session: AsyncSession, dossier: DossierRow, client: RegisterClient, agent: AgentContext
) -> ClientPage:
    """The page of a departing dossier, as this session reads it."""
    settings, calendar = agent.settings, agent.calendar
    consent = await latest_consent(session, dossier.id)
    decisions = {
        row.device_id: row
        for row in await session.scalars(
            select(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id)
        )
    }
    transitions = list(
        await session.scalars(
            select(TransitionRow)
            .where(TransitionRow.dossier_id == dossier.id)
            .order_by(TransitionRow.id)
        )
    )
    consented = set(consent.device_ids) if consent and consent.outcome == "given" else set()
    if dossier.state == "consent-withdrawn":
        # Nothing moves any more: no decision or supplier is shown as if it still held.
        decisions, consented = {}, set()
    decided_at = next((t.at for t in transitions if t.to_state == "decided"), None)
    phones = settings.handover.phone_numbers
    own = own_gemeentecode(dossier, settings.gemeentecode)
    suppliers = {} if not decisions else await _receiving_suppliers(session, dossier.id)
    progress = {} if not decisions else await received_progress(session, dossier.id)
    contact_days = 1 if dossier.urgent else _SUPPLIER_CONTACT_WORKING_DAYS
    return ClientPage(
        dossier_id=dossier.id,
        state=dossier.state,
        client_name=person_name(client.name),
        departing_gemeente=gemeente_name(own),
        receiving_gemeente=gemeente_name(dossier.partner_gemeentecode),
        move_date=dossier.move_date,
        answer_before=answer_before(dossier.created_at, agent),
        devices=tuple(
            _device_line(
                device,
                decisions.get(device.device_id),
                consented,
                suppliers.get(device.device_id),
                phones,
                progress.get(device.device_id),
            )
            for device in client.devices
        ),
        has_indicatie=client.indicatie is not None,
        has_functional_information=client.functional_information is not None,
        consented_kinds=tuple(consent.data_kinds) if consent else (),
        consent_by=consent.representative_name if consent else None,
        withdrawn=consent is not None and consent.withdrawn_at is not None,
        supplier_contact_before=(
            calendar.add_working_days(decided_at.date(), contact_days)
            if decided_at is not None
            else None
        ),
        # A consulent's note keeps the state: the client's timeline shows state changes only.
        timeline=tuple((t.at, t.to_state) for t in transitions if t.from_state != t.to_state),
        gemeente_phone=settings.consent.phone_number or phones.get(own),
        clientondersteuning=settings.consent.clientondersteuning,
        receiving_phone=phones.get(dossier.partner_gemeentecode or ""),
        urgent=dossier.urgent,
        representative_answers=client.consents_through_representative(
            dutch_date_of(agent.clock.now())
        ),
    )


async def _receiving_suppliers(
    session: AsyncSession, dossier_id: str
) -> dict[str, SupplierReference]:
    """The receiving supplier per device, as the latest device decision names them."""
    bodies = await session.scalars(
        select(InboundMessageRow.body)
        .where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "device-decision",
        )
        .order_by(InboundMessageRow.received_at)
    )
    decisions = [
        message.body
        for body in bodies
        if body
        and isinstance((message := parse_message(json.loads(body), text=body)).body, DeviceDecision)
    ]
    # The latest revision wins, also over an older one that arrived late (protocol section 5).
    oldest = datetime.min.replace(tzinfo=UTC)
    decisions.sort(key=lambda decision: decision.revised_at or oldest)
    named: dict[str, SupplierReference] = {}
    for decision in decisions:
        for item in decision.decisions:
            if item.receiving_supplier is not None:
                named[item.device_id] = item.receiving_supplier
    return named


def answer_before(started: datetime, agent: AgentContext) -> date:
    """The last day of the client's answer: the request expires after it."""
    days = agent.settings.consent.expire_after_working_days
    return agent.calendar.add_working_days(started.date(), days)


def _device_line(
    device: Device,
    decision: ProvisionRow | None,
    consented: set[str],
    supplier: SupplierReference | None,
    phones: Mapping[str, str],
    progress: DeviceProgress | None,
) -> DeviceLine:
    # The latest progress names the supplier that has the order now, and its phone number;
    # after every supplier refused, none has.
    phone = progress.supplier_phone if progress is not None else None
    if progress is not None:
        supplier = None if progress.state == "refused" else progress.supplier
    return DeviceLine(
        device_id=device.device_id,
        name=device_name(device.iso_code, device.description),
        rented=device.ownership == "huur",
        supplier_name=supplier.name if supplier else None,
        supplier_phone=phone or (phones.get(supplier.oin) if supplier else None),
        movable=device.movable,
        outcome=decision.outcome if decision is not None else None,
        reason_text=decision.reason_text if decision is not None else None,
        alternative=decision.alternative if decision is not None else None,
        consented=device.device_id in consented,
        follow_up=decision.follow_up if decision is not None else None,
        progress=progress,
    )
