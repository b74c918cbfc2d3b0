"""What the consulent sees of a dossier: client, devices, consent, timeline, messages, tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.consent.page import latest_consent
from agent.core.progress import received_progress
from agent.core.receiving import received_offer
from agent.core.states import OPEN_STATES, UNSERVED_TASKS, decision_may_change
from agent.core.tasks import Task, devices_with_open_tasks
from agent.core.views import TransitionView
from agent.register.names import gemeente_name, person_name, the_device
from agent.register.store import load_client
from agent.storage.tables import (
    ConsentLinkRow,
    ConsentRow,
    DossierRow,
    InboundMessageRow,
    OrderRow,
    OutboxRow,
    ProvisionRow,
    TaskRow,
    TransitionRow,
)
from agent.supplier.continued_use import ALTERNATIVE_REASONS
from agent.supplier.orders import DONE
from agent.supplier.progress import progress_note
from protocol.messages import Address, Device, DeviceProgress, Representative

__all__ = [
    "CaseFile",
    "Client",
    "ConsentLine",
    "DeviceLine",
    "MessageLine",
    "client_of",
    "read_case_file",
]

_RELATIONS = {
    "authorised-person": "gemachtigde",
    "mentor": "mentor",
    "guardian": "curator",
    "legal-representative": "wettelijk vertegenwoordiger",
}


@dataclass(frozen=True)
class Client:
    """The client of a dossier as this side knows it (never shown with the BSN)."""

    name: str
    address: Address | None
    representative: str | None
    devices: tuple[Device, ...]


@dataclass(frozen=True)
class DeviceLine:
    """One device with the client's consent and the receiving gemeente's decision."""

    device_id: str
    description: str
    iso_code: str
    ownership: str
    movable: bool
    consented: bool
    outcome: str | None
    reason_text: str | None
    alternative: str | None
    start_date: date | None
    end_date: date | None
    # Departing side: the latest progress the receiving gemeente reported, in a sentence.
    progress: str | None = None
    # Receiving side: a consulent may still change the decision (not taken over, dossier runs).
    changeable: bool = False


@dataclass(frozen=True)
class ConsentLine:
    """The consent recorded last: what, how and by whom."""

    outcome: str
    data_kinds: tuple[str, ...]
    channel: str
    granted_by: str
    representative_name: str | None
    recorded_by: str | None
    granted_at: datetime
    withdrawn: bool


@dataclass(frozen=True)
class MessageLine:
    """A protocol message sent or received, with its delivery state."""

    direction: str
    message_type: str
    partner_oin: str | None
    at: datetime
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class CaseFile:
    """One dossier as the consulent's page shows it."""

    dossier_id: str
    side: str
    state: str
    urgent: bool
    client: Client
    move_date: date | None
    new_address: Address | None
    partner_gemeente: str
    devices: tuple[DeviceLine, ...]
    consent: ConsentLine | None
    active_links: int
    timeline: tuple[TransitionView, ...]
    messages: tuple[MessageLine, ...]
    tasks: tuple[Task, ...]

    @property
    def open(self) -> bool:
        """Whether the dossier can still change: be cancelled or marked urgent."""
        return self.state in OPEN_STATES


def _representative(representative: Representative | None) -> str | None:
    if representative is None:
        return None
    relation = _RELATIONS.get(representative.kind, representative.kind)
    return f"{person_name(representative.name)} ({relation})"


async def client_of(session: AsyncSession, dossier: DossierRow) -> Client:
    """The client from the register (departing side) or from the offer (receiving side)."""
    if dossier.side == "departing":
        registered = await load_client(session, dossier.client_bsn or "")
        if registered is not None:
            return Client(
                person_name(registered.name),
                registered.address,
                _representative(registered.representative),
                registered.devices,
            )
    else:
        offer = await received_offer(session, dossier.id)
        if offer is not None:
            return Client(
                person_name(offer.client.name),
                offer.client.new_address,
                _representative(offer.client.representative),
                offer.devices,
            )
    # The data was erased (withdrawal) or never arrived: the dossier stays, the person does not.
    return Client("(gegevens gewist)", None, None, ())


async def read_case_file(session: AsyncSession, dossier: DossierRow, now: datetime) -> CaseFile:
    """Everything of one dossier, as this session reads it."""
    client = await client_of(session, dossier)
    consent = await latest_consent(session, dossier.id)
    consented = set(consent.device_ids) if consent and consent.outcome == "given" else set()
    decisions = {
        row.device_id: row
        for row in await session.scalars(
            select(ProvisionRow).where(ProvisionRow.dossier_id == dossier.id)
        )
    }
    progress = await received_progress(session, dossier.id)
    changeable = await _changeable(session, dossier, decisions)
    devices = tuple(
        _device_line(
            device,
            decisions.get(device.device_id),
            device.device_id in consented,
            progress.get(device.device_id),
            changeable=device.device_id in changeable,
        )
        for device in client.devices
    )
    new_address = (
        Address.model_validate(dossier.new_address) if dossier.new_address is not None else None
    )
    return CaseFile(
        dossier_id=dossier.id,
        side=dossier.side,
        state=dossier.state,
        urgent=dossier.urgent,
        client=client,
        move_date=dossier.move_date,
        new_address=new_address if dossier.side == "departing" else client.address,
        partner_gemeente=gemeente_name(dossier.partner_gemeentecode),
        devices=devices,
        consent=_consent_line(consent) if consent is not None else None,
        active_links=await _active_links(session, dossier.id, now),
        timeline=tuple(
            TransitionView.model_validate(t)
            for t in await session.scalars(
                select(TransitionRow)
                .where(TransitionRow.dossier_id == dossier.id)
                .order_by(TransitionRow.id)
            )
        ),
        messages=await _messages(session, dossier.id),
        tasks=tuple(
            Task.model_validate(row)
            for row in await session.scalars(
                select(TaskRow).where(TaskRow.dossier_id == dossier.id).order_by(TaskRow.created_at)
            )
        ),
    )


async def _changeable(
    session: AsyncSession, dossier: DossierRow, decisions: dict[str, ProvisionRow]
) -> set[str]:
    """The devices whose decision a consulent may change (``agent.continuation.override``)."""
    if dossier.side != "receiving":
        return set()
    taken_over = set(
        await session.scalars(
            select(OrderRow.device_id).where(
                OrderRow.dossier_id == dossier.id, OrderRow.status.in_(tuple(DONE))
            )
        )
    )
    unserved = await devices_with_open_tasks(session, dossier.id, UNSERVED_TASKS)
    return {
        device_id
        for device_id, row in decisions.items()
        if device_id not in taken_over
        and decision_may_change(dossier.state, row.outcome, unserved=device_id in unserved)
        and (row.outcome == "take-over" or row.reason_code in ALTERNATIVE_REASONS)
    }


def _device_line(
    device: Device,
    decision: ProvisionRow | None,
    consented: bool,
    progress: DeviceProgress | None,
    *,
    changeable: bool = False,
) -> DeviceLine:
    return DeviceLine(
        device_id=device.device_id,
        description=device.description,
        iso_code=device.iso_code,
        ownership=device.ownership,
        movable=device.movable,
        consented=consented,
        outcome=decision.outcome if decision else None,
        reason_text=decision.reason_text if decision else None,
        alternative=decision.alternative if decision else None,
        start_date=decision.start_date if decision else None,
        end_date=decision.end_date if decision else None,
        progress=progress_note(progress, the_device(device)) if progress else None,
        changeable=changeable,
    )


def _consent_line(consent: ConsentRow) -> ConsentLine:
    return ConsentLine(
        outcome=consent.outcome,
        data_kinds=tuple(consent.data_kinds),
        channel=consent.channel,
        granted_by=consent.granted_by,
        representative_name=consent.representative_name,
        recorded_by=consent.recorded_by,
        granted_at=consent.granted_at,
        withdrawn=consent.withdrawn_at is not None,
    )


async def _active_links(session: AsyncSession, dossier_id: str, now: datetime) -> int:
    count = await session.scalar(
        select(func.count()).where(
            ConsentLinkRow.dossier_id == dossier_id,
            ConsentLinkRow.revoked_at.is_(None),
            ConsentLinkRow.expires_at > now,
        )
    )
    return count or 0


async def _messages(session: AsyncSession, dossier_id: str) -> tuple[MessageLine, ...]:
    sent = [
        MessageLine(
            "sent",
            row.message_type,
            row.destination_oin,
            row.created_at,
            row.state,
            row.attempts,
            row.last_error,
        )
        for row in await session.scalars(
            select(OutboxRow)
            .where(OutboxRow.dossier_id == dossier_id, OutboxRow.kind == "message")
            .order_by(OutboxRow.created_at)
        )
    ]
    received = [
        MessageLine(
            "received", row.message_type, row.sender_oin, row.received_at, "received", 1, None
        )
        for row in await session.scalars(
            select(InboundMessageRow).where(InboundMessageRow.dossier_id == dossier_id)
        )
    ]
    return tuple(sorted(sent + received, key=lambda line: line.at))
