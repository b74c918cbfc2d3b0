"""Onboarding of suppliers by the operator."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._wire import SupplierCreate, render_participant
from registry.api.answers import ParticipantAnswer, answer_responses
from registry.api.deps import OperatorDep, RegistryDep
from registry.errors import InvalidOin, OperatorCredentialRequired, ParticipantExists

__all__ = [
    "onboard_supplier",
    "router",
]

router = APIRouter(prefix="/suppliers", tags=["suppliers"])


@router.post(
    "",
    status_code=201,
    responses=answer_responses(
        ParticipantAnswer, OperatorCredentialRequired, InvalidOin, ParticipantExists, status=201
    ),
)
async def onboard_supplier(
    request: Request, registry: RegistryDep, _operator: OperatorDep, supplier: SupplierCreate
) -> Response:
    """Add a supplier by OIN, KvK number and name (operator); it enrols its agent later."""
    record = await registry.store.onboard_supplier(
        oin=supplier.oin, kvk_number=supplier.kvk_number, name=supplier.name
    )
    data = render_participant(record, now=registry.clock.now())
    return registry.signer.answer(request, data, status_code=201)
