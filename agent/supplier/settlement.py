"""Settlement between suppliers: the takeover price of a device, offered and checked.

"Eerst doen, daarna praten over geld" (verhuisconvenant, docs/settlement.md): on the effective
date of a departure notice the departing supplier offers the residual value to the receiving
supplier named in it; the receiving supplier recomputes it with its own contract inputs once it
has taken the device over, and accepts or disputes with a reason and a counter amount. An offer
may overtake the takeover order it settles (the two come from different senders): it waits for
the order, and only when no order came within the configured working days is it disputed.
A supplier that answers offers by hand (``takeover.settlement_answered_by``) hands an offer that
is ready to judge to its planner instead (``agent.supplier.settlement_answers``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.core.context import AgentContext
from agent.core.deadlines import Deadlines, cancel_deadlines, schedule_deadline
from agent.core.hooks import Hooks
from agent.core.tasks import open_task
from agent.errors import MessageNotHandled, SenderNotPermitted
from agent.storage.tables import DeadlineRow, DepartingDeviceRow, SettlementRow, SupplierOrderRow
from agent.supplier.orders import DONE
from agent.working_days import day_end, dutch_date_of
from protocol.errors import UnknownSettlementMethod
from protocol.messages import (
    Message,
    SettlementAccept,
    SettlementDispute,
    SettlementInputs,
    SettlementOffer,
    TakeoverOrder,
)
from protocol.settlement import economic_lifetime_months, residual_value_cents

__all__ = [
    "ANSWER_DUE",
    "FOR_PLANNER",
    "ORDER_AWAITED",
    "SETTLEMENT_DUE",
    "Recomputation",
    "Settlement",
    "Settlements",
]

SETTLEMENT_DUE: Final = "settlement-offer-due"
# Receiving supplier: an offer that came before its takeover order waits for it until this fires.
ORDER_AWAITED: Final = "settlement-order-awaited"
# Receiving supplier: an offer ready to judge waits for a planner (by setting) until this fires.
FOR_PLANNER: Final = "for-planner"
ANSWER_DUE: Final = "settlement-answer-due"
_METHOD: Final = "linear-depreciation-v1"
_DEVICE_DONE: Final = DONE
_OFFER_ROLES: Final = ("departing-supplier", "receiving-supplier")
_ANSWER_ROLES: Final = ("receiving-supplier", "departing-supplier")


class Settlement(ApiModel):
    """A takeover price offered or received, and how it stands."""

    settlement_id: str
    direction: str
    dossier_id: str
    device_id: str
    counterparty_oin: str
    method: str
    inputs: dict[str, Any]
    amount_cents: int
    state: str
    reason_code: str | None
    reason_text: str | None
    counter_amount_cents: int | None
    answered_by: str | None = Field(
        default=None, description="The planner who answered a received offer by hand."
    )


@dataclass(frozen=True)
class Recomputation:
    """This supplier's own calculation of an offer received: inputs, amount, inputs that differ."""

    inputs: SettlementInputs
    amount_cents: int
    differences: tuple[str, ...]


class Settlements:
    """Offers the takeover price of departing devices and judges the offers received."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    def register(self, hooks: Hooks, deadlines: Deadlines) -> None:
        """Add settlement messages and the offer's deadline to a supplier's agent."""
        hooks.handle("settlement-offer", self._on_offer)
        hooks.handle("settlement-accept", self._on_answer)
        hooks.handle("settlement-dispute", self._on_answer)
        deadlines.register(SETTLEMENT_DUE, self._on_settlement_due)
        deadlines.register(ORDER_AWAITED, self._on_order_awaited)

    async def _on_settlement_due(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        dossier_id, _, device_id = deadline.subject.partition(":")
        device = await session.scalar(
            select(DepartingDeviceRow).where(
                DepartingDeviceRow.dossier_id == dossier_id,
                DepartingDeviceRow.device_id == device_id,
            )
        )
        if device is None or device.state != "leaving":
            return
        if device.receiving_supplier_oin == self._agent.settings.oin:
            # The receiving gemeente contracts us too: the device stays in our own stock.
            return
        inputs = self._offer_inputs(device)
        if inputs is None or device.receiving_supplier_oin is None:
            await open_task(
                session,
                "manual-check",
                f"Hulpmiddel {device.device_id} verlaat het contract op "
                f"{device.effective_date.isoformat()}; ontvangende leverancier of "
                "aankoopgegevens onbekend: regel de overnameprijs zelf.",
                now,
            )
            return
        await self._offer(session, device, device.receiving_supplier_oin, inputs, now)

    def _offer_inputs(self, device: DepartingDeviceRow) -> SettlementInputs | None:
        if device.purchase_price_cents is None or device.purchase_date is None:
            return None
        if device.purchase_date > device.effective_date:
            return None
        return self._inputs(
            device.iso_code,
            device.purchase_price_cents,
            device.purchase_date,
            device.effective_date,
            self._agent.settings.takeover.maintenance_state,
        )

    def _inputs(
        self,
        iso_code: str,
        price_cents: int,
        purchase_date: date,
        transfer_date: date,
        maintenance_state: str,
    ) -> SettlementInputs:
        takeover = self._agent.settings.takeover
        return SettlementInputs.model_validate(
            {
                "purchasePriceCents": price_cents,
                "purchaseDate": purchase_date,
                "transferDate": transfer_date,
                "economicLifetimeMonths": economic_lifetime_months(
                    iso_code, takeover.economic_lifetime_months
                ),
                "floorBasisPoints": takeover.floor_basis_points,
                "maintenanceState": maintenance_state,
            }
        )

    async def _offer(
        self,
        session: AsyncSession,
        device: DepartingDeviceRow,
        receiver_oin: str,
        inputs: SettlementInputs,
        now: datetime,
    ) -> None:
        offer = SettlementOffer(
            settlement_id=uuid.uuid4(),
            device_id=device.device_id,
            method=_METHOD,
            inputs=inputs,
            amount_cents=residual_value_cents(inputs, method=_METHOD),
        )
        session.add(_settlement_row(offer, "offered", device.dossier_id, receiver_oin, None, now))
        await self._agent.outgoing.message(
            session, device.dossier_id, offer, now, to=receiver_oin, roles=_OFFER_ROLES
        )

    async def _on_offer(self, session: AsyncSession, message: Message, now: datetime) -> None:
        offer = message.body
        assert isinstance(offer, SettlementOffer)
        row = _settlement_row(
            offer,
            "received",
            str(message.dossier_id),
            message.sender.oin,
            str(message.message_id),
            now,
        )
        row.state = "waiting"
        order = await self.order_for(session, row.dossier_id, row.device_id)
        departing = (order.body.get("departingSupplier") or {}) if order is not None else {}
        if departing.get("oin") not in (None, message.sender.oin):
            # Only the supplier the order names may settle this device with us.
            raise SenderNotPermitted("the order names another departing supplier")
        session.add(row)
        if order is None:
            # The order may still be on its way: wait for it, with a deadline as the owner.
            await schedule_deadline(
                session,
                kind=ORDER_AWAITED,
                subject=row.settlement_id,
                due_at=self._working_days_from(
                    now, self._agent.settings.takeover.settlement_order_wait_working_days
                ),
                now=now,
            )
        elif order.device_states.get(row.device_id) in _DEVICE_DONE:
            await self._judge(session, row, order, now)

    def _working_days_from(self, now: datetime, days: int) -> datetime:
        today = dutch_date_of(now)
        return day_end(self._agent.calendar.add_working_days(today, days))

    async def order_arrived(
        self, session: AsyncSession, order: SupplierOrderRow, now: datetime
    ) -> None:
        """A takeover order came in: offers that waited for it now wait for its takeover."""
        waiting = await session.scalars(
            select(SettlementRow).where(
                SettlementRow.dossier_id == order.dossier_id,
                SettlementRow.direction == "received",
                SettlementRow.state == "waiting",
            )
        )
        for row in waiting:
            if row.device_id in order.device_states:
                await cancel_deadlines(session, subject=row.settlement_id, kinds=(ORDER_AWAITED,))

    async def _on_order_awaited(
        self, session: AsyncSession, deadline: DeadlineRow, now: datetime
    ) -> None:
        row = await session.get(SettlementRow, deadline.subject)
        if row is None or row.state != "waiting":
            return
        if await self.order_for(session, row.dossier_id, row.device_id) is not None:
            return
        days = self._agent.settings.takeover.settlement_order_wait_working_days
        await self.answer(
            session,
            row,
            "other",
            f"Wij hebben na {days} werkdagen nog geen overnameopdracht voor dit hulpmiddel "
            "gekregen. Vraag de ontvangende gemeente of zij de opdracht aan ons heeft gegeven.",
            now,
        )

    async def order_for(
        self, session: AsyncSession, dossier_id: str, device_id: str
    ) -> SupplierOrderRow | None:
        """The takeover order (not refused) that holds the device, if it came."""
        orders = await session.scalars(
            select(SupplierOrderRow).where(
                SupplierOrderRow.dossier_id == dossier_id, SupplierOrderRow.status != "refused"
            )
        )
        return next((o for o in orders if device_id in o.device_states), None)

    async def answer_waiting_offers(
        self, session: AsyncSession, order: SupplierOrderRow, now: datetime
    ) -> None:
        """Judge the offers that waited for this order's devices to be taken over."""
        waiting = await session.scalars(
            select(SettlementRow).where(
                SettlementRow.dossier_id == order.dossier_id, SettlementRow.state == "waiting"
            )
        )
        for row in list(waiting):
            if order.device_states.get(row.device_id) in _DEVICE_DONE:
                await self._judge(session, row, order, now)

    async def _judge(
        self, session: AsyncSession, row: SettlementRow, order: SupplierOrderRow, now: datetime
    ) -> None:
        try:
            own = self.recompute(row, order)
        except UnknownSettlementMethod:
            await self.answer(
                session, row, "method-not-agreed", f"Methode {row.method} is niet afgesproken.", now
            )
            return
        if self._agent.settings.takeover.settlement_answered_by == "planner":
            # A person answers; the deadline owns the wait until they do.
            row.state, row.updated_at = FOR_PLANNER, now
            await schedule_deadline(
                session,
                kind=ANSWER_DUE,
                subject=row.settlement_id,
                due_at=self._working_days_from(
                    now, self._agent.settings.takeover.settlement_planner_working_days
                ),
                now=now,
            )
            return
        if not own.differences and own.amount_cents == row.amount_cents:
            await self.answer(session, row, None, None, now)
            return
        reason = (
            "Afwijkend: "
            + (", ".join(own.differences) or "bedrag")
            + f"; wij komen op {own.amount_cents}."
        )
        await self.answer(session, row, "inputs-incorrect", reason, now, counter=own.amount_cents)

    def recompute(self, row: SettlementRow, order: SupplierOrderRow) -> Recomputation:
        """The offer recomputed with this supplier's own contract inputs and the order's data.

        Raises ``UnknownSettlementMethod`` for a method this agent does not know.
        """
        offered = SettlementInputs.model_validate(row.inputs)
        own = self._own_inputs(order, row.device_id, offered)
        amount = residual_value_cents(own, method=row.method)
        return Recomputation(own, amount, tuple(_differences(offered, own)))

    def _own_inputs(
        self, order: SupplierOrderRow, device_id: str, offered: SettlementInputs
    ) -> SettlementInputs:
        device = next(
            d for d in TakeoverOrder.model_validate(order.body).devices if d.device_id == device_id
        )
        return self._inputs(
            device.iso_code,
            device.purchase_price_cents or offered.purchase_price_cents,
            device.purchase_date or offered.purchase_date,
            offered.transfer_date,
            offered.maintenance_state,
        )

    async def answer(
        self,
        session: AsyncSession,
        row: SettlementRow,
        reason_code: str | None,
        reason_text: str | None,
        now: datetime,
        *,
        counter: int | None = None,
        by: str | None = None,
    ) -> None:
        """Accept (no ``reason_code``) or dispute an offer received, and tell its sender.

        ``by`` names the planner who answered; none when the agent answered by itself.
        """
        body: SettlementAccept | SettlementDispute
        row.answered_by = by
        if reason_code is None:
            row.state = "accepted"
            body = SettlementAccept.model_validate(
                {
                    "settlementId": row.settlement_id,
                    "deviceId": row.device_id,
                    "amountCents": row.amount_cents,
                }
            )
        else:
            row.state, row.reason_code, row.reason_text = "disputed", reason_code, reason_text
            row.counter_amount_cents = counter
            body = SettlementDispute.model_validate(
                {
                    "settlementId": row.settlement_id,
                    "deviceId": row.device_id,
                    "reasonCode": reason_code,
                    "reasonText": reason_text,
                    "counterAmountCents": counter,
                }
            )
        row.updated_at = now
        await self._agent.outgoing.message(
            session,
            row.dossier_id,
            body,
            now,
            to=row.counterparty_oin,
            roles=_ANSWER_ROLES,
            in_reply_to=row.offer_message_id,
        )

    async def _on_answer(self, session: AsyncSession, message: Message, now: datetime) -> None:
        answer = message.body
        assert isinstance(answer, SettlementAccept | SettlementDispute)
        row = await session.get(SettlementRow, str(answer.settlement_id))
        if row is None or row.direction != "offered":
            raise MessageNotHandled("no settlement with this id was offered to the sender")
        if row.counterparty_oin != message.sender.oin or row.dossier_id != str(message.dossier_id):
            raise SenderNotPermitted("this settlement was offered to another supplier")
        row.updated_at = now
        if row.state == "superseded":
            return  # offered to a supplier that refused the order; a new offer went out
        if isinstance(answer, SettlementAccept):
            row.state = "accepted"
            return
        row.state, row.reason_code, row.reason_text = (
            "disputed",
            answer.reason_code,
            answer.reason_text,
        )
        row.counter_amount_cents = answer.counter_amount_cents
        await open_task(
            session,
            "settlement-disputed",
            f"De overnameprijs van hulpmiddel {row.device_id} ({row.amount_cents} cent) wordt "
            f"betwist: {answer.reason_code}; tegenbod {answer.counter_amount_cents} cent.",
            now,
        )

    async def list(self) -> list[Settlement]:
        """Settlements offered and received, oldest first."""
        query = select(SettlementRow).order_by(
            SettlementRow.created_at, SettlementRow.settlement_id
        )
        async with self._agent.database.reading() as session:
            return [Settlement.model_validate(row) for row in await session.scalars(query)]


def _differences(offered: SettlementInputs, own: SettlementInputs) -> list[str]:
    mine, theirs = own.model_dump(by_alias=True), offered.model_dump(by_alias=True)
    return [name for name in sorted(mine) if mine[name] != theirs[name]]


def _settlement_row(
    offer: SettlementOffer,
    direction: str,
    dossier_id: str,
    counterparty_oin: str,
    offer_message_id: str | None,
    now: datetime,
) -> SettlementRow:
    return SettlementRow(
        settlement_id=str(offer.settlement_id),
        direction=direction,
        dossier_id=dossier_id,
        device_id=offer.device_id,
        counterparty_oin=counterparty_oin,
        offer_message_id=offer_message_id,
        method=offer.method,
        inputs=offer.inputs.model_dump(mode="json", by_alias=True, exclude_none=True),
        amount_cents=offer.amount_cents,
        state="offered",
        reason_code=None,
        reason_text=None,
        counter_amount_cents=None,
        created_at=now,
        updated_at=now,
    )
