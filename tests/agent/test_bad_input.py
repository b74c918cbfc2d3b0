"""Bad input never gives a 500: a specific problem+json answer and nothing changed.

Hand-written cases for every endpoint, then schemathesis against the agent's own OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from agent.app import create_app
from agent.register.imports import CSV_COLUMNS
from agent.service import AgentService
from agent.storage.tables import Base
from protocol.jwk import generate_private_jwk
from protocol.signing import sign_body
from tests._schemathesis import schemathesis_failures
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    FIRST_DEVICE_CONSENT,
    OPERATOR,
    Agents,
    FakeDirectory,
    agent_settings,
)

BASE = "http://utrecht.test"
PROBLEM = "urn:meeverhuizen:problem:"
JSON = {"Content-Type": "application/json"}
UNKNOWN = "5b0e8f4c-2d8a-4f39-9c8e-7a1d2b3c4d5e"  # no such dossier, message or task
VALID_START = {
    "bsn": CLIENT_BSN,
    "moveDate": "2025-04-01",
    "newAddress": {
        "street": "Damrak",
        "houseNumber": 1,
        "postalCode": "1012LG",
        "city": "Amsterdam",
        "gemeentecode": "0363",
    },
}
FAILS_ELFPROEF = "123456788"
FAKE_SIGNATURE = {"nlgov-adr-payload-sig": "x", "Digest": "SHA-256=x"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _snapshot(service: AgentService) -> dict[str, int]:
    async with service.database.reading() as session:
        return {
            table.name: await session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def _oversized() -> bytes:
    return b'{"bsn": "' + b"9" * 1_100_000 + b'"}'


async def _chunks(content: bytes) -> Any:
    # A streamed body has no Content-Length: the limit must hold while reading.
    for start in range(0, len(content), 65_536):
        yield content[start : start + 65_536]


HUGE_INTEGER = b'{"messageId": ' + b"9" * 5000 + b"}"
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000


def _digest(body: bytes) -> dict[str, str]:
    # Well-formed Digest and signature headers (of an unknown key): the body is refused first.
    signed = sign_body(body, generate_private_jwk("EdDSA"), signing_time=datetime.now(UTC))
    return signed.headers()


def _csv_with_a_long_field() -> bytes:
    # The csv module refuses a field over 128 KiB; the answer names the line.
    header = ",".join(CSV_COLUMNS).encode()
    return header + b'\n"' + b"x" * (129 * 1024) + b'"\n'


Case = tuple[str, str, dict[str, Any], int, str]
CASES: list[Case] = [
    (
        "POST",
        "/v1/dossiers",
        {"content": b'{"bsn": "99', "headers": AUTH | JSON},
        400,
        "invalid-input",
    ),
    (
        "POST",
        "/v1/dossiers",
        {"json": {"bsn": 999993653, "moveDate": "soon", "newAddress": []}, "headers": AUTH},
        400,
        "invalid-input",
    ),
    (
        "POST",
        "/v1/dossiers",
        {"json": VALID_START | {"bsn": FAILS_ELFPROEF}, "headers": AUTH},
        400,
        "invalid-input",
    ),
    ("POST", "/v1/dossiers", {"json": [VALID_START], "headers": AUTH}, 400, "invalid-input"),
    (
        "POST",
        "/v1/dossiers",
        {"content": b"bsn=999993653", "headers": AUTH | FORM},
        400,
        "invalid-input",
    ),
    (
        "POST",
        "/v1/dossiers",
        {"content": _oversized(), "headers": AUTH | JSON},
        413,
        "body-too-large",
    ),
    (
        "POST",
        "/v1/dossiers",
        {"content": _chunks, "headers": AUTH | JSON},
        413,
        "body-too-large",
    ),
    ("POST", "/v1/dossiers", {"json": VALID_START}, 401, "unauthorised"),
    (
        "POST",
        "/v1/dossiers",
        {"json": VALID_START, "headers": {"Authorization": "Bearer wrong"}},
        401,
        "unauthorised",
    ),
    (
        "POST",
        "/v1/dossiers",
        {"json": VALID_START | {"bsn": "999990019"}, "headers": AUTH},
        404,
        "unknown-provision",
    ),
    (
        "GET",
        "/v1/dossiers",
        {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
        401,
        "unauthorised",
    ),
    (
        "GET",
        "/v1/dossiers",
        {"params": {"state": "../../etc"}, "headers": AUTH},
        400,
        "invalid-input",
    ),
    ("GET", f"/v1/dossiers/{UNKNOWN}", {"headers": AUTH}, 404, "unknown-dossier"),
    ("GET", "/v1/dossiers/..%2F..%2Fetc%2Fpasswd", {"headers": AUTH}, 404, "not-found"),
    ("GET", "/v1/dossiers/%2e%2e", {"headers": AUTH}, 400, "invalid-input"),
    ("GET", "/v1/dossiers/", {"headers": AUTH}, 404, "not-found"),
    ("DELETE", "/v1/dossiers", {"headers": AUTH}, 405, "method-not-allowed"),
    (
        "POST",
        f"/v1/dossiers/{UNKNOWN}/consent",
        {"json": FIRST_DEVICE_CONSENT, "headers": AUTH},
        404,
        "unknown-dossier",
    ),
    (
        "POST",
        f"/v1/dossiers/{UNKNOWN}/consent",
        {"json": FIRST_DEVICE_CONSENT | {"givenBy": 7}, "headers": AUTH},
        400,
        "invalid-input",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b"bsn\n", "headers": AUTH | {"Content-Type": "text/plain"}},
        415,
        "unsupported-media-type",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b"[{", "headers": AUTH | JSON},
        400,
        "import-failed",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b'[{"bsn": "123456788"}]', "headers": AUTH | JSON},
        400,
        "import-failed",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b"bsn;x\n\xff\xfe", "headers": AUTH | {"Content-Type": "text/csv"}},
        400,
        "import-failed",
    ),
    ("POST", "/v1/provisions/imports", {"content": b"[]", "headers": JSON}, 401, "unauthorised"),
    ("GET", "/v1/outbox", {"headers": AUTH}, 401, "unauthorised"),
    ("GET", "/v1/outbox", {"params": {"state": "nope"}, "headers": OPERATOR}, 400, "invalid-input"),
    ("POST", f"/v1/outbox/{UNKNOWN}/requeue", {"headers": OPERATOR}, 404, "unknown-outbox-message"),
    ("POST", "/v1/outbox/not-a-uuid/requeue", {"headers": OPERATOR}, 400, "invalid-input"),
    (
        "POST",
        f"/v1/tasks/{UNKNOWN}/done",
        {"json": {"doneBy": "K. de Vries"}, "headers": AUTH},
        404,
        "unknown-task",
    ),
    (
        "POST",
        f"/v1/tasks/{UNKNOWN}/done",
        {"json": {"doneBy": ""}, "headers": AUTH},
        400,
        "invalid-input",
    ),
    ("POST", "/v1/messages", {"content": b"{}", "headers": JSON}, 401, "signature-missing"),
    (
        "POST",
        "/v1/messages",
        {"content": b"{}", "headers": JSON | FAKE_SIGNATURE},
        400,
        "digest-mismatch",
    ),
    ("POST", "/v1/messages", {"content": _oversized(), "headers": JSON}, 413, "body-too-large"),
    (
        "POST",
        "/v1/messages",
        {"content": b"{}", "headers": {"Content-Type": "text/plain"} | FAKE_SIGNATURE},
        415,
        "unsupported-media-type",
    ),
    ("POST", "/v1/messages", {"content": b"{}"}, 415, "unsupported-media-type"),
    (
        "POST",
        "/v1/messages",
        {"content": HUGE_INTEGER, "headers": JSON | _digest(HUGE_INTEGER)},
        400,
        "malformed-json",
    ),
    (
        "POST",
        "/v1/messages",
        {"content": DEEP_ARRAY, "headers": JSON | _digest(DEEP_ARRAY)},
        400,
        "malformed-json",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b'[\n{"bsn": ' + b"7" * 5000 + b"}]", "headers": AUTH | JSON},
        400,
        "import-failed",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": b"[\n" + DEEP_ARRAY + b"]", "headers": AUTH | JSON},
        400,
        "import-failed",
    ),
    (
        "POST",
        "/v1/provisions/imports",
        {"content": _csv_with_a_long_field(), "headers": AUTH | {"Content-Type": "text/csv"}},
        400,
        "import-failed",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "code"),
    CASES,
    ids=[f"{method} {path} {status} {code}" for method, path, _, status, code in CASES],
)
async def test_bad_input_gets_a_specific_problem_and_changes_nothing(
    agents: Agents, method: str, path: str, options: dict[str, Any], status: int, code: str
) -> None:
    dossier_id = await agents.start_dossier()
    before = await _snapshot(agents.departing)
    if options.get("content") is _chunks:
        options = options | {"content": _chunks(_oversized())}  # a fresh stream per run
    answer = await agents.http.request(method, BASE + path, **options)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["api-version"]
    problem = answer.json()
    assert (problem["type"], problem["status"]) == (PROBLEM + code, status)
    assert FAILS_ELFPROEF not in answer.text
    assert await _snapshot(agents.departing) == before
    assert (await agents.departing.dossier(dossier_id)).state == "waiting-for-consent"


async def test_a_valid_request_does_change_the_snapshot(agents: Agents) -> None:
    """The snapshot sees a change, so the cases above prove something."""
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    before = await _snapshot(agents.departing)
    answer = await agents.http.post(BASE + "/v1/dossiers", json=VALID_START, headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert await _snapshot(agents.departing) != before


CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    settings_ = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}", gemeente="utrecht"
    )
    app = create_app(settings_, registry=FakeDirectory())
    operations, failures = schemathesis_failures(app, headers=OPERATOR, checks=CHECKS)
    assert operations >= 10
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


async def test_openapi_describes_problems_and_bearer_security(agents: Agents) -> None:
    document = (await agents.http.get(BASE + "/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "Problem" in schemas
    assert "HTTPValidationError" not in schemas
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            problems = {s for s in answers if int(s) >= 400}
            if path in ("/health", "/health/ready"):  # probes: no token
                continue
            assert problems, (method, path)
            for status in problems:
                content = answers[status]["content"]
                assert content == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
            secured = path != "/messages"
            assert bool(operation.get("security")) == secured, (method, path)
            assert "401" in answers
