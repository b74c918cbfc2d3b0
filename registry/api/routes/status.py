"""Whether the service is up (static; also the framework's own speed limit) and ready."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry.api.answers import ReadinessAnswer, StatusAnswer, answer_responses
from registry.api.deps import RegistryDep
from registry.errors import RegistryNotReady

__all__ = [
    "get_health",
    "get_readiness",
    "get_status",
    "router",
]

router = APIRouter(tags=["status"])

_STATUS = {"status": "ok"}


@router.get("/status", responses=answer_responses(StatusAnswer))
async def get_status(request: Request, registry: RegistryDep) -> Response:
    """Signed constant answer: the service is up."""
    return registry.signer.answer(request, _STATUS)


@router.get("/health", responses=answer_responses(StatusAnswer))
async def get_health(request: Request, registry: RegistryDep) -> Response:
    """Liveness: the process answers (signed constant answer)."""
    return registry.signer.answer(request, _STATUS)


@router.get("/health/ready", responses=answer_responses(ReadinessAnswer, RegistryNotReady))
async def get_readiness(request: Request, registry: RegistryDep) -> Response:
    """Readiness: the database answers; 503 problem+json otherwise."""
    await registry.store.ping()
    return registry.signer.answer(request, {"status": "ready", "checks": {"database": "ok"}})
