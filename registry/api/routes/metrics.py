"""Prometheus metrics at ``/metrics`` (outside ``/v1`` and the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry._metrics import CONTENT_TYPE, RegistryMetrics
from registry.api.deps import RegistryDep

__all__ = ["metrics", "router"]

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request, registry: RegistryDep) -> Response:
    """Prometheus text exposition of the registry's metrics."""
    collected: RegistryMetrics = request.app.state.metrics
    gemeenten = await registry.store.gemeenten()
    enrolled = sum(1 for gemeente in gemeenten if gemeente.oin is not None)
    collected.gemeenten(enrolled=enrolled, total=len(gemeenten))
    return Response(collected.render(), media_type=CONTENT_TYPE)
