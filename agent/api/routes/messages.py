"""Inbound protocol messages: authenticated by their signature, answered with a signed receipt."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from agent.api.problems import problem_responses
from agent.errors import (
    ClockSkewWithRegistry,
    DirectoryUnavailable,
    DossierUnknown,
    IllegalTransition,
    MediaTypeUnsupported,
    MessageConflict,
    MessageNotHandled,
    SenderUnknown,
    StorageUnavailable,
)
from agent.service import AgentService
from protocol.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    BodyTooLarge,
    ClockSkew,
    DigestMismatch,
    DigestMissing,
    DuplicateJsonKey,
    InvalidMessage,
    KeyNotValid,
    KeyUnknown,
    MalformedJson,
    MalformedSignature,
    ObsoleteSignatureHeader,
    ReceiverMismatch,
    SignatureMissing,
    SignatureRepeated,
    UnknownCriticalHeader,
    UnsupportedVersion,
)
from protocol.signing import SIGNATURE_HEADER

__all__ = ["receive_message", "router"]

router = APIRouter(tags=["messages"])


def _header(name: str, description: str) -> dict[str, object]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


# The route reads the exact bytes itself (the signature covers them), so the body and the
# signature headers are described here (docs/protocol.md, ADR signing module).
_MESSAGE_REQUEST = {
    "parameters": [
        _header("Digest", "SHA-256 of the exact body bytes (RFC 3230), e.g. SHA-256=..."),
        _header(
            SIGNATURE_HEADER,
            "Detached JAdES compact JWS over the Digest header (sigD); at most once",
        ),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A protocol message: schemas/<messageType>.json",
                }
            }
        },
    },
}

_SIGNED = {"description": "", "schema": {"type": "string"}}
_RECEIPT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Signed receipt message (schemas/receipt.json)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["messageId", "messageType", "inReplyTo", "body"],
                    "properties": {"messageType": {"const": "receipt"}},
                }
            }
        },
        "headers": {
            "Digest": {**_SIGNED, "description": "SHA-256 of the exact receipt bytes (RFC 3230)"},
            SIGNATURE_HEADER: {**_SIGNED, "description": "Detached JAdES JWS over Digest"},
        },
    },
}

_PROBLEMS = problem_responses(
    MalformedSignature,
    DigestMissing,
    DigestMismatch,
    SignatureRepeated,
    AlgorithmNotAllowed,
    UnknownCriticalHeader,
    ClockSkew,
    MalformedJson,
    DuplicateJsonKey,
    UnsupportedVersion,
    InvalidMessage,
    SignatureMissing,
    ObsoleteSignatureHeader,
    BadSignature,
    KeyUnknown,
    KeyNotValid,
    SenderUnknown,
    DossierUnknown,
    MessageConflict,
    IllegalTransition,
    BodyTooLarge,
    ReceiverMismatch,
    MessageNotHandled,
    DirectoryUnavailable,
    ClockSkewWithRegistry,
    StorageUnavailable,
    MediaTypeUnsupported,
)


@router.post(
    "/messages",
    response_class=Response,
    responses={**_RECEIPT, **_PROBLEMS},
    openapi_extra=_MESSAGE_REQUEST,
)
async def receive_message(request: Request) -> Response:
    """Receive one signed protocol message; the answer is a signed receipt message."""
    # The protocol's hot path: the service without a dependency to solve (see agent.api.deps).
    service: AgentService = request.app.state.service
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise MediaTypeUnsupported("send the signed message as application/json")
    body = await request.body()
    signed = await service.receive_message(body, request.headers.items())
    return Response(content=signed.body, status_code=200, headers=signed.headers())
