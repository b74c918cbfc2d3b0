"""Contracts between gemeenten and suppliers, added by the operator."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._wire import Answer, ContractCreate
from registry.api.deps import OperatorDep, RegistryDep

__all__ = [
    "add_contract",
    "router",
]

router = APIRouter(prefix="/contracts", tags=["contracts"])


@router.post("", response_model=Answer, status_code=201)
async def add_contract(
    request: Request, registry: RegistryDep, _operator: OperatorDep, contract: ContractCreate
) -> Response:
    """Record that a gemeente contracted a supplier for ISO 9999 prefixes (operator)."""
    contract_id = await registry.store.add_contract(**dict(contract))
    return registry.signer.answer(request, {"contractId": contract_id}, status_code=201)
