"""The host application: each hosted organisation's agent, and one endpoint for all their messages.

``POST /v1/messages`` reads the receiver's OIN from the message and hands the request, unchanged,
to that organisation's agent, which checks it as any agent does (signature, receiver, sender).
A message whose receiver cannot be read, or is not hosted here, goes to the first organisation's
agent, whose checks refuse it with the problem any agent would give (docs/protocol.md, section 7).
Every other request goes by its host name to the organisation whose ``public_base_url`` has it:
its API, its client pages and its werkbak, with cookies of that host only. At any other host name
the host answers only its own ``/v1/health`` and ``/v1/health/ready`` (every agent ready).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import URL
from starlette.responses import JSONResponse, Response
from starlette.routing import Router
from starlette.types import Message, Receive, Scope, Send

from agent.api.readiness import check_readiness
from agent.app import API_VERSION, create_app
from agent.errors import AgentError, NotReady, OrganisationNotHosted
from agent.hosting.settings import Hosting, host_name
from agent.runtime import watch_event_loop
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.storage.database import Database
from registry.server_kit.api_rules import BASE_PATH, problem_response

__all__ = ["HostApp", "create_host_app"]

MESSAGES_PATH = f"{BASE_PATH}/messages"
HEALTH_PATH = f"{BASE_PATH}/health"
READY_PATH = f"{BASE_PATH}/health/ready"
_VERSION = {"API-Version": API_VERSION}


def create_host_app(hosting: Hosting, **options: Any) -> HostApp:
    """The ASGI application of a host; ``options`` go to each organisation's ``create_app``.

    On PostgreSQL the organisations on one database share its connection pool, each in its own
    schema; on SQLite each has its own file.
    """
    pools = {
        settings.database_url: Database(settings.database_url)
        for settings in hosting.organisations
        if settings.database_schema is not None
    }
    apps: list[tuple[AgentSettings, FastAPI]] = []
    for settings in hosting.organisations:
        database = None
        if settings.database_schema is not None:
            database = pools[settings.database_url].scoped(settings.database_schema)
        app = create_app(settings, database=database, watch_loop=False, **options)
        apps.append((settings, app))
    return HostApp(apps, pools=list(pools.values()))


class HostApp:
    """Routes messages by receiver and every other request by host name; runs every lifespan."""

    def __init__(self, apps: list[tuple[AgentSettings, FastAPI]], *, pools: list[Database]):
        self._by_oin = {settings.oin: app for settings, app in apps}
        self._by_host = {host_name(settings.public_base_url): app for settings, app in apps}
        self._first = apps[0][1]
        self._pools = pools
        self._max_body_bytes = max(settings.max_body_bytes for settings, _app in apps)
        # A router with no routes: its lifespan starts every agent; it hands each request on.
        self.router = Router(default=self._route, lifespan=self._lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    @property
    def services(self) -> dict[str, AgentService]:
        """Each hosted organisation's service by OIN, once the host has started."""
        return {oin: app.state.service for oin, app in self._by_oin.items()}

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == MESSAGES_PATH and scope["method"] == "POST":
            await self._message(scope, receive, send)
            return
        app = self._by_host.get((URL(scope=scope).hostname or "").lower())
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in (HEALTH_PATH, READY_PATH):
            await self._health(scope, receive, send)
        else:
            await _not_hosted(scope, receive, send)

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The host itself (any host name not an organisation's, as a probe sends the pod's)."""
        response: Response = JSONResponse({"status": "ok"}, headers=_VERSION)
        if scope["path"] == READY_PATH:
            response = await self._readiness()
        await response(scope, receive, send)

    async def _readiness(self) -> Response:
        """Ready when every hosted organisation's agent is (docs/operations.md, readiness)."""
        failing = []
        for oin, service in self.services.items():
            readiness = await check_readiness(service)
            if readiness.status != "ready":
                reasons = ", ".join(f"{k} ({v})" for k, v in readiness.reasons.items()) or "-"
                failing.append(f"{service.settings.name} {oin}: {reasons}")
        if not failing:
            return JSONResponse({"status": "ready"}, headers=_VERSION)
        return _problem(NotReady("failing: " + "; ".join(failing)))

    async def _message(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One byte over the limit is enough for the organisation's agent to refuse the size.
        body = await _read_body(receive, limit=self._max_body_bytes + 1)
        app = self._by_oin.get(_receiver_oin(body) or "", self._first)
        await app(scope, _replay(body, receive), send)

    @asynccontextmanager
    async def _lifespan(self, _router: object) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for pool in self._pools:
                stack.push_async_callback(pool.dispose)
            for app in self._by_oin.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            # One watch of the one event loop; every organisation's metrics show its figures.
            first, *others = [service.metrics for service in self.services.values()]
            for metrics in others:
                metrics.share_event_loop(first)
            await stack.enter_async_context(watch_event_loop(first))
            yield


async def _not_hosted(scope: Scope, receive: Receive, send: Send) -> None:
    error = OrganisationNotHosted("ask the organisation for the address of its agent")
    await _problem(error)(scope, receive, send)


def _problem(error: AgentError) -> Response:
    return problem_response(
        code=error.code,
        title=error.title,
        status=error.status,
        detail=error.detail,
        headers=_VERSION,
    )


def _receiver_oin(body: bytes) -> str | None:
    try:
        receiver = json.loads(body).get("receiver")
        oin = receiver.get("oin") if isinstance(receiver, dict) else None
    except (ValueError, AttributeError, RecursionError):  # the agent's checks say what is wrong
        return None
    return oin if isinstance(oin, str) else None


async def _read_body(receive: Receive, *, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit or not message.get("more_body", False):
            return b"".join(chunks)[:limit]


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the connection's own events (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
