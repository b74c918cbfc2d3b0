"""Bruikleen: the ownership of a lent device moves from the departing to the receiving gemeente.

When the decision (or a revised decision, for a device excepted before) takes a bruikleen
device over, the departing gemeente sends a ``device-transfer`` dated the move date. It is
priced at the residual value (the settlement calculation of ``protocol.settlement``) only when
the receiving gemeente's decision and the departing gemeente's own setting both say
``residual-value``; otherwise it is free. The
receiving gemeente records it and checks a price by computing it again; a difference becomes a
task for a person, while the device stays with the client ("eerst doen, daarna praten over
geld").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import DEPARTING_ROLES, Dossiers
from agent.core.hooks import DecisionUpdate, Hooks, StateChange
from agent.core.offer import device_reference
from agent.core.tasks import open_task
from agent.errors import MessageNotHandled
from agent.register.names import euros
from agent.register.store import load_client
from agent.storage.tables import DeviceTransferRow, DossierRow, ProvisionRow
from protocol.errors import UnknownSettlementMethod
from protocol.messages import Device, DeviceDecision, DeviceTransfer, Message, SettlementInputs
from protocol.settlement import economic_lifetime_months, residual_value_cents
from registry.server_kit.dutch import dutch_date

__all__ = ["DeviceTransfers"]

_METHOD: Final = "linear-depreciation-v1"


class DeviceTransfers:
    """Sends (departing) and records (receiving) the transfer of bruikleen devices."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    def register(self, hooks: Hooks) -> None:
        """Add device transfers to a gemeente's agent."""
        hooks.on_state(self._on_decided, "decided")
        hooks.on_decision_update(self._on_update)
        hooks.handle("device-transfer", self.on_transfer)

    async def _on_decided(self, session: AsyncSession, change: StateChange) -> None:
        if change.received_decision is not None:
            await self._send(session, change.dossier, change.received_decision, change.now)

    async def _on_update(self, session: AsyncSession, update: DecisionUpdate) -> None:
        """A revised decision takes a lent device over after all: its ownership moves now."""
        only = update.was("exception")
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
        if dossier.partner_oin is None:
            return
        client = await load_client(session, dossier.client_bsn or "")
        devices = {d.device_id: d for d in client.devices} if client else {}
        for item in decision.decisions:
            device = devices.get(item.device_id)
            if item.outcome != "take-over" or device is None or device.ownership != "bruikleen":
                continue
            if only is not None and item.device_id not in only:
                continue
            body = self._transfer(device, decision, priced=item.transfer_price == "residual-value")
            session.add(_row(body, dossier.id, "sent", now))
            await self._agent.outgoing.message(
                session, dossier.id, body, now, to=dossier.partner_oin, roles=DEPARTING_ROLES
            )

    def _transfer(
        self, device: Device, decision: DeviceDecision, *, priced: bool
    ) -> DeviceTransfer:
        document: dict[str, object] = {
            "transferId": uuid.uuid4(),
            "device": device_reference(device, purchase=True),
            "transferDate": decision.effective_date,
            "price": "free",
            "amountCents": 0,
        }
        inputs = self._inputs(device, decision) if priced else None
        own = self._agent.settings.continuation.transfer_price
        if inputs is not None and own == "residual-value":
            document |= {
                "price": "residual-value",
                "amountCents": residual_value_cents(inputs, method=_METHOD),
                "method": _METHOD,
                "inputs": inputs,
            }
        return DeviceTransfer.model_validate(document)

    def _inputs(self, device: Device, decision: DeviceDecision) -> SettlementInputs | None:
        if device.purchase_price_cents is None or device.purchase_date is None:
            return None
        if device.purchase_date > decision.effective_date:
            return None
        takeover = self._agent.settings.takeover
        return SettlementInputs.model_validate(
            {
                "purchasePriceCents": device.purchase_price_cents,
                "purchaseDate": device.purchase_date,
                "transferDate": decision.effective_date,
                "economicLifetimeMonths": economic_lifetime_months(
                    device.iso_code, takeover.economic_lifetime_months
                ),
                "floorBasisPoints": takeover.floor_basis_points,
                "maintenanceState": takeover.maintenance_state,
            }
        )

    async def on_transfer(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Receiving side: the device is ours from the transfer date; a price is checked."""
        transfer = message.body
        assert isinstance(transfer, DeviceTransfer)
        dossier = await self._dossiers.shared_with_sender(session, message)
        provision = await session.scalar(
            select(ProvisionRow).where(
                ProvisionRow.dossier_id == dossier.id,
                ProvisionRow.device_id == transfer.device.device_id,
            )
        )
        if provision is None or provision.outcome != "take-over":
            raise MessageNotHandled("this device was not taken over in this dossier")
        row = _row(transfer, dossier.id, "received", now)
        session.add(row)
        if transfer.price == "free":
            return
        expected = self._expected(transfer)
        if expected == transfer.amount_cents:
            return
        row.state = "price-differs"
        own = "" if expected is None else f" Wij komen zelf op {euros(expected)}."
        await open_task(
            session,
            "transfer-price",
            f"De vorige gemeente vraagt {euros(transfer.amount_cents)} voor "
            f"{_reference_name(transfer)}, dat in bruikleen met de cliënt meeverhuist "
            f"(overdracht op {dutch_date(transfer.transfer_date)}).{own} Het hulpmiddel blijft "
            "bij de cliënt. Spreek de prijs af met de vorige gemeente.",
            now,
            dossier_id=dossier.id,
        )

    def _expected(self, transfer: DeviceTransfer) -> int | None:
        if self._agent.settings.continuation.transfer_price != "residual-value":
            return 0  # this gemeente takes lent devices over for free
        if transfer.inputs is None or transfer.method is None:
            return None
        try:
            return residual_value_cents(transfer.inputs, method=transfer.method)
        except UnknownSettlementMethod:
            return None


def _reference_name(transfer: DeviceTransfer) -> str:
    serial = transfer.device.serial_number
    kind = f"het hulpmiddel met ISO-code {transfer.device.iso_code}"
    return f"{kind} (serienummer {serial})" if serial else kind


def _row(
    transfer: DeviceTransfer, dossier_id: str, direction: str, now: datetime
) -> DeviceTransferRow:
    return DeviceTransferRow(
        transfer_id=str(transfer.transfer_id),
        dossier_id=dossier_id,
        direction=direction,
        device_id=transfer.device.device_id,
        iso_code=transfer.device.iso_code,
        transfer_date=transfer.transfer_date,
        price=transfer.price,
        amount_cents=transfer.amount_cents,
        state=direction,
        created_at=now,
    )
