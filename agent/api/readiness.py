"""Readiness of one agent: database usable, scheduler running, registry usable, clock right.

The database fails while it cannot be read, or while its latest write failed (a full disk, a
read-only file); the clock fails when the registry's signed time is further from this
machine's clock than the allowed skew, which is a clock to set right, not a registry that is down.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from agent.service import AgentService
from registry.client import RegistryClient
from registry.errors import RegistryClockSkew, RegistryError, RegistryUnavailable

__all__ = ["Readiness", "ReadinessChecks", "check_readiness"]

CheckResult = Literal["ok", "disabled", "failing"]


class ReadinessChecks(BaseModel):
    database: CheckResult
    scheduler: CheckResult
    registry: CheckResult
    clock: CheckResult


class Readiness(BaseModel):
    status: Literal["ready", "not-ready"]
    checks: ReadinessChecks
    reasons: dict[str, str] = {}


async def _database(service: AgentService, reasons: dict[str, str]) -> CheckResult:
    try:
        async with service.database.reading() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any driver or pool error means: not reachable now
        reasons["database"] = "the database cannot be read"
        return "failing"
    if service.database.write_failure is not None:
        reasons["database"] = f"the latest write failed: {service.database.write_failure}"
        return "failing"
    return "ok"


def _clock(service: AgentService, reasons: dict[str, str]) -> CheckResult:
    directory = service.directory
    offset = directory.clock_offset if isinstance(directory, RegistryClient) else None
    if offset is None:
        return "ok"  # no signed answer seen yet, or not the registry client
    if abs(offset) > service.settings.clock_skew:
        seconds = int(offset.total_seconds())
        reasons["clock"] = f"the registry's signed time differs from this clock by {seconds} s"
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
    except RegistryClockSkew:
        return "ok"  # the registry answered; the clock check reports the difference
    except RegistryUnavailable:
        return "failing"
    except RegistryError:
        return "ok"  # the registry answered (e.g. not enrolled yet)
    except Exception:  # a directory that is not the registry client failed
        return "failing"
    return "ok"


async def check_readiness(service: AgentService) -> Readiness:
    """Run every check; ready when none fails."""
    reasons: dict[str, str] = {}
    database = await _database(service, reasons)
    registry = await _registry(service)
    checks = ReadinessChecks(
        database=database,
        scheduler=_scheduler(service),
        registry=registry,
        clock=_clock(service, reasons),
    )
    failing = "failing" in checks.model_dump().values()
    status: Literal["ready", "not-ready"] = "not-ready" if failing else "ready"
    return Readiness(status=status, checks=checks, reasons=reasons)
