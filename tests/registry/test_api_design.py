"""NL GOV API Design Rules on the registry API, and its settings."""

from __future__ import annotations

import hashlib
import re

import pytest
from pydantic import ValidationError

from registry.settings import RegistrySettings
from tests.registry.conftest import Registry, enrol_gemeente


async def test_every_answer_has_api_version(registry: Registry) -> None:
    for path in ("/v1/gemeenten/0344", "/v1/gemeenten/9999", "/v1/status", "/v1/openapi.json"):
        response = await registry.http.get(path)
        assert response.headers["api-version"] == "1.0.0", path


async def test_invalid_input_is_400_problem_not_422(registry: Registry) -> None:
    response = await registry.http.get(
        "/v1/gemeenten/0344/contracted-suppliers", params={"isoCode": "12 22", "on": "yesterday"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    naive = await registry.http.get(
        "/v1/participants/00000001002220647000/keys", params={"at": "2025-01-01T10:00:00"}
    )
    assert naive.status_code == 400


async def test_no_redirect_on_trailing_slash(registry: Registry) -> None:
    await enrol_gemeente(registry)
    response = await registry.http.get("/v1/gemeenten/0344/")
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_openapi_is_published_with_kebab_paths_and_camel_queries(
    registry: Registry,
) -> None:
    response = await registry.http.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"][0]["url"] == "/v1"
    assert "/gemeenten/{gemeentecode}" in document["paths"]
    for path, operations in document["paths"].items():
        static = re.sub(r"\{[^}]+\}", "x", path)
        assert re.fullmatch(r"(/[a-z0-9]+(-[a-z0-9]+)*)+", static), path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    assert re.fullmatch(r"[a-z]+([A-Z][a-z]+)*", parameter["name"]), parameter
    assert "nlgov-adr-payload-sig" in response.headers


def test_settings_refuse_placeholders_outside_development() -> None:
    with pytest.raises(ValidationError):
        RegistrySettings(environment="production", operator_token="changethis", signing_jwk="{}")
    with pytest.raises(ValidationError):
        RegistrySettings(environment="production", operator_token="a-long-enough-token")
    assert RegistrySettings(environment="development", operator_token="changethis")


def test_answer_max_age_is_at_most_five_minutes() -> None:
    with pytest.raises(ValidationError):
        RegistrySettings(answer_max_age=301)
    assert RegistrySettings().answer_max_age == 300


def test_operator_token_can_be_configured_as_hash_only() -> None:
    digest = hashlib.sha256(b"the-operator-token").hexdigest()
    settings = RegistrySettings(operator_token_sha256=digest)
    assert settings.operator_token_hash() == bytes.fromhex(digest)
    assert "the-operator-token" not in repr(RegistrySettings(operator_token="the-operator-token"))
