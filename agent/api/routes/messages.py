"""Inbound protocol messages: authenticated by their signature, answered with a signed receipt."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from agent.api.deps import ServiceDep

__all__ = ["receive_message", "router"]

router = APIRouter(tags=["messages"])

_MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/messages",
    response_class=Response,
    responses={200: {"description": "Signed receipt", "content": {"application/json": {}}}},
    openapi_extra=_MESSAGE_BODY,
)
async def receive_message(request: Request, service: ServiceDep) -> Response:
    """Receive one signed protocol message; the answer is a signed receipt message."""
    body = await request.body()
    signed = await service.receive_message(body, request.headers.items())
    return Response(content=signed.body, status_code=200, headers=signed.headers())
