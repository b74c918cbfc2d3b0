"""Liveness and database reachability."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from agent.api.deps import ServiceDep

__all__ = ["Health", "health", "router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health")
async def health(service: ServiceDep) -> Health:
    """The agent runs and its database answers."""
    async with service.database.reading() as session:
        await session.execute(text("SELECT 1"))
    return Health(status="ok")
