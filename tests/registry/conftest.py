"""Fixtures for the registry: a running app on the per-test database, a frozen clock, clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from protocol.clock import FrozenClock
from protocol.identifiers import is_valid_rsin, oin_for_kvk
from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app
from registry.client import RegistryClient
from registry.operator import OperatorClient
from registry.settings import RegistrySettings

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
BASE_URL = "http://registry.test"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
UTRECHT_OIN = "00000001002220647000"
SUPPLIER_KVK = "12345678"
SUPPLIER_OIN = oin_for_kvk(SUPPLIER_KVK)
OTHER_SUPPLIER_KVK = "87654321"
OTHER_SUPPLIER_OIN = oin_for_kvk(OTHER_SUPPLIER_KVK)
MESSAGE_TYPES = ("nl.meeverhuizen.dossier-offer", "nl.meeverhuizen.takeover-order")


def gemeente_oin(seed: int) -> str:
    """A well-formed gemeente OIN (00000001 + RSIN passing the elfproef + 000)."""
    for candidate in range(seed * 1000, seed * 1000 + 1000):
        rsin = f"{candidate:09d}"
        if is_valid_rsin(rsin):
            return f"00000001{rsin}000"
    raise AssertionError("no RSIN found")


@dataclass
class Registry:
    """A registry under test and what it takes to talk to it."""

    app: FastAPI
    http: httpx.AsyncClient
    clock: FrozenClock
    signing_jwk: dict[str, Any]
    trust_anchor: dict[str, Any]
    operator: OperatorClient

    def client(self, **options: Any) -> RegistryClient:
        return RegistryClient(
            BASE_URL, self.trust_anchor, http=self.http, clock=self.clock, **options
        )

    async def audit_actions(self) -> list[str]:
        return [event["action"] for event in await self.operator.audit_events(limit=1000)]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def registry_key() -> dict[str, Any]:
    return generate_private_jwk("EdDSA")


@pytest.fixture
def settings(database_url: str, registry_key: dict[str, Any]) -> RegistrySettings:
    return RegistrySettings(
        environment="production",
        database_url=database_url,
        signing_jwk=json.dumps(registry_key),
        operator_token=OPERATOR_TOKEN,
        answer_max_age=300,
        endpoint_allow_list=[".test"],
    )


@pytest.fixture
async def registry(
    settings: RegistrySettings, clock: FrozenClock, registry_key: dict[str, Any]
) -> AsyncIterator[Registry]:
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http,
    ):
        yield Registry(
            app=app,
            http=http,
            clock=clock,
            signing_jwk=registry_key,
            trust_anchor=public_jwk(registry_key),
            operator=OperatorClient(BASE_URL, OPERATOR_TOKEN, http=http),
        )


@dataclass
class Enrolled:
    """An enrolled participant with its private key."""

    oin: str
    private_jwk: dict[str, Any]


async def _enrol(
    registry: Registry, code: str, oin: str, endpoint: str, message_types: list[str]
) -> Enrolled:
    """Enrol with ``code`` as the participant's agent does, under a new key."""
    key = generate_private_jwk("EdDSA")
    await registry.client().enrol(
        code=code,
        oin=oin,
        endpoint=endpoint,
        protocol_versions=["1.0"],
        message_types=message_types,
        public_jwks=[public_jwk(key)],
    )
    return Enrolled(oin=oin, private_jwk=key)


async def enrol_gemeente(
    registry: Registry, gemeentecode: str = "0344", oin: str = UTRECHT_OIN
) -> Enrolled:
    code = await registry.operator.issue_enrolment_code(gemeentecode=gemeentecode)
    endpoint = f"http://agent-{gemeentecode}.test"
    return await _enrol(registry, code, oin, endpoint, list(MESSAGE_TYPES))


async def enrol_supplier(
    registry: Registry, kvk_number: str = SUPPLIER_KVK, name: str = "Hulpmiddelen BV"
) -> Enrolled:
    oin = oin_for_kvk(kvk_number)
    await registry.operator.onboard_supplier(oin=oin, kvk_number=kvk_number, name=name)
    code = await registry.operator.issue_enrolment_code(supplier_oin=oin)
    endpoint = f"http://supplier-{kvk_number}.test"
    return await _enrol(registry, code, oin, endpoint, ["nl.meeverhuizen.takeover-order"])


async def change_own_entry(registry: Registry, participant: Enrolled, **changes: Any) -> None:
    """The participant's agent signs ``changes`` to its own entry and sends them."""
    await registry.client().update_own_entry(
        oin=participant.oin, private_jwk=participant.private_jwk, **changes
    )


ONE_DAY = timedelta(days=1)


class SwitchableTransport(httpx.AsyncBaseTransport):
    """Forwards to the app; can be switched off (network down) or made to alter answers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.requests: list[httpx.Request] = []
        self.alter: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        if self.alter is None:
            return response
        body = await response.aread()
        altered: httpx.Response = self.alter(response, body)
        return altered


@pytest.fixture
async def switchable(
    registry: Registry,
) -> AsyncIterator[tuple[SwitchableTransport, RegistryClient]]:
    """A registry client whose network can fail, and the transport that controls it."""
    transport = SwitchableTransport(httpx.ASGITransport(app=registry.app))
    async with httpx.AsyncClient(transport=transport) as http:
        client = RegistryClient(
            BASE_URL,
            registry.trust_anchor,
            http=http,
            clock=registry.clock,
            max_staleness=timedelta(hours=1),
        )
        yield transport, client
