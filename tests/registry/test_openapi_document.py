"""The registry's OpenAPI document says what the registry answers, checked on real answers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from protocol import canonicalize
from registry.operator import OperatorClient
from tests._openapi import OpenApiContract, RecordingTransport
from tests.registry.conftest import (
    BASE_URL,
    ONE_DAY,
    OPERATOR_TOKEN,
    START,
    SUPPLIER_OIN,
    Registry,
    change_own_entry,
    enrol_gemeente,
    enrol_supplier,
)

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
async def recorded(registry: Registry) -> AsyncIterator[tuple[Registry, RecordingTransport]]:
    """The registry with every answer to ``registry.http`` (and its clients) recorded."""
    transport = RecordingTransport(httpx.ASGITransport(app=registry.app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        registry.http = http
        registry.operator = OperatorClient(BASE_URL, OPERATOR_TOKEN, http=http)
        yield registry, transport


async def _document(registry: Registry) -> dict[str, Any]:
    response = await registry.http.get("/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_reference_in_the_document_resolves(registry: Registry) -> None:
    contract = OpenApiContract(await _document(registry))
    assert contract.unresolved_references() == []
    entry_change = contract.document["paths"]["/participants/{oin}/entry-changes"]["post"]
    body = entry_change["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EntryChangeRequest"}


async def test_document_names_server_contact_licence_and_no_422(registry: Registry) -> None:
    document = await _document(registry)
    assert document["servers"][0]["url"] == "/v1"
    assert set(document["info"]["contact"]) == {"name", "url", "email"}
    assert document["info"]["license"]["identifier"] == "EUPL-1.2"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "422" not in answers, (method, path)
            for status, answer in answers.items():
                assert "API-Version" in answer["headers"], (method, path, status)
                if int(status) >= 400:
                    assert list(answer["content"]) == ["application/problem+json"]
                    assert "urn:meeverhuizen:problem:" in answer["description"]


async def test_answer_data_is_typed(registry: Registry) -> None:
    schemas = (await _document(registry))["components"]["schemas"]
    key = schemas["PublishedKey"]["properties"]
    assert {"jwk", "notBefore", "notAfter", "revokedAt", "revocationReason"} <= set(key)
    assert schemas["KeysAnswer"]["properties"]["data"]["items"] == {
        "$ref": "#/components/schemas/PublishedKey"
    }
    participant = schemas["Participant"]["properties"]
    assert {"endpoint", "keys", "messageTypes", "protocolVersions"} <= set(participant)
    assert set(schemas["FreshnessStatement"]["properties"]) == {
        "etag",
        "issuedAt",
        "maxAge",
        "resource",
    }
    assert {"issuedAt", "resource", "instance"} <= set(schemas["Problem"]["properties"])


async def _exercise(registry: Registry) -> None:
    """Answers of every route: successes, a 304 and problems of each kind."""
    http = registry.http
    utrecht = await enrol_gemeente(registry)
    supplier = await enrol_supplier(registry)
    await change_own_entry(registry, utrecht, endpoint="http://agent-0344-new.test")
    await registry.operator.add_contract(
        gemeentecode="0344",
        supplier_oin=SUPPLIER_OIN,
        iso_prefixes=["12 22"],
        valid_from=START.date(),
    )
    first = await http.get("/v1/gemeenten/0344")
    await http.get("/v1/gemeenten/0344", headers={"If-None-Match": first.headers["ETag"]})
    kid = supplier.private_jwk["kid"]
    for path in (
        "/v1/gemeenten",
        "/v1/gemeenten/0363",  # not enrolled
        "/v1/gemeenten/9999",  # unknown
        "/v1/gemeenten/0344?messageType=nl.meeverhuizen.unknown",
        "/v1/gemeenten/0344/contracted-suppliers?isoCode=12%2022%2003&on=2025-06-01",
        "/v1/gemeenten/0344/contracted-suppliers?isoCode=18%2012&on=2025-06-01",
        "/v1/gemeenten/0344/contracted-suppliers?isoCode=12&on=yesterday",
        f"/v1/participants/{SUPPLIER_OIN}",
        f"/v1/participants/{SUPPLIER_OIN}/keys",
        f"/v1/participants/{SUPPLIER_OIN}/keys?at=2025-03-03T10:00:00Z",
        "/v1/participants/123",
        "/v1/status",
        "/v1/health",
        "/v1/health/ready",
    ):
        await http.get(path)
    await http.get("/v1/audit-events", headers=OPERATOR)
    await http.get("/v1/audit-events")
    await http.post(
        f"/v1/participants/{SUPPLIER_OIN}/keys/{kid}/revocation",
        json={"reason": "lost laptop", "revokedAt": (START + ONE_DAY).isoformat()},
        headers=OPERATOR,
    )
    await http.post(
        f"/v1/participants/{SUPPLIER_OIN}/keys/unknown-kid/revocation",
        json={"reason": "lost laptop"},
        headers=OPERATOR,
    )
    await http.post("/v1/enrolments", json={"code": "not-a-valid-code-at-all"})
    await http.post("/v1/suppliers", json={"oin": SUPPLIER_OIN}, headers=OPERATOR)
    await http.post(
        f"/v1/participants/{utrecht.oin}/entry-changes",
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )


async def test_real_answers_match_the_document(
    recorded: tuple[Registry, RecordingTransport],
) -> None:
    registry, transport = recorded
    await _exercise(registry)
    contract = OpenApiContract(await _document(registry))
    answers = [a for a in transport.answers if a.request.url.path != "/v1/openapi.json"]
    statuses = {answer.status_code for answer in answers}
    assert {200, 201, 304, 400, 401, 403, 404, 409} <= statuses
    for answer in answers:
        contract.check(answer)


async def test_a_304_carries_a_freshness_statement_of_the_documented_form(
    registry: Registry,
) -> None:
    await enrol_gemeente(registry)
    first = await registry.http.get("/v1/gemeenten/0344")
    again = await registry.http.get(
        "/v1/gemeenten/0344", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    _header, payload, _signature = again.headers["Registry-Freshness"].split(".")
    statement = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    contract = OpenApiContract(await _document(registry))
    contract.validate("#/components/schemas/FreshnessStatement", statement, "statement")
    assert statement["etag"] == first.headers["ETag"]
    assert canonicalize(statement) == base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


async def test_problems_name_their_instance(registry: Registry) -> None:
    response = await registry.http.get("/v1/gemeenten/9999?messageType=x")
    problem = response.json()
    assert problem["type"] == "urn:meeverhuizen:problem:participant-unknown"
    assert problem["instance"] == "/v1/gemeenten/9999"
    assert problem["resource"] == "/v1/gemeenten/9999?messageType=x"


async def test_a_401_names_how_to_authenticate(registry: Registry) -> None:
    response = await registry.http.get("/v1/audit-events")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
