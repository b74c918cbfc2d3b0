"""Takeover orders: the supplier's planner and the gemeente follow them here."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import Field

from agent.api.deps import CaseSystemDep, ServiceDep, token_router
from agent.api.problems import BODY_TOO_LARGE, problem_responses
from agent.api_model import ApiModel, DeviceId
from agent.errors import (
    OrderStatusRefused,
    OrderUnknown,
    SettlementAnswerInvalid,
    SettlementNotOpen,
    SettlementUnknown,
    WrongRole,
)
from agent.supplier.desk import DepartingDevice, ReceivedOrder
from agent.supplier.orders import PlacedOrder
from agent.supplier.settlement import Settlement
from protocol.messages import DisputeReason

__all__ = [
    "OrderStatusInput",
    "SettlementAnswerInput",
    "answer_settlement",
    "get_order",
    "list_departing_devices",
    "list_orders",
    "list_placed_orders",
    "list_settlements",
    "record_order_status",
    "router",
]

router = token_router("orders", CaseSystemDep, WrongRole)

ReasonCode = Literal[
    "client-unreachable", "device-not-found", "device-unsafe", "not-contracted", "no-capacity",
    "other",
]  # fmt: skip


class OrderStatusInput(ApiModel):
    """A status the supplier's planner records; ``problem`` and ``refused`` need a reason."""

    status: Literal["client-contacted", "taken-over", "inspected", "replaced", "problem", "refused"]
    device_id: DeviceId | None = None
    reason_code: ReasonCode | None = None
    reason_text: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class SettlementAnswerInput(ApiModel):
    """A planner's answer to a takeover price offer; a dispute needs a reason code and text."""

    answer: Literal["accept", "dispute"]
    answered_by: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="The planner who answers (a name or employee number)."
    )
    reason_code: DisputeReason | None = None
    reason_text: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


def _supplier_role(service: ServiceDep) -> None:
    if service.settings.role != "supplier":
        raise WrongRole("only a supplier agent receives takeover orders")


@router.get("/orders")
async def list_orders(
    service: ServiceDep, open_only: Annotated[bool, Query(alias="open")] = False
) -> list[ReceivedOrder]:
    """Supplier: orders received, soonest contact deadline first (``open=true``: still open)."""
    _supplier_role(service)
    orders = await service.supplier.orders(open_only=open_only)
    return [order.model_copy(update={"order": None}) for order in orders]


@router.get("/orders/{orderId}", responses=problem_responses(OrderUnknown))
async def get_order(
    order_id: Annotated[uuid.UUID, Path(alias="orderId")], service: ServiceDep
) -> ReceivedOrder:
    """Supplier: one order with the client's name, address and contact preferences."""
    _supplier_role(service)
    return await service.supplier.order(str(order_id))


@router.post(
    "/orders/{orderId}/status",
    responses=problem_responses(BODY_TOO_LARGE, OrderUnknown, OrderStatusRefused),
)
async def record_order_status(
    order_id: Annotated[uuid.UUID, Path(alias="orderId")],
    status: OrderStatusInput,
    service: ServiceDep,
) -> ReceivedOrder:
    """Supplier: record contact, takeover, a problem or a refusal; the gemeente is told."""
    _supplier_role(service)
    order = await service.supplier.record_status(
        str(order_id),
        status.status,
        device_id=status.device_id,
        reason_code=status.reason_code,
        reason_text=status.reason_text,
    )
    service.wake()
    return order.model_copy(update={"order": None})


@router.get("/placed-orders")
async def list_placed_orders(
    service: ServiceDep, open_only: Annotated[bool, Query(alias="open")] = False
) -> list[PlacedOrder]:
    """Gemeente: orders placed with suppliers, with status and overdue flag."""
    if service.settings.role != "gemeente":
        raise WrongRole("only a gemeente agent places takeover orders")
    return await service.orders.list(open_only=open_only)


@router.get("/departing-devices")
async def list_departing_devices(service: ServiceDep) -> list[DepartingDevice]:
    """Departing supplier: devices leaving its contract, by effective date."""
    _supplier_role(service)
    return await service.supplier.departing_devices()


@router.get("/settlements")
async def list_settlements(service: ServiceDep) -> list[Settlement]:
    """Supplier: takeover prices offered and received, with their outcome."""
    _supplier_role(service)
    return await service.supplier.settlements()


@router.post(
    "/settlements/{settlementId}/answer",
    responses=problem_responses(
        BODY_TOO_LARGE, SettlementUnknown, SettlementNotOpen, SettlementAnswerInvalid
    ),
)
async def answer_settlement(
    settlement_id: Annotated[uuid.UUID, Path(alias="settlementId")],
    answer: SettlementAnswerInput,
    service: ServiceDep,
) -> Settlement:
    """Supplier answering offers by hand: accept or dispute an offer that waits for a planner."""
    _supplier_role(service)
    answers = service.supplier.settlement_answers
    if answer.answer == "accept":
        settlement = await answers.accept(str(settlement_id), by=answer.answered_by)
    else:
        settlement = await answers.dispute(
            str(settlement_id),
            answer.reason_code or "",
            answer.reason_text or "",
            by=answer.answered_by,
        )
    service.wake()
    return settlement
