"""Resolution by gemeentecode: the central lookup and contracted suppliers."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from registry._store import ParticipantRecord
from registry._wire import render_contract_match, render_participant
from registry.api.answers import (
    ContractedSuppliersAnswer,
    GemeentenAnswer,
    ParticipantAnswer,
    answer_responses,
)
from registry.api.deps import RegistryDep
from registry.errors import (
    InvalidRegistryInput,
    MessageTypeNotSupported,
    NoContract,
    ParticipantNotEnrolled,
    ParticipantUnknown,
)

__all__ = [
    "check_resolvable",
    "get_contracted_suppliers",
    "get_gemeente",
    "list_gemeenten",
    "normalise_iso_code",
    "router",
]

router = APIRouter(prefix="/gemeenten", tags=["gemeenten"])

GemeentecodePath = Annotated[
    str, Path(pattern=r"^[0-9]{4}$", description="CBS gemeentecode, 4 digits")
]
MessageTypeQuery = Annotated[
    str | None,
    Query(alias="messageType", max_length=100, description="Refuse if not supported (409)"),
]
_ISO_CODE = re.compile(r"[0-9]{2}( [0-9]{2}){0,2}")
_ISO_DIGITS = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}")


def check_resolvable(record: ParticipantRecord, message_type: str | None) -> None:
    """Enrolled, and supporting ``message_type`` when one is asked for."""
    label = record.gemeentecode or record.oin
    if record.endpoint is None:
        raise ParticipantNotEnrolled(f"{record.name} ({label}) has not enrolled its agent yet")
    if message_type is not None and message_type not in record.message_types:
        raise MessageTypeNotSupported(f"{record.name} ({label}) does not accept {message_type}")


def normalise_iso_code(value: str) -> str:
    """ISO 9999 code in groups of two (``12 22 03``); ``122203`` is accepted too."""
    if _ISO_CODE.fullmatch(value):
        return value
    if _ISO_DIGITS.fullmatch(value):
        return " ".join(value[index : index + 2] for index in range(0, len(value), 2))
    raise InvalidRegistryInput("isoCode must be an ISO 9999 code such as '12 22 03'")


@router.get("", responses=answer_responses(GemeentenAnswer))
async def list_gemeenten(request: Request, registry: RegistryDep) -> Response:
    """All 342 gemeenten, enrolled or not."""
    rows = await registry.store.gemeenten()
    data = [
        {
            "gemeentecode": row.gemeentecode,
            "name": row.name,
            "oin": row.oin,
            "enrolled": row.oin is not None,
        }
        for row in rows
    ]
    return registry.signer.answer(request, data)


@router.get(
    "/{gemeentecode}",
    responses=answer_responses(
        ParticipantAnswer, ParticipantUnknown, ParticipantNotEnrolled, MessageTypeNotSupported
    ),
)
async def get_gemeente(
    request: Request,
    registry: RegistryDep,
    gemeentecode: GemeentecodePath,
    message_type: MessageTypeQuery = None,
) -> Response:
    """Where a gemeente's agent is, which keys it signs with and what it supports."""
    record = await registry.store.gemeente(gemeentecode)
    check_resolvable(record, message_type)
    return registry.signer.answer(request, render_participant(record, now=registry.clock.now()))


@router.get(
    "/{gemeentecode}/contracted-suppliers",
    responses=answer_responses(
        ContractedSuppliersAnswer, ParticipantUnknown, NoContract, InvalidRegistryInput
    ),
)
async def get_contracted_suppliers(
    request: Request,
    registry: RegistryDep,
    gemeentecode: GemeentecodePath,
    iso_code: Annotated[str, Query(alias="isoCode", max_length=8, description="e.g. 12 22 03")],
    on: Annotated[date, Query(description="Date the contract must be valid on")],
) -> Response:
    """Suppliers contracted for an ISO 9999 code on a date, most preferred first."""
    code = normalise_iso_code(iso_code)
    matches = await registry.store.contracted_suppliers(gemeentecode, code, on)
    if not matches:
        raise NoContract(f"gemeente {gemeentecode} has no contract for {code} on {on.isoformat()}")
    return registry.signer.answer(request, [render_contract_match(match) for match in matches])
