"""Liveness and readiness of the registry service."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.registry.conftest import Registry


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
