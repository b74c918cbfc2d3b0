"""A static answer: whether the service is up (and the framework's own speed limit)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._wire import Answer
from registry.api.deps import RegistryDep

__all__ = [
    "get_status",
    "router",
]

router = APIRouter(prefix="/status", tags=["status"])

_STATUS = {"status": "ok"}


@router.get("", response_model=Answer)
async def get_status(request: Request, registry: RegistryDep) -> Response:
    """Signed constant answer: the service is up."""
    return registry.signer.answer(request, _STATUS)
