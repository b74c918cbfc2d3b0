"""BRP events pushed to the agent: CloudEvents 1.0 in structured JSON mode, one or a batch."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent.api.deps import ServiceDep
from agent.api.problems import BODY_TOO_LARGE, problem_responses
from agent.brp.events import parse_events
from agent.errors import (
    DirectoryUnavailable,
    EventBatchTooLarge,
    EventInvalid,
    MediaTypeUnsupported,
    Unauthorised,
)
from agent.settings import hash_token

__all__ = ["receive_brp_events", "router"]

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

_bearer = HTTPBearer(auto_error=False, description="The BRP's push token")


async def _brp(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = service.settings.brp_token_sha256
    presented = hash_token(credentials.credentials) if credentials is not None else ""
    # Constant-time comparison; no token configured means no push accepted.
    if expected is None or not hmac.compare_digest(presented, expected):
        raise Unauthorised("the BRP push token is required")


router = APIRouter(tags=["brp-events"], dependencies=[Depends(_brp)])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            SINGLE: {"schema": {"type": "object"}},
            BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@router.post(
    "/brp-events",
    status_code=202,
    openapi_extra=_BODY,
    responses=problem_responses(
        EventInvalid,
        Unauthorised,
        BODY_TOO_LARGE,
        EventBatchTooLarge,
        MediaTypeUnsupported,
        DirectoryUnavailable,
    ),
)
async def receive_brp_events(request: Request, service: ServiceDep) -> Response:
    """Store and handle BRP CloudEvents (one or a batch); 202 once stored."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (SINGLE, BATCH):
        raise MediaTypeUnsupported(f"send {SINGLE} or {BATCH}")
    events = parse_events(
        await request.body(),
        batch=media_type == BATCH,
        max_events=service.settings.brp_max_batch_events,
    )
    await service.brp.receive(events)
    return Response(status_code=202)
