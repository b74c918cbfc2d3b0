"""Contracts between gemeenten and suppliers, added by the operator."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._wire import ContractCreate
from registry.api.answers import ContractAnswer, answer_responses
from registry.api.deps import OperatorDep, RegistryDep
from registry.errors import (
    InvalidRegistryInput,
    InvalidValidityWindow,
    OperatorCredentialRequired,
    ParticipantUnknown,
    UnknownGemeentecode,
)

__all__ = [
    "add_contract",
    "router",
]

router = APIRouter(prefix="/contracts", tags=["contracts"])


@router.post(
    "",
    status_code=201,
    responses=answer_responses(
        ContractAnswer,
        OperatorCredentialRequired,
        InvalidValidityWindow,
        UnknownGemeentecode,
        InvalidRegistryInput,
        ParticipantUnknown,
        status=201,
    ),
)
async def add_contract(
    request: Request, registry: RegistryDep, _operator: OperatorDep, contract: ContractCreate
) -> Response:
    """Record that a gemeente contracted a supplier for ISO 9999 prefixes (operator)."""
    contract_id = await registry.store.add_contract(**dict(contract))
    return registry.signer.answer(request, {"contractId": contract_id}, status_code=201)
