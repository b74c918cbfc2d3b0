"""Exceptions: the departing supplier leaves the device with the client until the alternative.

Departing gemeente: for each device the receiving gemeente made an exception for (other than a
fixed or client-owned one), its supplier gets a ``continued-use`` notice: leave the device in
use; when the receiving gemeente reports the alternative delivered (``alternative-delivered``),
a second notice with ``alternativeDeliveredOn`` says it may now be collected. A revised
decision that excepts a device taken over before sends the same notice, which ends its
departure. A device the gemeente lends without a supplier becomes a task for the gemeente
itself. Supplier: the notice is kept with the departing devices (state ``in-use``, no takeover
price; a device that was leaving stops leaving); the second one makes it ``collect`` with a task
for the planner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.deadlines import cancel_deadlines
from agent.core.dossiers import Dossiers
from agent.core.hooks import DecisionUpdate, Hooks, StateChange
from agent.core.offer import device_reference
from agent.core.tasks import open_task
from agent.register.names import person_name, the_device
from agent.register.store import load_client
from agent.storage.tables import (
    DepartingDeviceRow,
    DossierRow,
    OutboxRow,
    SettlementRow,
)
from agent.supplier.senders import check_gemeente
from agent.supplier.settlement import SETTLEMENT_DUE
from agent.working_days import dutch_date_of
from protocol.messages import (
    AlternativeDelivered,
    ContinuedUse,
    Device,
    DeviceDecision,
    DeviceDecisionItem,
    Message,
)
from registry.server_kit.dutch import dutch_date

__all__ = ["ALTERNATIVE_REASONS", "ContinuedUseDesk", "ContinuedUseNotices"]

# Exceptions for which the receiving gemeente provides an alternative (the device stays until).
ALTERNATIVE_REASONS: Final = frozenset(
    {"not-in-assortment", "unsafe-or-worn", "needs-changed", "other"}
)
_ROLES: Final = ("departing-gemeente", "departing-supplier")


class ContinuedUseNotices:
    """Departing gemeente: tells its supplier to leave excepted devices in use, then to collect."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    def register(self, hooks: Hooks) -> None:
        """Add continued-use notices to a gemeente's agent."""
        hooks.on_state(self._on_decided, "decided")
        hooks.on_decision_update(self._on_update)
        hooks.handle("alternative-delivered", self.on_alternative_delivered)

    async def _on_decided(self, session: AsyncSession, change: StateChange) -> None:
        if change.received_decision is not None:
            await self._send(session, change.dossier, change.received_decision, change.now)

    async def _on_update(self, session: AsyncSession, update: DecisionUpdate) -> None:
        """A revised decision excepts a device taken over before: it stays with the client."""
        only = update.was("take-over")
        await self._send(session, update.dossier, update.decision, update.now, only=only)

    async def _send(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        decision: DeviceDecision,
        now: datetime,
        *,
        only: frozenset[str] | None = None,
    ) -> None:
        client = await load_client(session, dossier.client_bsn or "")
        devices = {d.device_id: d for d in client.devices} if client else {}
        by_supplier: dict[str, list[tuple[Device, DeviceDecisionItem]]] = {}
        for item in decision.decisions:
            device = devices.get(item.device_id)
            if item.outcome != "exception" or item.reason_code not in ALTERNATIVE_REASONS:
                continue
            if only is not None and item.device_id not in only:
                continue
            if device is not None and device.supplier is not None:
                by_supplier.setdefault(device.supplier.oin, []).append((device, item))
        for oin, members in sorted(by_supplier.items()):
            await self._agent.outgoing.message(
                session,
                dossier.id,
                _notice(members, dossier.partner_gemeentecode or ""),
                now,
                to=oin,
                roles=_ROLES,
            )

    async def on_alternative_delivered(
        self, session: AsyncSession, message: Message, now: datetime
    ) -> None:
        """The receiving gemeente delivered the alternative: the old device may be collected."""
        delivered = message.body
        assert isinstance(delivered, AlternativeDelivered)
        dossier = await self._dossiers.shared_with_sender(session, message)
        told = await _continued_use_sent(session, dossier.id, delivered.device_id)
        if told is not None:
            oin, document = told
            body = ContinuedUse.model_validate(
                {
                    **document,
                    "devices": [
                        d for d in document["devices"] if d["deviceId"] == delivered.device_id
                    ],
                    "alternativeDeliveredOn": delivered.delivered_on,
                }
            )
            await self._agent.outgoing.message(session, dossier.id, body, now, to=oin, roles=_ROLES)
            return
        client = await load_client(session, dossier.client_bsn or "")
        device = (
            next((d for d in client.devices if d.device_id == delivered.device_id), None)
            if client
            else None
        )
        what = the_device(device) if device else f"hulpmiddel {delivered.device_id}"
        who = person_name(client.name) if client else "de cliënt"
        await open_task(
            session,
            "collect-device",
            f"De nieuwe gemeente heeft {who} op {dutch_date(delivered.delivered_on)} een ander "
            f"hulpmiddel gegeven. Haal {what} op bij {who}; het is van ons.",
            now,
            dossier_id=dossier.id,
        )


def _notice(members: Sequence[tuple[Device, DeviceDecisionItem]], receiving: str) -> ContinuedUse:
    _, first = members[0]
    return ContinuedUse.model_validate(
        {
            "devices": [device_reference(device, purchase=False) for device, _ in members],
            "receivingGemeentecode": receiving,
            "reasonText": first.reason_text,
            "alternative": first.alternative_offered,
        }
    )


async def _continued_use_sent(
    session: AsyncSession, dossier_id: str, device_id: str
) -> tuple[str, dict[str, Any]] | None:
    sent = await session.execute(
        select(OutboxRow.destination_oin, OutboxRow.body).where(
            OutboxRow.dossier_id == dossier_id, OutboxRow.message_type == "continued-use"
        )
    )
    for oin, raw in sent:
        if not raw or oin is None:
            continue
        body = json.loads(raw)["body"]
        if any(d["deviceId"] == device_id for d in body["devices"]):
            return oin, body
    return None


class ContinuedUseDesk:
    """Supplier: keeps excepted devices in use, and plans their collection once replaced."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    def register(self, hooks: Hooks) -> None:
        """Add continued-use notices to a supplier's agent."""
        hooks.handle("continued-use", self.on_notice)

    async def on_notice(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Keep the devices in use; with ``alternativeDeliveredOn``, plan their collection."""
        notice = message.body
        assert isinstance(notice, ContinuedUse)
        dossier_id = str(message.dossier_id)
        # Only the departing gemeente that told us of these devices speaks of them.
        await check_gemeente(session, dossier_id, message.sender.oin, orders=False)
        known = await session.scalars(
            select(DepartingDeviceRow).where(
                DepartingDeviceRow.dossier_id == dossier_id,
                DepartingDeviceRow.device_id.in_([d.device_id for d in notice.devices]),
            )
        )
        rows = {row.device_id: row for row in known}
        for device in notice.devices:
            row = rows.get(device.device_id)
            if row is None:
                row = DepartingDeviceRow(
                    dossier_id=dossier_id,
                    gemeente_oin=message.sender.oin,
                    device_id=device.device_id,
                    iso_code=device.iso_code,
                    serial_number=device.serial_number,
                    contract_reference=device.contract_reference,
                    purchase_date=None,
                    purchase_price_cents=None,
                    effective_date=notice.alternative_delivered_on or dutch_date_of(now),
                    receiving_gemeentecode=notice.receiving_gemeentecode,
                    receiving_supplier_oin=None,
                    receiving_supplier_name=None,
                    received_at=now,
                    state="in-use",
                )
                session.add(row)
            elif row.state == "leaving" and notice.alternative_delivered_on is None:
                # The receiving gemeente changed its decision: the device stays with the
                # client after all, so it leaves no contract and has no takeover price yet.
                await _keep_in_use(session, row, now)
            if notice.alternative_delivered_on is None:
                continue
            row.state, row.effective_date = "collect", notice.alternative_delivered_on
            contract = f", contract {row.contract_reference}" if row.contract_reference else ""
            serial = f", serienummer {row.serial_number}" if row.serial_number else ""
            await open_task(
                session,
                "collect-device",
                f"De cliënt heeft op {dutch_date(notice.alternative_delivered_on)} een ander "
                f"hulpmiddel gekregen van de nieuwe gemeente. Haal het hulpmiddel op "
                f"(ISO {row.iso_code}{serial}{contract}) en beëindig de huur.",
                now,
            )


async def _keep_in_use(session: AsyncSession, row: DepartingDeviceRow, now: datetime) -> None:
    row.state = "in-use"
    await cancel_deadlines(
        session, subject=f"{row.dossier_id}:{row.device_id}", kinds=(SETTLEMENT_DUE,)
    )
    offered = await session.scalars(
        select(SettlementRow).where(
            SettlementRow.dossier_id == row.dossier_id,
            SettlementRow.device_id == row.device_id,
            SettlementRow.direction == "offered",
        )
    )
    for settlement in offered:
        settlement.state, settlement.updated_at = "superseded", now
