"""A consulent of the receiving gemeente changes the automatic decision for one device.

Allowed while the dossier runs (``decided`` or ``orders-placed``) and no supplier reported the
device taken over. After completion an exception may still be taken back (its alternative not
delivered yet), and the device then joins the register as on completion; a device that no
supplier takes over (every contracted one refused, or none is contracted) may still become an
exception, and leaves the register (``agent.core.states.decision_may_change``).
Take-over -> exception: the device's open order is withdrawn at its supplier
(``dossier-cancelled`` with ``deviceIds``) and the alternative follows as for an exception of the
policy (task and letters, ``agent.continuation.receiving``). Exception -> take-over: the
alternative's task is closed, the device is ordered from the contracted supplier as on the
decision, and the client gets a letter that the device is taken over after all. Either way a
revised ``device-decision`` (``revisedAt``) goes to the departing gemeente (docs/protocol.md,
section 5), and the timeline names the consulent, the device and the reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.continuation.administration import Administration
from agent.continuation.receiving import ReceivingFollowUp
from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers, decided_fields, lock_dossier
from agent.core.policy import continued_provision_end
from agent.core.receiving import received_offer
from agent.core.states import UNSERVED_TASKS, decision_may_change
from agent.core.tasks import TaskKind, close_open_tasks, devices_with_open_tasks
from agent.errors import DecisionNotChangeable, DeviceTakenOver, DossierUnknown, ProvisionUnknown
from agent.register.names import the_device
from agent.storage.tables import DossierRow, OrderRow, ProvisionRow
from agent.supplier.continued_use import ALTERNATIVE_REASONS
from agent.supplier.orders import DONE, OrderDesk, ordered
from protocol.messages import (
    Device,
    DeviceDecisionItem,
    DossierOffer,
    SupplierReference,
)

__all__ = ["DecisionChange", "DecisionOverride"]

_Candidates = list[dict[str, str]] | None


class DecisionChange(ApiModel):
    """A consulent's new decision for one device, with the reason (Dutch, for the client).

    ``exception``: a reason code for which this gemeente provides the alternative, the reason
    and the alternative, as the client's letter says them. ``take-over``: only the reason.
    """

    outcome: Literal["take-over", "exception"]
    reason_code: Literal["not-in-assortment", "unsafe-or-worn", "needs-changed", "other"] | None = (
        None
    )
    reason_text: str = Field(min_length=1, max_length=2000)
    alternative_offered: str | None = Field(default=None, min_length=1, max_length=2000)
    done_by: str = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _fits_the_outcome(self) -> Self:
        if self.outcome == "exception" and None in (self.reason_code, self.alternative_offered):
            raise ValueError("an exception needs reasonCode and alternativeOffered")
        if self.outcome == "take-over" and (self.reason_code or self.alternative_offered):
            raise ValueError("a take-over has no reasonCode and no alternativeOffered")
        return self


class DecisionOverride:
    """Changes the receiving gemeente's decision for one device, by a named person."""

    def __init__(
        self,
        agent: AgentContext,
        *,
        dossiers: Dossiers,
        orders: OrderDesk,
        follow_up: ReceivingFollowUp,
        administration: Administration,
    ) -> None:
        self._agent = agent
        self._dossiers = dossiers
        self._orders = orders
        self._follow_up = follow_up
        self._administration = administration

    async def change(self, dossier_id: str, device_id: str, change: DecisionChange) -> None:
        """Apply ``change`` to the device, all or nothing; refused with a specific problem."""
        key = _key(dossier_id)
        # The registry look-up a take-over needs, made before the transaction locks anything.
        candidates = await self._candidates(key, device_id) if change.outcome == "take-over" else []
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier, offer, provision = await self._checked(session, key, device_id, change)
            device = next(d for d in offer.devices if d.device_id == device_id)
            order: OrderRow | None = None
            if change.outcome == "exception":
                item = await self._except(session, dossier, offer, device, change, now)
            else:
                item, order = await self._take_over(
                    session, dossier, offer, device, change, candidates, now
                )
            for name, value in decided_fields(item).items():
                setattr(provision, name, value)
            taken_over = item.outcome == "take-over"
            provision.start_date = offer.client.move_date if taken_over else None
            provision.end_date = continued_provision_end(offer.indicatie) if taken_over else None
            if not await self._orders.progress.decision_again(
                session, dossier, item.device_id, lambda _: item, now
            ):
                raise DecisionNotChangeable("no decision was sent for this dossier")
            if order is not None:
                await self._orders.progress.report(session, order, "contact-planned", now)
            else:
                await self._orders.complete_when_done(session, dossier, now)
            if dossier.state == "completed" and taken_over:
                await self._administration.register_continued(session, dossier, now)
            elif dossier.state == "completed":
                await self._administration.withdraw_continued(session, dossier, device_id, now)
            self._dossiers.note(session, dossier, _note(change, the_device(device)), now)
            await self._agent.log.record(
                session, "werkbak-dossier-changed", dossier, now, actor=change.done_by
            )

    async def _candidates(self, dossier_id: str, device_id: str) -> _Candidates:
        async with self._agent.database.reading() as session:
            offer = await received_offer(session, dossier_id)
        device = (
            next((d for d in offer.devices if d.device_id == device_id), None) if offer else None
        )
        if offer is None or device is None or not ordered(device):
            return []
        return await self._orders.contracted(offer, device.iso_code)

    async def _checked(
        self, session: AsyncSession, dossier_id: str, device_id: str, change: DecisionChange
    ) -> tuple[DossierRow, DossierOffer, ProvisionRow]:
        dossier = await lock_dossier(session, dossier_id)
        if dossier is None:
            raise DossierUnknown("no dossier with this id")
        if dossier.side != "receiving":
            raise DecisionNotChangeable("only the receiving gemeente changes its decision")
        current = "exception" if change.outcome == "take-over" else "take-over"
        unserved = device_id in await devices_with_open_tasks(session, dossier.id, UNSERVED_TASKS)
        if not decision_may_change(dossier.state, current, unserved=unserved):
            raise DecisionNotChangeable(f"the dossier is {dossier.state}: its decision stands")
        offer = await received_offer(session, dossier.id)
        provision = await session.scalar(
            select(ProvisionRow).where(
                ProvisionRow.dossier_id == dossier.id, ProvisionRow.device_id == device_id
            )
        )
        if offer is None or provision is None:
            raise ProvisionUnknown("the decision of this dossier names no such device")
        done = await session.scalar(
            select(OrderRow.order_id).where(
                OrderRow.dossier_id == dossier.id,
                OrderRow.device_id == device_id,
                OrderRow.status.in_(tuple(DONE)),
            )
        )
        if done is not None:
            raise DeviceTakenOver("the supplier reported this device taken over")
        if provision.outcome == change.outcome:
            raise DecisionNotChangeable(f"the decision for this device is {change.outcome} already")
        if change.outcome == "take-over" and provision.reason_code not in ALTERNATIVE_REASONS:
            # Fixed, client-owned or a Wlz institution: there is nothing to take over.
            raise DecisionNotChangeable(f"an exception for {provision.reason_code} stands")
        lent = any(d.device_id == device_id and d.ownership == "bruikleen" for d in offer.devices)
        if change.outcome == "exception" and lent:
            # The ownership of a lent device moved with the decision (section 8.9): it stays.
            raise DecisionNotChangeable("the ownership of this lent device moved with the decision")
        return dossier, offer, provision

    async def _except(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        device: Device,
        change: DecisionChange,
        now: datetime,
    ) -> DeviceDecisionItem:
        await self._orders.withdraw_device(session, dossier, device.device_id, now)
        await close_open_tasks(
            session, dossier.id, device.device_id, _TAKEOVER_TASKS, done_by=change.done_by, now=now
        )
        item = DeviceDecisionItem.model_validate(
            {
                "deviceId": device.device_id,
                "outcome": "exception",
                "reasonCode": change.reason_code,
                "reasonText": change.reason_text,
                "alternativeOffered": change.alternative_offered,
                "followUp": "gemeente-task",
            }
        )
        await self._follow_up.provide_alternatives(session, dossier, offer, [(device, item)], now)
        return item

    async def _take_over(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        offer: DossierOffer,
        device: Device,
        change: DecisionChange,
        candidates: _Candidates,
        now: datetime,
    ) -> tuple[DeviceDecisionItem, OrderRow | None]:
        await self._follow_up.withdraw_alternative(
            session, dossier.id, device.device_id, change.done_by, now
        )
        order = None
        if ordered(device):
            order = await self._orders.order_device(
                session, dossier, offer, device, candidates, now
            )
            if order is not None and dossier.state == "decided":
                await self._dossiers.transition(
                    session, dossier, "orders-placed", "takeover order queued", now
                )
        await self._follow_up.taken_over_after_all(
            session,
            dossier,
            offer,
            device,
            now,
            supplier=order.supplier_name if order is not None else None,
            contact_before=order.contact_before if order is not None else None,
        )
        lent = device.ownership == "bruikleen"
        item = DeviceDecisionItem(
            device_id=device.device_id,
            outcome="take-over",
            receiving_supplier=SupplierReference(oin=order.supplier_oin, name=order.supplier_name)
            if order is not None
            else None,
            follow_up="supplier-order"
            if order is not None
            else "gemeente-task"
            if ordered(device)
            else None,
            transfer_price=self._agent.settings.continuation.transfer_price if lent else None,
        )
        return item, order


# A person's tasks about getting the device taken over: done once it is an exception.
_TAKEOVER_TASKS: tuple[TaskKind, ...] = (
    "no-supplier", "supplier-refused", "supplier-problem", "supplier-overdue",
)  # fmt: skip


def _note(change: DecisionChange, what: str) -> str:
    if change.outcome == "exception":
        return (
            f"{change.done_by} heeft het besluit gewijzigd: wij nemen {what} niet over. "
            f"Reden: {change.reason_text} Wat de cliënt krijgt: {change.alternative_offered}"
        )
    return (
        f"{change.done_by} heeft het besluit gewijzigd: wij nemen {what} toch over. "
        f"Reden: {change.reason_text}"
    )


def _key(dossier_id: str) -> str:
    try:
        return str(uuid.UUID(dossier_id))
    except ValueError:
        raise DossierUnknown("no dossier with this id") from None
