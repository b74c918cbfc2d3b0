"""Enrolment of an agent with a one-time code, and the operator issuing such codes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._store import KeyInput
from registry._wire import (
    EnrolmentCodeCreate,
    EnrolmentCreate,
    format_time,
    render_participant,
)
from registry.api.answers import EnrolmentCodeAnswer, ParticipantAnswer, answer_responses
from registry.api.deps import OperatorDep, RegistryDep
from registry.errors import (
    EnrolmentCodeInvalid,
    InvalidOin,
    InvalidPublicKey,
    InvalidRegistryInput,
    InvalidValidityWindow,
    OperatorCredentialRequired,
    ParticipantExists,
    ParticipantUnknown,
    PrivateKeyMaterial,
    UnknownGemeentecode,
)

__all__ = [
    "enrol",
    "issue_enrolment_code",
    "router",
]

router = APIRouter(tags=["enrolments"])


@router.post(
    "/enrolments",
    status_code=201,
    responses=answer_responses(
        ParticipantAnswer,
        EnrolmentCodeInvalid,
        InvalidOin,
        InvalidPublicKey,
        PrivateKeyMaterial,
        InvalidValidityWindow,
        InvalidRegistryInput,
        ParticipantExists,
        status=201,
    ),
)
async def enrol(request: Request, registry: RegistryDep, enrolment: EnrolmentCreate) -> Response:
    """Register an agent's endpoint, capabilities and public keys with a one-time code."""
    await registry.check_endpoint(enrolment.endpoint)
    record = await registry.store.enrol(
        code=enrolment.code,
        oin=enrolment.oin,
        endpoint=enrolment.endpoint.rstrip("/"),
        protocol_versions=enrolment.protocol_versions,
        message_types=enrolment.message_types,
        keys=[
            KeyInput(jwk=key.jwk, not_before=key.not_before, not_after=key.not_after)
            for key in enrolment.keys
        ],
    )
    data = render_participant(record, now=registry.clock.now())
    return registry.signer.answer(request, data, status_code=201)


@router.post(
    "/enrolment-codes",
    status_code=201,
    responses=answer_responses(
        EnrolmentCodeAnswer,
        OperatorCredentialRequired,
        UnknownGemeentecode,
        ParticipantUnknown,
        status=201,
    ),
)
async def issue_enrolment_code(
    request: Request, registry: RegistryDep, _operator: OperatorDep, target: EnrolmentCodeCreate
) -> Response:
    """Issue a one-time enrolment code for a gemeente or an onboarded supplier (operator)."""
    code, expires_at = await registry.store.issue_enrolment_code(
        gemeentecode=target.gemeentecode, supplier_oin=target.supplier_oin
    )
    data = {"code": code, "expiresAt": format_time(expires_at)}
    return registry.signer.answer(request, data, status_code=201)
