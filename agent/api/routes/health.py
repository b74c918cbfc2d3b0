"""Liveness (``/v1/health``) and readiness (``/v1/health/ready``)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from agent.api.deps import ServiceDep
from agent.api.problems import problem_responses
from agent.api.readiness import Readiness, check_readiness
from agent.errors import NotReady

__all__ = ["Health", "health", "ready", "router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health")
async def health(service: ServiceDep) -> Health:
    """The agent runs and its database answers."""
    async with service.database.reading() as session:
        await session.execute(text("SELECT 1"))
    return Health(status="ok")


@router.get("/health/ready", responses=problem_responses(NotReady))
async def ready(service: ServiceDep) -> Readiness:
    """Ready for traffic: database usable, scheduler running, registry usable, clock right."""
    readiness = await check_readiness(service)
    if readiness.status != "ready":
        failing = [
            f"{name} ({readiness.reasons[name]})" if name in readiness.reasons else name
            for name, result in readiness.checks
            if result == "failing"
        ]
        raise NotReady(f"failing: {', '.join(failing)}")
    return readiness
