"""The agent's FastAPI application factory (no import-time singletons)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext

import httpx
from fastapi import FastAPI

from agent.api.routes import (
    alternatives,
    brp_events,
    dossier_links,
    dossiers,
    health,
    messages,
    metrics,
    orders,
    outbox,
    provisions,
    tasks,
)
from agent.directory import Directory
from agent.errors import AgentError
from agent.runtime import open_service, run_scheduler, watch_event_loop
from agent.settings import AgentSettings
from agent.storage.database import Database
from agent.web import pages
from agent.web.werkbak import routes as werkbak
from protocol.clock import Clock
from protocol.errors import ProtocolError
from protocol.logs import TraceMiddleware
from registry.server_kit.api_rules import BASE_PATH, create_api
from registry.server_kit.deployment import log_development_mode
from registry.server_kit.endpoints import Resolver, system_resolver

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "1.0.0"
_log = logging.getLogger("meeverhuizen.agent")
_DESCRIPTION = (
    "Meeverhuizen agent of one organisation: receives signed protocol messages, keeps dossiers "
    "and the register of current provisions, and delivers its own messages through an outbox."
)


def create_app(
    settings: AgentSettings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    registry: Directory | None = None,
    random: Callable[[], float] | None = None,
    resolver: Resolver = system_resolver,
    database: Database | None = None,
    watch_loop: bool = True,
) -> FastAPI:
    """An agent application; its lifespan opens the database and runs the delivery scheduler.

    After start-up ``app.state.service`` is the :class:`agent.service.AgentService`.
    ``watch_loop``: measure the event loop's stalls (a host that runs several agents watches its
    one loop itself).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.environment == "development":
            log_development_mode(_log, "agent")
        async with open_service(
            settings,
            clock=clock,
            http=http,
            registry=registry,
            random=random,
            resolver=resolver,
            database=database,
        ) as service:
            app.state.service = service
            async with watch_event_loop(service.metrics) if watch_loop else nullcontext():
                if not settings.scheduler_enabled:
                    yield
                    return
                async with run_scheduler(service):
                    yield

    app = create_api(
        title="Meeverhuizen agent",
        version=API_VERSION,
        description=_DESCRIPTION,
        error_types=[AgentError, ProtocolError],
        max_body_bytes=settings.max_body_bytes,
        contact=settings.api_contact,
        lifespan=lifespan,
    )
    api_routes = (
        messages,
        dossiers,
        alternatives,
        dossier_links,
        provisions,
        outbox,
        tasks,
        brp_events,
        orders,
    )
    for module in (*api_routes, health):
        app.include_router(module.router, prefix=BASE_PATH)
    # The client's pages (HTML) and the Prometheus metrics: outside /v1 and the OpenAPI document.
    app.include_router(pages.router)
    app.include_router(werkbak.router)
    app.include_router(metrics.router)
    # A span per request (protocol.logs), in the trace the caller's traceparent names.
    app.add_middleware(TraceMiddleware)
    return app
