"""Liveness and readiness of the registry service."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.registry.conftest import Registry, enrol_gemeente


async def test_health_and_readiness_answer_signed(registry: Registry) -> None:
    live = await registry.http.get("/v1/health")
    assert live.status_code == 200
    assert "nlgov-adr-payload-sig" in live.headers
    ready = await registry.http.get("/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json()["data"]["checks"] == {"database": "ok"}


async def test_not_ready_when_the_database_is_gone(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = registry.app.state.registry.store
    unreachable = create_async_engine("sqlite+aiosqlite:////nonexistent/folder/registry.sqlite")
    monkeypatch.setattr(store, "_engine", unreachable)
    try:
        answer = await registry.http.get("/v1/health/ready")
    finally:
        await unreachable.dispose()
    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:meeverhuizen:problem:not-ready"


async def test_metrics_count_answers_by_route_template(registry: Registry) -> None:
    await enrol_gemeente(registry)
    await registry.http.get("/v1/gemeenten/0344")
    await registry.http.get("/v1/gemeenten/9999")
    response = await registry.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = 'route="/v1/gemeenten/{gemeentecode}",status="200"'
    unknown = 'route="/v1/gemeenten/{gemeentecode}",status="404"'
    assert any(ok in line and line.endswith(" 1.0") for line in text.splitlines())
    assert any(unknown in line and line.endswith(" 1.0") for line in text.splitlines())
    # Templates, never concrete codes, in the route labels.
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert "/v1/gemeenten/{gemeentecode}" in routes
    assert not [route for route in routes if re.search(r"/[0-9]{4}\b", route)]
    assert 'meeverhuizen_registry_gemeenten{enrolled="true"} 1.0' in text
    assert "/metrics" not in (await registry.http.get("/v1/openapi.json")).json()["paths"]
