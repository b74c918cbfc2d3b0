"""Resolution by OIN, key history, signed self-service changes and key revocation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ValidationError

from protocol.errors import ClockSkew, DuplicateJsonKey, MalformedJson, ProtocolError
from protocol.signing import VerificationKey, VerificationPolicy, verify_body
from registry._state import RegistryState
from registry._store import EntryChange, KeyInput, KeyRecord
from registry._wire import (
    EntryChangeRequest,
    GemeentenAssignment,
    KeyRevocation,
    render_key,
    render_participant,
)
from registry.api.answers import (
    KeyAnswer,
    KeysAnswer,
    ParticipantAnswer,
    answer_responses,
    signed_request,
)
from registry.api.deps import OperatorDep, RegistryDep
from registry.api.routes.gemeenten import MessageTypeQuery, check_resolvable
from registry.errors import (
    InvalidPublicKey,
    InvalidRegistryInput,
    InvalidValidityWindow,
    MessageTypeNotSupported,
    OperatorCredentialRequired,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    PrivateKeyMaterial,
    RegistryKeyUnknown,
    RequestReplayed,
    SignedChangeRejected,
)

__all__ = [
    "KEY_ANSWER_MAX_AGE",
    "assign_gemeenten",
    "change_entry",
    "get_keys",
    "get_participant",
    "revoke_key",
    "router",
    "verified_request",
]

_Signed = TypeVar("_Signed", bound=BaseModel)

router = APIRouter(prefix="/participants", tags=["participants"])
# Key answers are kept by clients for at most a minute, so a revocation is seen within 60 s.
KEY_ANSWER_MAX_AGE = 60

OinPath = Annotated[str, Path(pattern=r"^[0-9]{20}$", description="OIN, 20 digits")]
KidPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="RFC 7638 kid")]


@router.get(
    "/{oin}",
    responses=answer_responses(
        ParticipantAnswer, ParticipantUnknown, ParticipantNotEnrolled, MessageTypeNotSupported
    ),
)
async def get_participant(
    request: Request, registry: RegistryDep, oin: OinPath, message_type: MessageTypeQuery = None
) -> Response:
    """Where a participant's agent is, which keys it signs with and what it supports."""
    record = await registry.store.participant(oin)
    check_resolvable(record, message_type)
    return registry.signer.answer(request, render_participant(record, now=registry.clock.now()))


@router.get("/{oin}/keys", responses=answer_responses(KeysAnswer, ParticipantUnknown))
async def get_keys(
    request: Request,
    registry: RegistryDep,
    oin: OinPath,
    at: Annotated[AwareDatetime | None, Query(description="Only keys valid at this time")] = None,
) -> Response:
    """Every key the participant published, or those valid at a past or present time."""
    keys = await registry.store.keys(oin)
    selected = [key for key in keys if at is None or key.valid_at(at)]
    data = [render_key(key) for key in selected]
    return registry.signer.answer(request, data, max_age=KEY_ANSWER_MAX_AGE)


def _verification_keys(keys: tuple[KeyRecord, ...]) -> list[VerificationKey]:
    return [
        VerificationKey(
            jwk=key.jwk,
            not_before=key.not_before,
            not_after=key.not_after,
            revoked_at=key.revoked_at,
        )
        for key in keys
    ]


async def verified_request(
    registry: RegistryState,
    request: Request,
    oin: str,
    model: type[_Signed],
    signed_at: Callable[[_Signed], datetime],
) -> _Signed:
    """A signed write of participant ``oin``: its body verified against the participant's current
    keys, read as ``model``, naming ``oin`` and made (``signed_at``) within the allowed window."""
    document = await _verified_document(registry, request, oin)
    try:
        signed = model.model_validate(document)
    except ValidationError as exc:
        # The fields the body got wrong, by name only (never their values).
        fields = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
        raise InvalidRegistryInput(f"invalid fields: {', '.join(fields)}") from exc
    if getattr(signed, "oin", None) != oin:
        raise SignedChangeRejected("the signed body names another participant")
    if abs(signed_at(signed) - registry.clock.now()) > registry.settings.request_clock_skew:
        raise RequestReplayed("the time in the signed body is outside the allowed window")
    return signed


async def _verified_document(registry: RegistryState, request: Request, oin: str) -> Any:
    """The JSON body of ``request``, verified against the current keys of participant ``oin``."""
    body = await request.body()
    headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
    ]
    keys = await registry.store.current_keys(oin)
    settings = registry.settings
    policy = VerificationPolicy(
        max_body_bytes=settings.max_body_bytes, clock_skew=settings.request_clock_skew
    )
    try:
        return verify_body(
            body, headers, _verification_keys(keys), policy=policy, now=registry.clock.now()
        )
    except ClockSkew as exc:
        raise RequestReplayed("the signing time is outside the allowed window") from exc
    except (MalformedJson, DuplicateJsonKey) as exc:
        raise InvalidRegistryInput(f"{exc.code}: {exc.detail}") from exc
    except ProtocolError as exc:
        raise SignedChangeRejected(f"{exc.code}: {exc.detail}") from exc


def _entry_change(change: EntryChangeRequest) -> EntryChange:
    return EntryChange(
        endpoint=change.endpoint.rstrip("/") if change.endpoint else None,
        protocol_versions=tuple(change.protocol_versions) if change.protocol_versions else None,
        message_types=tuple(change.message_types) if change.message_types else None,
        add_keys=tuple(
            KeyInput(jwk=key.jwk, not_before=key.not_before, not_after=key.not_after)
            for key in change.add_keys
        ),
        retire_keys=dict(change.retire_keys),
        revoke_keys=dict(change.revoke_keys),
    )


@router.post(
    "/{oin}/entry-changes",
    responses=answer_responses(
        ParticipantAnswer,
        SignedChangeRejected,
        RequestReplayed,
        InvalidRegistryInput,
        InvalidPublicKey,
        PrivateKeyMaterial,
        InvalidValidityWindow,
        ParticipantUnknown,
        ParticipantNotEnrolled,
    ),
    openapi_extra=signed_request("EntryChangeRequest"),
)
async def change_entry(request: Request, registry: RegistryDep, oin: OinPath) -> Response:
    """Change one's own entry (endpoint, keys) with a body signed by a currently valid key."""
    change = await verified_request(
        registry, request, oin, EntryChangeRequest, lambda c: c.requested_at
    )
    if change.endpoint is not None:
        await registry.check_endpoint(change.endpoint)
    record = await registry.store.apply_change(
        oin=oin,
        request_id=change.request_id,
        requested_at=change.requested_at,
        change=_entry_change(change),
    )
    return registry.signer.answer(request, render_participant(record, now=registry.clock.now()))


@router.post(
    "/{oin}/keys/{kid}/revocation",
    responses=answer_responses(
        KeyAnswer,
        OperatorCredentialRequired,
        ParticipantUnknown,
        RegistryKeyUnknown,
        InvalidRegistryInput,
    ),
)
async def revoke_key(
    request: Request,
    registry: RegistryDep,
    _operator: OperatorDep,
    oin: OinPath,
    kid: KidPath,
    revocation: Annotated[KeyRevocation, Body()],
) -> Response:
    """Revoke a participant's key (operator); the key stays in the history."""
    key = await registry.store.revoke_key(
        oin=oin, kid=kid, reason=revocation.reason, at=revocation.revoked_at
    )
    return registry.signer.answer(request, render_key(key))


@router.post(
    "/{oin}/served-gemeenten",
    responses=answer_responses(
        ParticipantAnswer, OperatorCredentialRequired, ParticipantUnknown, InvalidRegistryInput
    ),
)
async def assign_gemeenten(
    request: Request,
    registry: RegistryDep,
    _operator: OperatorDep,
    oin: OinPath,
    assignment: Annotated[GemeentenAssignment, Body()],
) -> Response:
    """Set the gemeentecodes a gemeente's agent serves (operator): its own, and a region's."""
    record = await registry.store.assign_gemeenten(oin=oin, gemeentecodes=assignment.gemeentecodes)
    return registry.signer.answer(request, render_participant(record, now=registry.clock.now()))
