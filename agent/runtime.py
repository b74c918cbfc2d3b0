"""Running one agent: its database, registry and HTTP clients, its scheduler, its loop watch."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random as random_module
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from httpx_aiohttp import AiohttpTransport
from starlette.types import ASGIApp

from agent.core.hooks import Job
from agent.directory import Directory
from agent.metrics import AgentMetrics
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.storage.registry_answers import RegistryAnswers
from protocol.clock import Clock, SystemClock
from protocol.logs import configure_logging
from registry.client import RegistryClient
from registry.server_kit.deployment import DeploymentSettings, uvicorn_proxy_options
from registry.server_kit.endpoints import Resolver, system_resolver
from registry.server_kit.tls import ServerTlsSettings, client_ssl_context, uvicorn_tls_options

__all__ = [
    "ScenarioClock",
    "open_service",
    "outgoing_http_client",
    "run_scheduler",
    "serve_forever",
    "tune_garbage_collection",
    "watch_event_loop",
]

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


def serve_forever(
    app: ASGIApp,
    *,
    tls: ServerTlsSettings,
    deployment: DeploymentSettings,
    host: str,
    port: int,
    log_level: str,
) -> None:
    """Serve ``app`` with uvicorn until stopped: JSON log lines, TLS and proxies as configured."""
    import uvicorn

    from agent.consent.links import RedactLinkTokens

    # Personal link tokens never reach any log line.
    configure_logging(log_level, filters=[RedactLinkTokens()])
    tune_garbage_collection()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        **uvicorn_tls_options(tls),
        **uvicorn_proxy_options(deployment),
    )


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


class ScenarioClock:
    """The wall clock plus the days written in a file (the demo's scenarios let days pass).

    The file is read again only when it changed (another file, or a new time or size). The
    registry's statements are checked against the wall clock, which this clock leaves alone.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[tuple[int, int, int], timedelta] = ((-1, -1, -1), timedelta(0))

    def _offset(self) -> timedelta:
        try:
            status = self._path.stat()
        except FileNotFoundError:
            return timedelta(0)
        changed = (status.st_ino, status.st_mtime_ns, status.st_size)
        if changed != self._seen[0]:
            text = self._path.read_text("utf-8").strip() or "0"
            self._seen = (changed, timedelta(days=float(text)))
        return self._seen[1]

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset()


async def _registry_client(
    settings: AgentSettings, http: httpx.AsyncClient, clock: Clock, database: Database
) -> Directory:
    """The registry client, with the verified answers kept before a restart taken back."""
    client = RegistryClient(
        settings.registry_url,
        settings.trust_anchor(),
        http=http,
        clock=clock,
        max_staleness=timedelta(seconds=settings.registry_max_staleness_seconds),
        # The same allowance as for messages and as readiness reports (clock_skew_seconds).
        clock_skew=settings.clock_skew,
        answers=RegistryAnswers(database),
    )
    await client.restore()
    return client


@asynccontextmanager
async def open_service(
    settings: AgentSettings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    registry: Directory | None = None,
    random: Callable[[], float] | None = None,
    resolver: Resolver = system_resolver,
    database: Database | None = None,
) -> AsyncIterator[AgentService]:
    """The agent's service on its migrated database; closes what it opened on exit.

    ``resolver`` answers the addresses of other agents' hosts for the endpoint check.
    ``database``: one sharing a connection pool with other hosted organisations (``agent.hosting``);
    by default the settings' own.
    """
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(outgoing_http_client(settings))
        registry_clock = clock or SystemClock()
        if clock is None and settings.scenario_clock_file is not None:
            clock = ScenarioClock(settings.scenario_clock_file)
        clock = clock or registry_clock
        if database is None:
            database = Database(settings.database_url, schema=settings.database_schema)
            stack.push_async_callback(database.dispose)
        await database.create_tables()
        service = AgentService(
            settings,
            database=database,
            directory=registry or await _registry_client(settings, http, registry_clock, database),
            http=http,
            clock=clock,
            random=random or random_module.random,
            resolver=resolver,
        )
        _count_resolutions(service)
        yield service


def _count_resolutions(service: AgentService) -> None:
    if isinstance(service.directory, RegistryClient):
        service.directory.on_resolution = service.metrics.registry_resolution


# How long a stopping agent waits for its running jobs (a delivery pass, a feed read).
_JOBS_FINISH_SECONDS = 10.0


@asynccontextmanager
async def run_scheduler(service: AgentService) -> AsyncIterator[AsyncIOScheduler]:
    """The APScheduler jobs: delivery passes (woken after each enqueue) and every registered job."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    # A woken pass always runs; a pass on the interval only when the gate says something is due.
    running, again, woken = False, False, True
    # The jobs running now: at the end they may finish before the database closes.
    jobs: set[asyncio.Future[None]] = set()

    def tracked(run: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            running_job = asyncio.ensure_future(run())
            jobs.add(running_job)
            try:
                await running_job
            finally:
                jobs.discard(running_job)

        return job

    async def deliver() -> None:
        nonlocal running, again, woken
        if not woken and not await service.delivery_due():
            return
        woken = False
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
        tracked(deliver),
        "interval",
        seconds=service.settings.delivery_interval_seconds,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

    for registered in service.hooks.jobs:
        # Without a first run time the trigger sets it (one interval on); None would pause it.
        first = {"next_run_time": datetime.now(UTC)} if registered.at_start else {}
        scheduler.add_job(
            tracked(_gated(service, registered)),
            "interval",
            seconds=registered.seconds,
            max_instances=1,
            coalesce=True,
            name=registered.name,
            **first,
        )

    def wake() -> None:
        nonlocal again, woken
        woken = True
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
        # A job cancelled in the middle of a statement leaves its database connection open; so
        # running jobs finish first (a while at most), and the scheduler cancels the rest.
        scheduler.pause()
        if jobs:
            await asyncio.wait(jobs, timeout=_JOBS_FINISH_SECONDS)
        scheduler.shutdown(wait=False)
        await asyncio.gather(*jobs, return_exceptions=True)


def _gated(service: AgentService, registered: Job) -> Callable[[], Awaitable[None]]:
    """The job's run when its gate says something is due; delivery woken when it asks."""
    gate = registered.gate

    async def job() -> None:
        if gate is not None and not await gate.due():
            return
        try:
            woke = await registered.run()
        finally:
            if gate is not None:
                gate.ran()
        if woke:
            service.wake()

    return job


_LOOP_TICK_SECONDS = 0.02


@asynccontextmanager
async def watch_event_loop(metrics: AgentMetrics) -> AsyncIterator[None]:
    """Measure, while the block runs, how late the event loop runs a 20 ms timer.

    A statement, an import or a computation that holds the loop shows up as a late timer:
    nothing else (health checks, inbound messages) was served meanwhile.
    """
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        while True:
            asked = loop.time() + _LOOP_TICK_SECONDS
            await asyncio.sleep(_LOOP_TICK_SECONDS)
            metrics.loop_stall(max(loop.time() - asked, 0.0))

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
