"""Prometheus metrics at ``/metrics`` (outside ``/v1`` and the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from agent.api.deps import ServiceDep
from agent.metrics import CONTENT_TYPE

__all__ = ["metrics", "router"]

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    """Prometheus text exposition of this agent's metrics."""
    await service.outbox.measure()
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
