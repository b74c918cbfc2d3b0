"""Takeover orders (issue 7): the supplier's planner and the gemeente follow them here."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from agent._orders import PlacedOrder
from agent._supplier import ReceivedOrder
from agent._views import ApiModel
from agent.api._problems import BODY_TOO_LARGE, INVALID_INPUT, problem_responses
from agent.api.deps import CaseSystemDep, ServiceDep
from agent.errors import OrderStatusRefused, OrderUnknown, Unauthorised, WrongRole

__all__ = [
    "DepartingDeviceView",
    "OrderStatusInput",
    "OrderView",
    "PlacedOrderView",
    "SettlementView",
    "get_order",
    "list_departing_devices",
    "list_orders",
    "list_placed_orders",
    "list_settlements",
    "record_order_status",
    "router",
]

router = APIRouter(
    tags=["orders"],
    dependencies=[CaseSystemDep],
    responses=problem_responses(INVALID_INPUT, Unauthorised, WrongRole),
)

DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
ReasonCode = Literal[
    "client-unreachable", "device-not-found", "device-unsafe", "not-contracted", "no-capacity",
    "other",
]  # fmt: skip


class OrderView(ApiModel):
    """Supplier: an order received, its contact deadline and, in detail, the order itself."""

    order_id: str
    dossier_id: str
    gemeente_oin: str
    status: str
    device_states: dict[str, str]
    contact_before: date
    deadline: datetime
    overdue: bool
    received_at: datetime
    updated_at: datetime
    order: dict[str, Any] | None = None


class PlacedOrderView(ApiModel):
    """Gemeente: an order placed with a supplier (no personal data)."""

    order_id: str
    dossier_id: str
    device_id: str
    iso_code: str
    supplier_oin: str
    supplier_name: str
    attempt: int
    status: str
    active: bool
    contact_before: date
    overdue: bool
    last_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderStatusInput(ApiModel):
    """A status the supplier's planner records; ``problem`` and ``refused`` need a reason."""

    status: Literal["client-contacted", "taken-over", "inspected", "replaced", "problem", "refused"]
    device_id: DeviceId | None = None
    reason_code: ReasonCode | None = None
    reason_text: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class DepartingDeviceView(ApiModel):
    """Departing supplier: a device that leaves its contract."""

    dossier_id: str
    device_id: str
    iso_code: str
    serial_number: str | None
    contract_reference: str | None
    effective_date: date
    receiving_gemeentecode: str
    receiving_supplier_oin: str | None
    receiving_supplier_name: str | None
    # leaving; cancelled or withdrawn when the gemeente stopped the move.
    state: str


class SettlementView(ApiModel):
    """A takeover price offered or received, and its outcome."""

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


def _order(order: ReceivedOrder, *, detail: bool) -> OrderView:
    values = dataclasses.asdict(order)
    if not detail:
        values["order"] = None
    return OrderView.model_validate(values)


def _supplier_role(service: ServiceDep) -> None:
    if service.settings.role != "supplier":
        raise WrongRole("only a supplier agent receives takeover orders")


@router.get("/orders")
async def list_orders(
    service: ServiceDep, open_only: Annotated[bool, Query(alias="open")] = False
) -> list[OrderView]:
    """Supplier: orders received, soonest contact deadline first (``open=true``: still open)."""
    _supplier_role(service)
    return [_order(o, detail=False) for o in await service.supplier.orders(open_only=open_only)]


@router.get("/orders/{orderId}", responses=problem_responses(OrderUnknown))
async def get_order(
    order_id: Annotated[uuid.UUID, Path(alias="orderId")], service: ServiceDep
) -> OrderView:
    """Supplier: one order with the client's name, address and contact preferences."""
    _supplier_role(service)
    return _order(await service.supplier.order(str(order_id)), detail=True)


@router.post(
    "/orders/{orderId}/status",
    responses=problem_responses(BODY_TOO_LARGE, OrderUnknown, OrderStatusRefused),
)
async def record_order_status(
    order_id: Annotated[uuid.UUID, Path(alias="orderId")],
    status: OrderStatusInput,
    service: ServiceDep,
) -> OrderView:
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
    return _order(order, detail=False)


@router.get("/placed-orders")
async def list_placed_orders(
    service: ServiceDep, open_only: Annotated[bool, Query(alias="open")] = False
) -> list[PlacedOrderView]:
    """Gemeente: orders placed with suppliers, with status and overdue flag."""
    if service.settings.role != "gemeente":
        raise WrongRole("only a gemeente agent places takeover orders")
    orders: list[PlacedOrder] = await service.orders.list(open_only=open_only)
    return [PlacedOrderView.model_validate(dataclasses.asdict(o)) for o in orders]


@router.get("/departing-devices")
async def list_departing_devices(service: ServiceDep) -> list[DepartingDeviceView]:
    """Departing supplier: devices leaving its contract, by effective date."""
    _supplier_role(service)
    devices = await service.supplier.departing_devices()
    return [DepartingDeviceView.model_validate(dataclasses.asdict(d)) for d in devices]


@router.get("/settlements")
async def list_settlements(service: ServiceDep) -> list[SettlementView]:
    """Supplier: takeover prices offered and received, with their outcome."""
    _supplier_role(service)
    settlements = await service.supplier.settlements()
    return [SettlementView.model_validate(dataclasses.asdict(s)) for s in settlements]
