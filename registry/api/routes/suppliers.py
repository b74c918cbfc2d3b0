"""Onboarding of suppliers by the operator."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._wire import Answer, SupplierCreate, render_participant
from registry.api.deps import OperatorDep, RegistryDep

__all__ = [
    "onboard_supplier",
    "router",
]

router = APIRouter(prefix="/suppliers", tags=["suppliers"])


@router.post("", response_model=Answer, status_code=201)
async def onboard_supplier(
    request: Request, registry: RegistryDep, _operator: OperatorDep, supplier: SupplierCreate
) -> Response:
    """Add a supplier by OIN, KvK number and name (operator); it enrols its agent later."""
    record = await registry.store.onboard_supplier(
        oin=supplier.oin, kvk_number=supplier.kvk_number, name=supplier.name
    )
    data = render_participant(record, now=registry.clock.now())
    return registry.signer.answer(request, data, status_code=201)
