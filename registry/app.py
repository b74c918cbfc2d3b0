"""The registry service as a FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from protocol.clock import Clock, SystemClock
from protocol.jwk import generate_private_jwk
from registry import _pages as pages
from registry._answers import SigningMiddleware
from registry._metrics import MetricsMiddleware, RegistryMetrics
from registry._state import RegistryState
from registry._wire import EntryChangeRequest
from registry.api.answers import SIGNED_ANSWER_HEADERS, FreshnessStatement, RegistryProblem
from registry.api.routes import (
    audit,
    contracts,
    enrolments,
    gemeenten,
    metrics,
    monitoring,
    participants,
    status,
    suppliers,
)
from registry.errors import RegistryError
from registry.monitoring import DailyReport
from registry.server_kit.api_rules import BASE_PATH, create_api
from registry.server_kit.deployment import log_development_mode
from registry.server_kit.endpoints import Resolver, system_resolver
from registry.settings import RegistrySettings, load_signing_jwk

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "1.0.0"
_log = logging.getLogger("meeverhuizen.registry")
_DESCRIPTION = (
    "Who is where, with which keys, and which supplier a gemeente has contracted. Every answer "
    "is signed with the registry key (Digest + nlgov-adr-payload-sig); see docs/registry.md."
)


def _signing_jwk(settings: RegistrySettings) -> dict[str, Any]:
    jwk = load_signing_jwk(settings)
    if jwk is not None:
        return jwk
    # Development only (settings refuse this elsewhere): a key that lives as long as the process.
    jwk = generate_private_jwk("EdDSA")
    _log.warning("registry_ephemeral_key", extra={"kid": jwk["kid"]})
    return jwk


def create_app(
    settings: RegistrySettings, *, clock: Clock | None = None, resolver: Resolver | None = None
) -> FastAPI:
    """A registry application; its database is migrated and the gemeenten seeded on start.

    ``resolver``: how endpoint host names are resolved (default: the operating system's).
    """
    registry = RegistryState(
        settings,
        signing_jwk=_signing_jwk(settings),
        clock=clock or SystemClock(),
        resolver=resolver or system_resolver,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.environment == "development":
            log_development_mode(_log, "registry")
        await registry.ensure_started()
        try:
            yield
        finally:
            await registry.close()

    app = create_api(
        title="Meeverhuizen registry",
        version=API_VERSION,
        description=_DESCRIPTION,
        error_types=[RegistryError],
        max_body_bytes=settings.max_body_bytes,
        contact=settings.api_contact,
        problem_model=RegistryProblem,
        answer_headers=SIGNED_ANSWER_HEADERS,
        schemas=[EntryChangeRequest, FreshnessStatement, DailyReport],
        lifespan=lifespan,
    )
    app.state.registry = registry
    for module in (
        gemeenten,
        participants,
        enrolments,
        suppliers,
        contracts,
        audit,
        status,
        monitoring,
    ):
        app.include_router(module.router, prefix=BASE_PATH)
    # Prometheus metrics: outside /v1 and the OpenAPI document, like the agent's.
    app.include_router(metrics.router)
    # The public monitoring pages: HTML for people, outside /v1 and the OpenAPI document.
    app.include_router(pages.router)
    app.state.metrics = RegistryMetrics()
    app.add_middleware(SigningMiddleware, signer=registry.signer)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
