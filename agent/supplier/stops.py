"""Supplier: the gemeente stopped a move, or some devices of it; orders and departures stop.

``dossier-cancelled`` and ``consent-withdrawn`` from the gemeente that sent the order or the
notice stop what is not taken over yet and delete the client's data from the stopped orders
(docs/supplier.md, "Cancellation and withdrawal reach the suppliers"). A ``dossier-cancelled``
with ``deviceIds`` (reason ``decision-changed``) stops only what concerns those devices: the
receiving gemeente changed its decision for them (docs/protocol.md, section 5).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.deadlines import cancel_deadlines
from agent.core.hooks import Hooks
from agent.core.tasks import TaskKind, close_order_tasks, open_task
from agent.storage.tables import DepartingDeviceRow, InboundMessageRow, SupplierOrderRow
from agent.supplier.order_bodies import stripped_order
from agent.supplier.orders import DONE
from agent.supplier.senders import check_gemeente
from agent.supplier.settlement import SETTLEMENT_DUE
from protocol.messages import DossierCancelled, Message

__all__ = ["STOPPED", "SupplierStops"]

# Stopped by the gemeente (dossier-cancelled, consent-withdrawn): nothing more is recorded.
STOPPED: Final = frozenset({"cancelled", "withdrawn"})


class SupplierStops:
    """Stops a supplier's orders and departing devices when the gemeente says so."""

    def __init__(
        self, *, contact_deadlines: tuple[str, ...], contact_tasks: tuple[TaskKind, ...]
    ) -> None:
        # The deadline kinds and the planner's task kinds of an order's contact (the desk's),
        # cancelled and closed with the order.
        self._contact_deadlines = contact_deadlines
        self._contact_tasks = contact_tasks

    def register(self, hooks: Hooks) -> None:
        """Handle the gemeente's stops on a supplier's agent."""
        hooks.handle("dossier-cancelled", self.on_stop)
        hooks.handle("consent-withdrawn", self.on_stop)

    async def on_stop(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """The move is void or the consent withdrawn: stop, and delete the client's data.

        With ``deviceIds`` the gemeente changed its decision for those devices: only they stop.
        """
        body = message.body
        stop = "cancelled" if isinstance(body, DossierCancelled) else "withdrawn"
        only = body.device_ids if isinstance(body, DossierCancelled) else None
        dossier_id, gemeente = str(message.dossier_id), message.sender.oin
        await check_gemeente(session, dossier_id, gemeente)
        orders = await session.scalars(
            select(SupplierOrderRow).where(
                SupplierOrderRow.dossier_id == dossier_id,
                SupplierOrderRow.gemeente_oin == gemeente,
            )
        )
        stopped = [
            row for row in orders if await self._stop_order(session, row, stop, now, only=only)
        ]
        await _erase_received_orders(
            session, dossier_id, {row.order_id for row in stopped if row.status == stop}
        )
        query = select(DepartingDeviceRow).where(
            DepartingDeviceRow.dossier_id == dossier_id,
            DepartingDeviceRow.gemeente_oin == gemeente,
            DepartingDeviceRow.state == "leaving",
        )
        if only is not None:
            query = query.where(DepartingDeviceRow.device_id.in_(only))
        staying = list(await session.scalars(query))
        for device in staying:
            device.state = stop
            await cancel_deadlines(
                session, subject=f"{dossier_id}:{device.device_id}", kinds=(SETTLEMENT_DUE,)
            )
        if stopped or staying:
            why = (
                "de gemeente heeft haar besluit over dit hulpmiddel gewijzigd"
                if only is not None
                else "de verhuizing is geannuleerd"
                if stop == "cancelled"
                else "de toestemming is ingetrokken"
            )
            await open_task(
                session, "order-stopped", _stop_description(stop, why, stopped, staying), now
            )

    async def _stop_order(
        self,
        session: AsyncSession,
        row: SupplierOrderRow,
        stop: str,
        now: datetime,
        *,
        only: tuple[str, ...] | None = None,
    ) -> bool:
        """Stop the devices of an order (``only``: just these); True when one stopped."""
        # A device already taken over is now serviced under the gemeente's contract: kept.
        if row.status in ("refused", "taken-over") or row.status in STOPPED:
            return False
        named = set(row.device_states) if only is None else set(row.device_states) & set(only)
        if not named:
            return False
        row.updated_at = now
        row.device_states = {
            device: stop if device in named and state not in DONE else state
            for device, state in row.device_states.items()
        }
        if any(state not in DONE | {stop} for state in row.device_states.values()):
            return True  # other devices of the order go on
        row.status = stop
        row.body = stripped_order(row.body)
        await cancel_deadlines(session, subject=row.order_id, kinds=self._contact_deadlines)
        await close_order_tasks(
            session,
            row.order_id,
            self._contact_tasks,
            done_by="gemeente",
            now=now,
            note="De gemeente heeft de opdracht gestopt. Neem geen contact meer op.",
        )
        return True


async def _erase_received_orders(
    session: AsyncSession, dossier_id: str, order_ids: set[str]
) -> None:
    # The received bytes of a stopped order carry the client's name and address: erased; the
    # message id and digest stay, so a repeated delivery is still recognised.
    if not order_ids:
        return
    received = await session.scalars(
        select(InboundMessageRow).where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "takeover-order",
        )
    )
    for row in received:
        if row.body and json.loads(row.body)["body"]["orderId"] in order_ids:
            row.body = b""


def _stop_description(
    stop: str, why: str, orders: list[SupplierOrderRow], devices: list[DepartingDeviceRow]
) -> str:
    parts = []
    if orders:
        ids = ", ".join(row.order_id for row in orders)
        erased = all(row.status == stop for row in orders)
        rest = "; de gegevens van de cliënt zijn verwijderd." if erased else " hierover."
        parts.append(f"Order {ids} is gestopt: {why}. Neem geen contact op met de cliënt{rest}")
    if devices:
        names = ", ".join(row.device_id for row in devices)
        outcome = (
            "verlaat het contract niet"
            if stop == "cancelled"
            else "wordt niet via Meeverhuizen overgenomen; de gemeente regelt het vervolg"
        )
        parts.append(f"Hulpmiddel {names} {outcome} ({why}); geen overnameprijs.")
    return " ".join(parts)
