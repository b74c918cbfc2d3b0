"""Fixtures for the agent: two gemeente agents (Utrecht departs, Amsterdam receives) in-process."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent.app import create_app
from agent.consent.channels import ClientLetter, LinkNotice
from agent.consent.links import LINK_PATH
from agent.service import AgentService, ConsentInput, DossierStart
from agent.settings import AgentSettings, TakeoverSettings, hash_token
from agent.storage.database import Database
from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES, Address
from protocol.roles import GEMEENTE_ROLES
from protocol.signing import VerificationKey
from registry.app import create_app as create_registry_app
from registry.client import RegistryClient
from registry.errors import ParticipantUnknown
from registry.monitoring import DailyReport
from registry.operator import OperatorClient
from registry.server_kit.endpoints import Resolver, system_resolver
from registry.settings import RegistrySettings
from tests.conftest import TEST_DATABASE_URL_VARIABLE, _postgresql_database

DATA = Path(__file__).parent / "data"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
UTRECHT_OIN = "00000001002220647000"
AMSTERDAM_OIN = "00000001002564440000"
CASE_TOKEN = "case-system-token-for-tests-0123456789"
OPERATOR_TOKEN = "operator-token-for-agent-tests-0123456789"
CLIENT_BSN = "999993653"
WEBHOOK = "http://backoffice.test/events"
NEW_ADDRESS = Address.model_validate(
    {
        "street": "Damrak",
        "houseNumber": 1,
        "postalCode": "1012LG",
        "city": "Amsterdam",
        "gemeentecode": "0363",
    }
)
MOVE_DATE = date(2025, 4, 1)
# A mentor who lives elsewhere: letters reach them at their own address (register import).
MENTOR = {
    "kind": "mentor",
    "name": {"initials": "A.", "surname": "Bakker"},
    "contact": {"channels": ["letter"]},
    "address": {
        "street": "Nieuwegracht",
        "houseNumber": 3,
        "postalCode": "3512LC",
        "city": "Utrecht",
        "gemeentecode": "0344",
    },
}
# The states a dossier passes on each side when the handover meets no hitch, in order.
DEPARTING_HAPPY_PATH = [
    "started",
    "waiting-for-consent",
    "consent-given",
    "offer-sent",
    "decided",
    "completed",
]
RECEIVING_HAPPY_PATH = ["offer-received", "decided", "completed"]
AUTH = {"Authorization": f"Bearer {CASE_TOKEN}"}
# What the case system posts to ``/v1/dossiers/{id}/consent``: consent for the first device.
FIRST_DEVICE_CONSENT = {
    "dataKinds": ["identity", "address", "devices"],
    "deviceIds": ["dev-1"],
    "channel": "online",
    "givenBy": "client",
    "givenAt": "2025-03-03T09:00:00Z",
}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@dataclass(frozen=True)
class Entry:
    """A gemeente's agent as the registry describes it: both gemeente roles, its own code."""

    oin: str | None
    endpoint: str | None
    gemeentecode: str | None
    keys: tuple[VerificationKey, ...]
    roles: tuple[str, ...] = GEMEENTE_ROLES
    region: tuple[str, ...] = ()  # further gemeenten a regional service serves

    @property
    def gemeentecodes(self) -> tuple[str, ...]:
        return ((self.gemeentecode,) if self.gemeentecode else ()) + self.region


@dataclass
class FakeDirectory:
    """An in-memory stand-in for the registry client (unit tests only)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    daily_reports: list[DailyReport] = field(default_factory=list)

    async def gemeente(self, gemeentecode: str, *, message_type: str | None = None) -> Entry:
        for entry in self.entries.values():
            if gemeentecode in entry.gemeentecodes:
                return entry
        raise ParticipantUnknown(f"no gemeente {gemeentecode}")

    async def participant(
        self, oin: str, *, message_type: str | None = None, refresh: bool = False
    ) -> Entry:
        if oin not in self.entries:
            raise ParticipantUnknown(f"no participant {oin}")
        return self.entries[oin]

    async def verification_keys(
        self, oin: str, *, at: datetime | None = None
    ) -> tuple[VerificationKey, ...]:
        return (await self.participant(oin)).keys

    async def key_history(self, oin: str, *, refresh: bool = False) -> tuple[VerificationKey, ...]:
        return (await self.participant(oin)).keys

    async def contracted_suppliers(
        self, gemeentecode: str, iso_code: str, on: date
    ) -> tuple[Any, ...]:
        return ()

    async def send_daily_report(
        self, report: DailyReport, *, private_jwk: Mapping[str, Any]
    ) -> None:
        self.daily_reports.append(report)


Fault = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


class Network(httpx.AsyncBaseTransport):
    """Routes by host to in-process ASGI apps; a fault hook can answer instead, or record."""

    def __init__(self) -> None:
        self.routes: dict[str, httpx.AsyncBaseTransport] = {}
        self.fault: Fault | None = None
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        if self.fault is not None:
            answer = await self.fault(request)
            if answer is not None:
                return answer
        if request.url.host not in self.routes:
            raise httpx.ConnectError("host unreachable", request=request)
        return await self.routes[request.url.host].handle_async_request(request)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The agent's tables, migrated, in the test's database."""
    database = Database(database_url)
    await database.create_tables()
    yield database
    await database.dispose()


def _another_database(database_url: str, sqlite_file: Path) -> Iterator[str]:
    """An empty database of the same backend as ``database_url``; on SQLite, ``sqlite_file``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{sqlite_file}"
    else:
        yield from _postgresql_database(os.environ[TEST_DATABASE_URL_VARIABLE])


@contextmanager
def databases(database_url: str, tmp_path: Path, count: int) -> Iterator[list[str]]:
    """``count`` empty databases of the test's backend."""
    if database_url.startswith("sqlite"):
        yield [f"sqlite+aiosqlite:///{tmp_path / f'db{n}.sqlite'}" for n in range(count)]
        return
    with ExitStack() as stack:
        server = os.environ[TEST_DATABASE_URL_VARIABLE]
        make = contextmanager(_postgresql_database)
        yield [stack.enter_context(make(server)) for _ in range(count)]


@pytest.fixture
def second_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database of the same backend, for the second agent."""
    yield from _another_database(database_url, tmp_path / "second.sqlite")


def agent_settings(database_url: str, *, gemeente: str, **overrides: Any) -> AgentSettings:
    oin, code, host = (
        (UTRECHT_OIN, "0344", "utrecht")
        if gemeente == "utrecht"
        else (AMSTERDAM_OIN, "0363", "amsterdam")
    )
    values: dict[str, Any] = {
        "oin": oin,
        "role": "gemeente",
        "gemeentecode": code,
        "name": f"Gemeente {host.capitalize()}",
        "signing_jwk": generate_private_jwk("EdDSA"),
        "registry_url": "http://registry.test",
        "registry_trust_anchor": public_jwk(generate_private_jwk("EdDSA")),
        "database_url": database_url,
        "public_base_url": f"http://{host}.test",
        "peer_allow_list": [".test"],
        "case_system_token_sha256": hash_token(CASE_TOKEN),
        "operator_token_sha256": hash_token(OPERATOR_TOKEN),
        "scheduler_enabled": False,
        "outbox_base_delay_seconds": 2.0,
        "outbox_max_delay_seconds": 600.0,
        "outbox_max_age_seconds": 3600,
    }
    return AgentSettings(**(values | overrides))


def supplier_settings(
    database_url: str, supplier: tuple[str, str, str, str], **takeover: Any
) -> AgentSettings:
    """A supplier's agent (OIN, KvK number, name, host) with these takeover settings."""
    oin, kvk, name, host = supplier
    return AgentSettings(
        oin=oin,
        role="supplier",
        kvk_number=kvk,
        name=name,
        signing_jwk=generate_private_jwk("EdDSA"),
        registry_url=REGISTRY,
        registry_trust_anchor=public_jwk(generate_private_jwk("EdDSA")),
        database_url=database_url,
        public_base_url=f"http://{host}.test",
        peer_allow_list=[".test"],
        case_system_token_sha256=hash_token(CASE_TOKEN),
        scheduler_enabled=False,
        outbox_base_delay_seconds=2.0,
        outbox_max_delay_seconds=600.0,
        outbox_max_age_seconds=3600,
        takeover=TakeoverSettings(**takeover),
    )


class Backoffice(httpx.AsyncBaseTransport):
    """The back office webhook: records CloudEvents; can be told to fail."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = 204

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.status >= 300:
            return httpx.Response(self.status)
        self.events.append(json.loads(await request.aread()))
        return httpx.Response(self.status)


def network_with_backoffice() -> tuple[Network, Backoffice]:
    """A network on which the back office's webhook (``WEBHOOK``) answers."""
    network = Network()
    backoffice = Backoffice()
    network.routes["backoffice.test"] = backoffice
    return network, backoffice


@dataclass
class Agents:
    """Utrecht (departing) and Amsterdam (receiving) agents on one in-process network."""

    departing: AgentService
    receiving: AgentService
    departing_app: FastAPI
    receiving_app: FastAPI
    network: Network
    backoffice: Backoffice
    http: httpx.AsyncClient
    clock: FrozenClock
    directory: FakeDirectory
    keys: dict[str, dict[str, Any]]

    async def settle(self, rounds: int = 20) -> None:
        """Delivery passes on both agents until nothing more is delivered."""
        for _ in range(rounds):
            a = await self.departing.deliver_until_quiet()
            b = await self.receiving.deliver_until_quiet()
            if a.delivered == 0 and b.delivered == 0:
                return

    async def start_dossier(self) -> str:
        await self.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
        view = await self.departing.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
        )
        return view.dossier_id

    async def give_consent(
        self,
        dossier_id: str,
        *,
        kinds: tuple[str, ...] = ("identity", "address", "devices", "indicatie"),
        devices: tuple[str, ...] = ("dev-1", "dev-2", "dev-3"),
    ) -> None:
        consent = ConsentInput.model_validate(
            {
                "outcome": "given",
                "dataKinds": kinds,
                "deviceIds": devices,
                "channel": "online",
                "givenBy": "client",
                "givenAt": START.isoformat(),
            }
        )
        await self.departing.record_consent(dossier_id, consent)


@pytest.fixture
def gemeente_settings() -> dict[str, dict[str, Any]]:
    """Per gemeente (utrecht, amsterdam): AgentSettings fields a test overrides."""
    return {}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def peer_resolver() -> Resolver:
    """How the agents resolve other agents' host names for the endpoint check."""
    return system_resolver


@pytest.fixture
async def agents(
    database_url: str, second_database_url: str, clock: FrozenClock, peer_resolver: Resolver
) -> AsyncIterator[Agents]:
    network, backoffice = network_with_backoffice()
    departing_settings = agent_settings(database_url, gemeente="utrecht", webhook_url=WEBHOOK)
    receiving_settings = agent_settings(
        second_database_url, gemeente="amsterdam", webhook_url=WEBHOOK
    )
    directory = FakeDirectory()
    for settings in (departing_settings, receiving_settings):
        key = VerificationKey(public_jwk(settings.private_jwk()))
        directory.entries[settings.oin] = Entry(
            settings.oin, settings.public_base_url, settings.gemeentecode, (key,)
        )
    async with httpx.AsyncClient(transport=network) as http:
        apps = [
            create_app(
                s,
                clock=clock,
                http=http,
                registry=directory,
                random=lambda: 1.0,
                resolver=peer_resolver,
            )
            for s in (departing_settings, receiving_settings)
        ]
        network.routes["utrecht.test"] = httpx.ASGITransport(app=apps[0])
        network.routes["amsterdam.test"] = httpx.ASGITransport(app=apps[1])
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            yield Agents(
                departing=apps[0].state.service,
                receiving=apps[1].state.service,
                departing_app=apps[0],
                receiving_app=apps[1],
                network=network,
                backoffice=backoffice,
                http=http,
                clock=clock,
                directory=directory,
                keys={
                    UTRECHT_OIN: departing_settings.private_jwk(),
                    AMSTERDAM_OIN: receiving_settings.private_jwk(),
                },
            )


@dataclass
class RecordingChannel:
    """Test double of the letter channel: keeps the link notices and the letters without a link."""

    name: str = "letter"
    notices: list[LinkNotice] = field(default_factory=list)
    letters: list[ClientLetter] = field(default_factory=list)

    async def deliver(self, notice: LinkNotice) -> None:
        self.notices.append(notice)

    async def deliver_letter(self, letter: ClientLetter) -> None:
        self.letters.append(letter)

    def token(self) -> str:
        """The token in the personal link of the latest notice."""
        return self.notices[-1].link.split(LINK_PATH, 1)[1]


@pytest.fixture
def letters(agents: Agents) -> RecordingChannel:
    """The departing agent's only channel for personal links, recording what it sends."""
    channel = RecordingChannel()
    agents.departing.consent.channels = [channel]
    return channel


@pytest.fixture
async def browser(agents: Agents) -> AsyncIterator[httpx.AsyncClient]:
    """The client's browser on the departing agent's site: keeps its cookies."""
    base_url = agents.departing.settings.public_base_url
    async with httpx.AsyncClient(transport=agents.network, base_url=base_url) as client:
        yield client


REGISTRY = "http://registry.test"
REGISTRY_TOKEN = "registry-operator-token-for-agent-tests-0123"


@pytest.fixture
def registry_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend for the registry app."""
    yield from _another_database(database_url, tmp_path / "registry.sqlite")


async def enrol_in_registry(
    http: httpx.AsyncClient, anchor: dict[str, Any], clock: FrozenClock, settings: AgentSettings
) -> None:
    """Enrol an agent in the registry at ``REGISTRY`` as its operator and the agent would."""
    operator = OperatorClient(REGISTRY, REGISTRY_TOKEN, http=http)
    if settings.role == "supplier":
        await operator.onboard_supplier(
            oin=settings.oin, kvk_number=settings.kvk_number or "", name=settings.name
        )
        code = await operator.issue_enrolment_code(supplier_oin=settings.oin)
    else:
        code = await operator.issue_enrolment_code(gemeentecode=settings.gemeentecode)
    await RegistryClient(REGISTRY, anchor, http=http, clock=clock).enrol(
        code=code,
        oin=settings.oin,
        endpoint=settings.endpoint,
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(settings.private_jwk())],
    )


@dataclass
class RegistryNetwork:
    """The real registry app on a :class:`Network`, and the agents started beside it."""

    network: Network
    clock: FrozenClock
    http: httpx.AsyncClient
    anchor: dict[str, Any]
    stack: AsyncExitStack

    async def start_agent(self, settings: AgentSettings, **options: Any) -> AgentService:
        """Serve an agent at its public host and enrol it; ``options`` go to ``create_app``."""
        app = create_app(settings, clock=self.clock, http=self.http, **options)
        host = settings.public_base_url.removeprefix("http://")
        self.network.routes[host] = httpx.ASGITransport(app=app)
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        service: AgentService = app.state.service
        await enrol_in_registry(self.http, self.anchor, self.clock, settings)
        return service


@asynccontextmanager
async def registry_network(
    network: Network, clock: FrozenClock, database_url: str
) -> AsyncIterator[RegistryNetwork]:
    """Start the registry at ``REGISTRY`` on ``network``, signing with a new key."""
    registry_key = generate_private_jwk("EdDSA")
    settings = RegistrySettings(
        environment="production",
        database_url=database_url,
        signing_jwk=json.dumps(registry_key),
        operator_token=REGISTRY_TOKEN,
        endpoint_allow_list=[".test"],
    )
    registry_app = create_registry_app(settings, clock=clock)
    network.routes[REGISTRY.removeprefix("http://")] = httpx.ASGITransport(app=registry_app)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(transport=network))
        await stack.enter_async_context(registry_app.router.lifespan_context(registry_app))
        yield RegistryNetwork(network, clock, http, public_jwk(registry_key), stack)
