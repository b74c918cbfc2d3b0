"""Readiness of one agent: database reachable, scheduler running, registry usable."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from agent.service import AgentService
from registry.errors import RegistryError, RegistryUnavailable

__all__ = ["Readiness", "ReadinessChecks", "check_readiness"]

CheckResult = Literal["ok", "disabled", "failing"]


class ReadinessChecks(BaseModel):
    database: CheckResult
    scheduler: CheckResult
    registry: CheckResult


class Readiness(BaseModel):
    status: Literal["ready", "not-ready"]
    checks: ReadinessChecks


async def _database(service: AgentService) -> CheckResult:
    try:
        async with service.database.reading() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any driver or pool error means: not reachable now
        return "failing"
    return "ok"


def _scheduler(service: AgentService) -> CheckResult:
    if not service.settings.scheduler_enabled:
        return "disabled"
    return "ok" if service.scheduler_running() else "failing"


async def _registry(service: AgentService) -> CheckResult:
    # The registry client answers from its verified cache within the staleness bound, so this
    # fails only when the registry is down for longer than that (or never answered).
    try:
        await service.directory.participant(service.settings.oin)
    except RegistryUnavailable:
        return "failing"
    except RegistryError:
        return "ok"  # the registry answered (e.g. not enrolled yet)
    except Exception:  # a directory that is not the registry client failed
        return "failing"
    return "ok"


async def check_readiness(service: AgentService) -> Readiness:
    """Run every check; ready when none fails."""
    checks = ReadinessChecks(
        database=await _database(service),
        scheduler=_scheduler(service),
        registry=await _registry(service),
    )
    failing = "failing" in checks.model_dump().values()
    return Readiness(status="not-ready" if failing else "ready", checks=checks)
