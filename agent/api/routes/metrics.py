"""Prometheus metrics at ``/metrics`` (outside ``/v1`` and the OpenAPI document, issue 8)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from agent._metrics import CONTENT_TYPE
from agent.api.deps import ServiceDep

__all__ = ["metrics", "router"]

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    """Prometheus text exposition of this agent's metrics."""
    await service.metrics.refresh_outbox(service.database, service.clock.now())
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
