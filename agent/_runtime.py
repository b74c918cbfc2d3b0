"""Building and running one agent: the service with its database, registry client and scheduler."""

from __future__ import annotations

import gc
import random as random_module
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from httpx_aiohttp import AiohttpTransport

from agent._db import Database
from agent._directory import Directory
from agent._service import AgentService
from agent.settings import AgentSettings
from protocol.clock import Clock, SystemClock
from registry.tls import client_ssl_context

__all__ = ["open_service", "outgoing_http_client", "run_scheduler", "tune_garbage_collection"]

# Young collections after this many allocations instead of CPython's 700 (docs/performance.md).
_GC_THRESHOLDS = (10_000, 10, 10)


def tune_garbage_collection() -> None:
    """For a serving process, once everything is imported and the app is built.

    Every request allocates thousands of short-lived objects (pydantic models, rows, dicts), and
    with CPython's defaults the cyclic collector ran more than once per handover, its full
    collections walking the start-up objects too: about a seventh of the CPU (measured
    in-process). The start-up objects
    are frozen out of collections, and young collections run 14 times less often.
    """
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def outgoing_http_client(settings: AgentSettings) -> httpx.AsyncClient:
    """The one client for calls to other agents and the registry, with our TLS certificate.

    httpx on aiohttp's connection pool (``httpx-aiohttp``): a quarter of the CPU per request of
    httpx's own pool (docs/performance.md, Agent).
    """
    context = client_ssl_context(
        certificate_file=settings.outgoing_tls_certificate_file,
        key_file=settings.outgoing_tls_key_file,
        ca_file=settings.outgoing_tls_ca_file,
    )
    return httpx.AsyncClient(timeout=10.0, transport=AiohttpTransport(verify=context))


def _registry_client(settings: AgentSettings, http: httpx.AsyncClient, clock: Clock) -> Directory:
    from registry.client import RegistryClient

    return RegistryClient(
        settings.registry_url,
        settings.trust_anchor(),
        http=http,
        clock=clock,
        max_staleness=timedelta(seconds=settings.registry_max_staleness_seconds),
    )


@asynccontextmanager
async def open_service(
    settings: AgentSettings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    registry: Directory | None = None,
    random: Callable[[], float] | None = None,
) -> AsyncIterator[AgentService]:
    """The agent's service with its tables created; closes what it opened on exit."""
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(outgoing_http_client(settings))
        clock = clock or SystemClock()
        database = Database(settings.database_url)
        stack.push_async_callback(database.dispose)
        await database.create_tables()
        service = AgentService(
            settings,
            database=database,
            directory=registry or _registry_client(settings, http, clock),
            http=http,
            clock=clock,
            random=random or random_module.random,
        )
        _count_resolutions(service)
        yield service


def _count_resolutions(service: AgentService) -> None:
    from registry.client import RegistryClient

    if isinstance(service.directory, RegistryClient):
        service.directory.on_resolution = service.metrics.registry_resolution


@asynccontextmanager
async def run_scheduler(service: AgentService) -> AsyncIterator[AsyncIOScheduler]:
    """The APScheduler interval job that runs delivery passes, woken after each enqueue."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    running, again = False, False

    async def deliver() -> None:
        nonlocal running, again
        running = True
        try:
            # A wake during a pass asks for one more round instead of a (skipped) job run.
            again = True
            while again:
                again = False
                await service.deliver_until_quiet()
        finally:
            running = False

    job = scheduler.add_job(
        deliver,
        "interval",
        seconds=service.settings.delivery_interval_seconds,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

    async def fire_deadlines() -> None:
        # Issue 7: deadlines live in the database (agent/_deadlines.py); a restart keeps them.
        if await service.deadlines.run_due():
            service.wake()

    scheduler.add_job(
        fire_deadlines,
        "interval",
        seconds=service.settings.takeover.deadline_interval_seconds,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

    async def consent_reminders() -> None:
        # Issue 6: reminders, a task for a consulent, then expiry; the job uses the service clock.
        await service.consent.run_due()
        service.wake()

    scheduler.add_job(
        consent_reminders,
        "interval",
        seconds=service.settings.consent.job_interval_seconds,
        max_instances=1,
        coalesce=True,
    )

    def wake() -> None:
        nonlocal again
        if running:
            again = True
        else:
            job.modify(next_run_time=datetime.now(UTC))

    scheduler.start()
    service.set_wake(wake)
    service.scheduler_running = lambda: bool(scheduler.running)
    try:
        yield scheduler
    finally:
        service.set_wake(lambda: None)
        service.scheduler_running = lambda: False
        scheduler.shutdown(wait=False)
