"""No input gives a 500: hostile bodies against every route of an agent and of the registry.

Hypothesis sends each route (API, client pages, health and metrics alike) bodies made to break a
parser: integers of thousands of digits, nesting hundreds of thousands deep, strings past the
body limit, and otherwise plausible objects whose fields hold such values, with the credentials
and media type the route wants, and signed where the route checks a signature. Every answer must
be below 500. Then schemathesis runs the registry's own OpenAPI document against a registry with
an enrolled participant: no 500, and every answer's status code, media type and body as the
document says (the agent's document is checked the same way in tests/agent/test_bad_input.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.api.routes import metrics
from agent.app import create_app
from agent.settings import hash_token
from agent.web import pages
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import sign_body
from registry.app import create_app as create_registry_app
from registry.operator import OperatorClient
from registry.settings import RegistrySettings
from tests._schemathesis import schemathesis_failures
from tests.agent.conftest import (
    AUTH,
    OPERATOR,
    FakeDirectory,
    agent_settings,
)

BRP_TOKEN = "brp-push-token-for-fuzzing-0123456789"
REGISTRY_TOKEN = "registry-operator-token-for-fuzzing-0123"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SIGNING_KEY = generate_private_jwk("EdDSA")
# Values for path parameters: well-formed ones, so the body is what gets tested, and odd ones.
PATH_VALUES = {
    "oin": "00000001002220647000",
    "gemeentecode": "0344",
    "kid": "x" * 43,
    "token": "t" * 43,
}
UUID = "5b0e8f4c-2d8a-4f39-9c8e-7a1d2b3c4d5e"
MAX_EXAMPLES = 12

# --- bodies ---------------------------------------------------------------------------------


def _digits(count: int) -> str:
    return "9" * count


_HUGE_NUMBER = st.sampled_from([17, 40, 41, 400, 4300, 5000, 20_000]).map(_digits)
_DEEP = st.sampled_from([65, 1000, 100_000, 200_000]).flatmap(
    lambda depth: st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
)
_LONG_TEXT = st.sampled_from([1_000, 70_000, 140_000, 1_100_000]).map(
    lambda size: json.dumps("x" * size)
)
_ODD_NUMBER = st.sampled_from(["-0", "1e400", "-1e400", "1.5e308", "9007199254740993", "0.1e-400"])
_EXTREME = st.one_of(_HUGE_NUMBER, _DEEP, _LONG_TEXT, _ODD_NUMBER)


def _object_with(fields: list[str]) -> st.SearchStrategy[str]:
    """A JSON object of the route's own field names, one or more holding an extreme value."""
    plain = st.sampled_from(['"0344"', "1", '"2025-03-03"', "true", "null", "[]", "{}"])
    members = st.dictionaries(
        st.sampled_from(fields), st.one_of(_EXTREME, plain), min_size=1, max_size=4
    )
    return members.map(lambda chosen: "{" + ",".join(f'"{k}":{v}' for k, v in chosen.items()) + "}")


def _fixed_bodies(fields: list[str]) -> list[bytes]:
    """The bodies that broke a parser once, always sent: then hypothesis adds its own."""
    huge = _digits(5000)
    deep = "[" * 100_000 + "]" * 100_000
    return [
        huge.encode(),
        f'{{"a":{huge}}}'.encode(),
        ("{" + ",".join(f'"{name}":{huge}' for name in fields) + "}").encode(),
        ("{" + ",".join(f'"{name}":{deep}' for name in fields[:2]) + "}").encode(),
        deep.encode(),
        ('{"a":' * 200_000 + "1" + "}" * 200_000).encode(),
        f"[{huge}]".encode(),
        json.dumps("x" * 140_000).encode(),
        b'{"a": 1e400}',
        b'{"a": 9007199254740993}',
    ]


def _bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    document = st.one_of(_EXTREME, _object_with(fields), _EXTREME.map(lambda value: f"[{value}]"))
    return document.map(lambda text: text.encode())


def _field_names(app: FastAPI) -> list[str]:
    """Every property name in the application's OpenAPI document."""
    text = json.dumps(app.openapi())
    names = set(re.findall(r'"properties": \{"([A-Za-z]+)"', text))
    names |= set(re.findall(r', "([a-z][A-Za-z]+)": \{"(?:type|\$ref|anyOf)', text))
    return sorted(names | {"bsn", "houseNumber", "amountCents", "messageId", "data", "specversion"})


# --- routes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    headers: dict[str, str]
    signed: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return PATH_VALUES.get(name.split(":")[0].lower(), UUID)

    return re.sub(r"\{([^}]+)\}", value, path)


def _operations(app: FastAPI, extra: tuple[APIRouter, ...]) -> list[tuple[str, str]]:
    """(method, path) of every route: the OpenAPI document's, and the routers kept out of it."""
    found = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    for router in extra:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found += [
                    (method, route.path) for method in sorted((route.methods or set()) - {"HEAD"})
                ]
    return sorted(set(found))


def _endpoints(
    app: FastAPI, headers_for: dict[str, dict[str, str]], extra: tuple[APIRouter, ...] = ()
) -> list[Endpoint]:
    found = []
    for method, template in _operations(app, extra):
        path = _concrete(template)
        headers = {"Content-Type": "application/json"}
        for prefix, added in headers_for.items():
            if path.startswith(prefix):
                headers = headers | added
        signed = path.endswith(("/messages", "/entry-changes"))
        found.append(Endpoint(method, path, headers, signed))
    return found


# --- running the apps ---------------------------------------------------------------------------


@contextmanager
def _served(app: FastAPI, base_url: str) -> Iterator[tuple[BlockingPortal, httpx.AsyncClient]]:
    """The app with its lifespan on an event loop in a thread, and a client to call it."""
    with start_blocking_portal() as portal:
        # An unhandled error answers 500 as a server would, instead of raising in the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        try:
            with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
                yield portal, client
        finally:
            portal.call(client.aclose)


def _exercise(
    portal: BlockingPortal, client: httpx.AsyncClient, endpoint: Endpoint, fields: list[str]
) -> None:
    @given(body=_bodies(fields))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def hostile(body: bytes) -> None:
        headers = dict(endpoint.headers)
        if endpoint.signed:
            headers |= sign_body(body, SIGNING_KEY, signing_time=START).headers()
        answer = portal.call(
            lambda: client.request(endpoint.method, endpoint.path, content=body, headers=headers)
        )
        assert answer.status_code < 500, (
            f"{endpoint.label}: {answer.status_code} {answer.text[:300]}"
        )

    for body in _fixed_bodies(fields):
        hostile.hypothesis.inner_test(body=body)  # type: ignore[attr-defined]
    hostile()


def _no_server_errors(
    app: FastAPI,
    base_url: str,
    headers_for: dict[str, dict[str, str]],
    extra: tuple[APIRouter, ...] = (),
    prepare: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None,
) -> None:
    fields = _field_names(app)
    endpoints = _endpoints(app, headers_for, extra)
    assert len(endpoints) >= 10
    failures: dict[str, str] = {}
    with _served(app, base_url) as (portal, client):
        if prepare is not None:
            portal.call(prepare, client)
        for endpoint in endpoints:
            try:
                _exercise(portal, client, endpoint, fields)
            except AssertionError as exc:  # every route's failure, then all of them reported
                failures[endpoint.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_no_hostile_body_gives_an_agent_a_server_error(tmp_path: Path) -> None:
    settings_ = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}",
        gemeente="utrecht",
        brp_token_sha256=hash_token(BRP_TOKEN),
    )
    app = create_app(settings_, registry=FakeDirectory(), clock=FrozenClock(START))
    _no_server_errors(
        app,
        "http://utrecht.test",
        {
            "/v1/dossiers": AUTH,
            "/v1/provisions": AUTH,
            "/v1/tasks": AUTH,
            "/v1/orders": AUTH,
            "/v1/outbox": OPERATOR,
            "/v1/brp-events": {
                "Authorization": f"Bearer {BRP_TOKEN}",
                "Content-Type": "application/cloudevents-batch+json",
            },
        },
        extra=(pages.router, metrics.router),
    )


def _registry_app(tmp_path: Path) -> FastAPI:
    registry_settings = RegistrySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.sqlite'}",
        signing_jwk=json.dumps(generate_private_jwk("EdDSA")),
        operator_token=REGISTRY_TOKEN,
    )
    return create_registry_app(registry_settings, clock=FrozenClock(START))


async def _enrol_utrecht(http: httpx.AsyncClient) -> None:
    """Utrecht enrolled with the fuzzing key: its signed entry changes reach the body checks."""
    operator = OperatorClient("http://registry.test", REGISTRY_TOKEN, http=http)
    code = await operator.issue_enrolment_code(gemeentecode="0344")
    answer = await http.post(
        "/v1/enrolments",
        json={
            "code": code,
            "oin": PATH_VALUES["oin"],
            "endpoint": "http://agent-0344.test",
            "protocolVersions": ["1.0"],
            "messageTypes": ["nl.meeverhuizen.dossier-offer"],
            "keys": [{"jwk": public_jwk(SIGNING_KEY)}],
        },
    )
    assert answer.status_code == 201, answer.text


def test_no_hostile_body_gives_the_registry_a_server_error(tmp_path: Path) -> None:
    operator = {"Authorization": f"Bearer {REGISTRY_TOKEN}"}
    _no_server_errors(
        _registry_app(tmp_path),
        "http://registry.test",
        {"/v1/enrolment-codes": operator, "/v1/audit": operator, "/v1/participants": operator},
        prepare=_enrol_utrecht,
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_registry_answers_schemathesis_as_its_document_says(tmp_path: Path) -> None:
    enrolled = _registry_app(tmp_path)
    with _served(enrolled, "http://registry.test") as (portal, client):
        portal.call(_enrol_utrecht, client)
    # Path values of the enrolled participant: its answers are checked, not only 404s.
    operations, failures = schemathesis_failures(
        _registry_app(tmp_path),
        headers={"Authorization": f"Bearer {REGISTRY_TOKEN}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        path_values=PATH_VALUES,
    )
    assert operations >= 8
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
