"""Prometheus metrics of the registry, in a registry of its own (no process-wide default).

Labels are closed sets: the path template of the OpenAPI document the request matched (never a
concrete OIN or code; ``other`` outside the document), the method and the status code.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "MetricsMiddleware", "RegistryMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_OTHER = "other"


class RegistryMetrics:
    """Answers by route and status, their duration, and the gemeenten enrolled."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._answers = Counter(
            "meeverhuizen_registry_answers",
            "Answers by route (path template), method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "meeverhuizen_registry_answer_seconds",
            "Time to answer, by route (path template).",
            ["route"],
            registry=self.registry,
        )
        self._gemeenten = Gauge(
            "meeverhuizen_registry_gemeenten",
            "Gemeenten by whether their agent has enrolled.",
            ["enrolled"],
            registry=self.registry,
        )

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self._answers.labels(route, method, str(status)).inc()
        self._duration.labels(route).observe(seconds)

    def gemeenten(self, *, enrolled: int, total: int) -> None:
        self._gemeenten.labels("true").set(enrolled)
        self._gemeenten.labels("false").set(total - enrolled)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _pattern(template: str) -> re.Pattern[str]:
    # "/v1/gemeenten/{gemeentecode}" matches one path segment where the template has a name.
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


class MetricsMiddleware:
    """Counts every HTTP answer by the documented path it matched."""

    def __init__(self, app: ASGIApp, *, metrics: RegistryMetrics) -> None:
        self._app = app
        self._metrics = metrics
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _template(self, scope: Scope) -> str:
        if self._templates is None:
            document: dict[str, Any] = scope["app"].openapi()
            base = document["servers"][0]["url"]
            self._templates = [(_pattern(base + path), base + path) for path in document["paths"]]
        path = str(scope.get("path", ""))
        for pattern, template in self._templates:
            if pattern.fullmatch(path):
                return template
        return _OTHER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, counting)
        finally:
            seconds = time.perf_counter() - started
            self._metrics.answered(self._template(scope), scope["method"], status, seconds)
