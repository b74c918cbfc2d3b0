"""The departing gemeente's departure notices: its own supplier learns a device leaves the contract.

After the receiving gemeente's decision, the supplier of each device taken over gets a notice
naming the receiving supplier from the decision (``receivingSupplier``), for the settlement
between them. The dossier completes once every notice is receipted. A later decision that names
another receiving supplier (a refusal moved an order on), or that takes over a device excepted
before (a revised decision), is passed on in a new notice; the supplier keeps the latest notice
per device, which ends a continued use. A supplier
that is not connected, or a registry that cannot say, becomes a task for a person.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers, lock_dossier
from agent.core.hooks import DecisionUpdate, Hooks, StateChange
from agent.core.offer import device_reference
from agent.core.tasks import open_task
from agent.delivery.outbox import DeliveredMessage
from agent.register.store import load_client
from agent.storage.tables import ClientRow, DeviceRow, DossierRow, OutboxRow
from protocol.messages import DepartureNotice, Device, DeviceDecision, Message, SupplierReference
from registry.errors import (
    MessageTypeNotSupported,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    RegistryError,
)

__all__ = ["DepartureNotices"]

_ROLES = ("departing-gemeente", "departing-supplier")
_Member = tuple[Device, SupplierReference | None]


class DepartureNotices:
    """Sends and follows the departing gemeente's departure notices."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers
        # Per decision message: which current suppliers take departure notices (registry).
        self._connected: dict[str, dict[str, bool]] = {}

    def register(self, hooks: Hooks) -> None:
        """Add departure notices to the core of a gemeente's agent."""
        hooks.prepare(self.prepare)
        hooks.on_state(self._on_decided, "decided")
        hooks.on_decision_update(self._on_update)
        hooks.on_delivered(self._on_delivered)

    async def prepare(self, message: Message) -> None:
        """Before a decision's transaction: ask the registry which suppliers take notices."""
        if not isinstance(message.body, DeviceDecision):
            return
        async with self._agent.database.reading() as session:
            found = await session.scalars(
                select(DeviceRow.details)
                .join(ClientRow, ClientRow.id == DeviceRow.client_id)
                .join(DossierRow, DossierRow.client_bsn == ClientRow.bsn)
                .where(DossierRow.id == str(message.dossier_id))
            )
            # The register stores each device wire-shaped (protocol Device, validated on import).
            oins = {details["supplier"]["oin"] for details in found if details.get("supplier")}
        self._connected[str(message.message_id)] = {
            oin: await self._accepts_notices(oin) for oin in sorted(oins)
        }

    async def _accepts_notices(self, oin: str) -> bool:
        try:
            entry = await self._agent.directory.participant(oin, message_type="departure-notice")
        except (ParticipantUnknown, ParticipantNotEnrolled, MessageTypeNotSupported):
            return False
        except RegistryError:
            # Registry down beyond its staleness bound: a person tells the supplier (task).
            return False
        return entry.endpoint is not None

    async def _on_decided(self, session: AsyncSession, change: StateChange) -> None:
        dossier, message = change.dossier, change.message
        if dossier.side != "departing" or message is None:
            return
        if await self.send(session, dossier, message, change.now):
            cause = "departure notices queued"
            await self._dossiers.transition(session, dossier, "orders-placed", cause, change.now)

    async def _on_update(self, session: AsyncSession, update: DecisionUpdate) -> None:
        named = await _named_in_notices(session, update.dossier.id)
        changed = frozenset(
            item.device_id
            for item in update.decision.decisions
            if item.outcome == "take-over"
            and (
                # Taken over after all: the notice ends the device's continued use.
                update.before.get(item.device_id) != "take-over"
                or (
                    item.receiving_supplier is not None
                    and named.get(item.device_id) != item.receiving_supplier.oin
                )
            )
        )
        if changed:
            await self.send(session, update.dossier, update.message, update.now, only=changed)

    async def send(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        message: Message,
        now: datetime,
        *,
        only: frozenset[str] | None = None,
    ) -> bool:
        """Tell the current supplier of each device taken over; True when a notice was queued.

        ``only``: just these devices (an update of the receiving supplier).
        """
        decision = message.body
        if not isinstance(decision, DeviceDecision) or dossier.client_bsn is None:
            return False
        connected = self._connected.pop(str(message.message_id), {})
        client = await load_client(session, dossier.client_bsn)
        devices = {d.device_id: d for d in client.devices} if client else {}
        groups: dict[tuple[str, str | None], list[_Member]] = {}
        for item in decision.decisions:
            device = devices.get(item.device_id)
            if item.outcome != "take-over" or device is None or device.supplier is None:
                continue
            if only is not None and item.device_id not in only:
                continue
            receiving = item.receiving_supplier
            key = (device.supplier.oin, receiving.oin if receiving else None)
            groups.setdefault(key, []).append((device, receiving))
        queued = False
        for (oin, _), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
            if not connected.get(oin, False):
                await _supplier_not_connected(session, dossier, members, now)
                continue
            await self._agent.outgoing.message(
                session,
                dossier.id,
                _departure_notice(members, decision, dossier),
                now,
                to=oin,
                roles=_ROLES,
            )
            queued = True
        return queued

    async def _on_delivered(
        self, session: AsyncSession, row: DeliveredMessage, now: datetime
    ) -> None:
        """Complete the dossier once every departure notice is receipted."""
        if row.kind != "message" or row.message_type != "departure-notice":
            return
        dossier = await lock_dossier(session, row.dossier_id)
        if dossier is None or dossier.state != "orders-placed" or dossier.side != "departing":
            return
        undelivered = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(
                OutboxRow.dossier_id == dossier.id,
                OutboxRow.message_type == "departure-notice",
                OutboxRow.state != "delivered",
            )
        )
        if not undelivered:
            await self._dossiers.transition(
                session, dossier, "completed", "departure notices receipted", now
            )


async def _named_in_notices(session: AsyncSession, dossier_id: str) -> dict[str, str | None]:
    """Per device, the receiving supplier named in the latest departure notice sent."""
    notices = await session.scalars(
        select(OutboxRow.body)
        .where(OutboxRow.dossier_id == dossier_id, OutboxRow.message_type == "departure-notice")
        .order_by(OutboxRow.sequence)
    )
    named: dict[str, str | None] = {}
    for raw in notices:
        if not raw:
            continue  # erased after a withdrawal
        body = json.loads(raw)["body"]
        oin = (body.get("receivingSupplier") or {}).get("oin")
        named.update({device["deviceId"]: oin for device in body["devices"]})
    return named


async def _supplier_not_connected(
    session: AsyncSession, dossier: DossierRow, members: Sequence[_Member], now: datetime
) -> None:
    supplier = members[0][0].supplier
    names = ", ".join(device.device_id for device, _ in members)
    await open_task(
        session,
        "receiver-not-connected",
        f"Leverancier {supplier.name if supplier else ''} is niet aangesloten of het "
        f"register was niet bereikbaar: meld zelf dat hulpmiddel {names} het contract "
        "verlaat.",
        now,
        dossier_id=dossier.id,
    )


def _departure_notice(
    members: Sequence[_Member], decision: DeviceDecision, dossier: DossierRow
) -> DepartureNotice:
    return DepartureNotice.model_validate(
        {
            "devices": [device_reference(device, purchase=True) for device, _ in members],
            "effectiveDate": decision.effective_date,
            "receivingGemeentecode": dossier.partner_gemeentecode,
            "receivingSupplier": members[0][1],
        }
    )
