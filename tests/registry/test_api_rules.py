"""The NL GOV API Design Rules layer shared by registry and agent."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from protocol.errors import ProblemError
from registry.server_kit.api_rules import PROBLEM_JSON, create_api


class TeapotError(ProblemError):
    code = "teapot"
    title = "I am a teapot"
    status = 418


class Item(BaseModel):
    name: str
    count: int


def _app() -> FastAPI:
    app = create_api(
        title="Test",
        version="1.2.3",
        description="test",
        error_types=[TeapotError],
        max_body_bytes=100,
    )

    @app.post("/v1/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/v1/teapot")
    async def teapot() -> None:
        raise TeapotError("short and stout")

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret 999993653")

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_success_carries_api_version_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/items", json={"name": "a", "count": 1})
    assert response.status_code == 200
    assert response.headers["API-Version"] == "1.2.3"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


async def test_invalid_input_is_400_problem_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/items", json={"name": "999993653", "count": "many"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == "urn:meeverhuizen:problem:invalid-input"
    assert problem["invalidParams"][0]["name"] == "body.count"
    assert "999993653" not in response.text


async def test_domain_error_maps_to_its_problem_type(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/teapot")
    assert response.status_code == 418
    assert response.json() == {
        "type": "urn:meeverhuizen:problem:teapot",
        "title": "I am a teapot",
        "status": 418,
        "detail": "short and stout",
        "instance": "/v1/teapot",
    }


async def test_unknown_route_and_trailing_slash_are_404_problems(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/v1/nothing", "/v1/teapot/"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == PROBLEM_JSON
        assert response.headers["API-Version"] == "1.2.3"


async def test_oversized_body_is_refused_before_parsing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/items",
        content=b'{"name": "' + b"x" * 200 + b'", "count": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:meeverhuizen:problem:body-too-large"


async def test_internal_error_is_problem_without_details(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/boom")
    assert response.status_code == 500
    assert response.headers["API-Version"] == "1.2.3"
    assert response.json()["type"] == "urn:meeverhuizen:problem:internal-error"
    assert "999993653" not in response.text


async def test_openapi_is_published_under_v1(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["version"] == "1.2.3"
