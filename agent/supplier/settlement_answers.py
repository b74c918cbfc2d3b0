"""A planner's answer to a takeover price offer, for a supplier that answers offers by hand.

With ``takeover.settlement_answered_by = "planner"`` an offer that is ready to judge (its device
taken over) waits for a planner (``for-planner``) instead of being answered by the agent. The
planner sees the offer's inputs beside this supplier's own recalculation and accepts, or disputes
with a reason; the answer is the same signed ``settlement-accept`` or ``settlement-dispute`` the
agent sends by itself (docs/settlement.md section 4). A deadline owns the wait: when the planner
has not answered within ``takeover.settlement_planner_working_days`` working days, a task says
the answer is late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.deadlines import Deadlines, cancel_deadlines
from agent.core.tasks import open_task
from agent.errors import SettlementAnswerInvalid, SettlementNotOpen, SettlementUnknown
from agent.register.names import device_name, euros, with_article
from agent.storage.tables import DeadlineRow, SettlementRow, SupplierOrderRow
from agent.supplier.settlement import (
    ANSWER_DUE,
    FOR_PLANNER,
    Recomputation,
    Settlement,
    Settlements,
)
from protocol.errors import UnknownSettlementMethod
from protocol.messages import DisputeReason

__all__ = ["DISPUTE_REASONS", "SettlementAnswers", "SettlementCheck"]

DISPUTE_REASONS: tuple[str, ...] = get_args(DisputeReason)


@dataclass(frozen=True)
class SettlementCheck:
    """An offer received as the planner judges it: our own recalculation and the answer date."""

    settlement: Settlement
    device: str
    # None when the order is not (or no longer) here, or the method is unknown.
    own: Recomputation | None
    answer_before: datetime | None

    @property
    def counter_amount_cents(self) -> int | None:
        """The amount a dispute offers instead: ours, when it differs from the offered one."""
        if self.own is None or self.own.amount_cents == self.settlement.amount_cents:
            return None
        return self.own.amount_cents


class SettlementAnswers:
    """The planner's side of settlement: read an offer with our recalculation, then answer it."""

    def __init__(self, agent: AgentContext, settlements: Settlements) -> None:
        self._agent = agent
        self._settlements = settlements

    def register(self, deadlines: Deadlines) -> None:
        """Escalate an offer a planner did not answer in time."""
        deadlines.register(ANSWER_DUE, self._on_answer_due)

    async def check(self, settlement_id: str) -> SettlementCheck:
        """One offer received or made, with our recalculation when it is ours to judge."""
        async with self._agent.database.reading() as session:
            row = await _settlement(session, settlement_id)
            return await self._check(session, row)

    async def _check(self, session: AsyncSession, row: SettlementRow) -> SettlementCheck:
        order = await self._settlements.order_for(session, row.dossier_id, row.device_id)
        own = None
        if order is not None and row.direction == "received":
            try:
                own = self._settlements.recompute(row, order)
            except UnknownSettlementMethod:
                own = None
        deadline = await session.scalar(
            select(DeadlineRow).where(
                DeadlineRow.kind == ANSWER_DUE,
                DeadlineRow.subject == row.settlement_id,
                DeadlineRow.state != "cancelled",
            )
        )
        return SettlementCheck(
            settlement=Settlement.model_validate(row),
            device=_device(order, row.device_id),
            own=own,
            answer_before=deadline.due_at if deadline is not None else None,
        )

    async def accept(self, settlement_id: str, *, by: str) -> Settlement:
        """``by`` accepts the offered amount; the offering supplier is told."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            row = await _waiting(session, settlement_id)
            await self._settlements.answer(session, row, None, None, now, by=by)
            await cancel_deadlines(session, subject=row.settlement_id, kinds=(ANSWER_DUE,))
            return Settlement.model_validate(row)

    async def dispute(
        self, settlement_id: str, reason_code: str, reason_text: str, *, by: str
    ) -> Settlement:
        """``by`` disputes the offer with a reason; our own amount, when it differs, is offered."""
        if reason_code not in DISPUTE_REASONS:
            raise SettlementAnswerInvalid(f"unknown dispute reason {reason_code}")
        text = reason_text.strip()
        if not 0 < len(text) <= 2000:
            raise SettlementAnswerInvalid("a dispute needs a reason text of 1 to 2000 characters")
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            row = await _waiting(session, settlement_id)
            check = await self._check(session, row)
            await self._settlements.answer(
                session, row, reason_code, text, now, counter=check.counter_amount_cents, by=by
            )
            await cancel_deadlines(session, subject=row.settlement_id, kinds=(ANSWER_DUE,))
            return Settlement.model_validate(row)

    async def _on_answer_due(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SettlementRow, deadline.subject)
        if row is None or row.state != FOR_PLANNER:
            return
        self._agent.metrics.deadline_breached("settlement-answer")
        order = await self._settlements.order_for(session, row.dossier_id, row.device_id)
        days = self._agent.settings.takeover.settlement_planner_working_days
        await open_task(
            session,
            "settlement-unanswered",
            f"Een andere leverancier biedt {euros(row.amount_cents)} als overnameprijs voor "
            f"{_device(order, row.device_id)}. Niemand heeft dit aanbod binnen {days} "
            "werkdagen geaccepteerd of betwist. Beantwoord het in de werkbak bij Verrekeningen.",
            now,
            device_id=row.device_id,
        )


def _device(order: SupplierOrderRow | None, device_id: str) -> str:
    """The device as a sentence names it, from the order: "de scootmobiel (...)"."""
    devices: list[dict[str, Any]] = order.body.get("devices", []) if order is not None else []
    for device in devices:
        # A stopped order keeps no description: then the plain word.
        if device.get("deviceId") == device_id and device.get("description"):
            return with_article(device_name(device["isoCode"], device["description"]))
    return "het hulpmiddel"


async def _settlement(
    session: AsyncSession, settlement_id: str, *, lock: bool = False
) -> SettlementRow:
    row = (
        await session.get(SettlementRow, settlement_id, with_for_update=lock)
        if len(settlement_id) <= 36
        else None
    )
    if row is None:
        raise SettlementUnknown("no settlement with this id")
    return row


async def _waiting(session: AsyncSession, settlement_id: str) -> SettlementRow:
    """The offer, locked: two planners cannot both answer it."""
    row = await _settlement(session, settlement_id, lock=True)
    if row.direction != "received" or row.state != FOR_PLANNER:
        raise SettlementNotOpen(f"settlement {settlement_id} is {row.state}")
    return row
