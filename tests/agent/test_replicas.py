"""Two replicas per gemeente on one PostgreSQL database each, as real uvicorn processes.

Each gemeente's registered endpoint is a counting load balancer in this test process: it spreads
inbound messages over the gemeente's two replicas and counts every request per message id, so a
message sent twice by two replicas would show up there even though the receiver deduplicates.

The batch size is ``MEEVERHUIZEN_REPLICA_DOSSIERS`` (default 40; the issue's run is 1000).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agent.local.network import AMSTERDAM, UTRECHT, GemeenteSpec, start_registry
from agent.local.processes import HOST, ServerProcess, free_port
from agent.local.synthetic import synthetic_clients, valid_bsns
from agent.settings import hash_token
from agent.storage.database import Database
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES
from registry.client import RegistryClient
from registry.operator import OperatorClient
from tests.agent.test_processes import NEW_ADDRESS
from tests.conftest import TEST_DATABASE_URL_VARIABLE, _postgresql_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get(TEST_DATABASE_URL_VARIABLE), reason="needs a PostgreSQL test database"
    ),
]

DOSSIERS = int(os.environ.get("MEEVERHUIZEN_REPLICA_DOSSIERS", "40"))
REPLICAS = 2
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection"})
CONSENT = {
    "dataKinds": ["identity", "address", "devices", "indicatie"],
    "deviceIds": ["rolstoel", "bed", "traplift"],
    "channel": "online",
    "givenBy": "client",
}


@dataclass
class CountingBalancer:
    """Round robin over replicas; counts POST /v1/messages per message id."""

    targets: list[str]
    http: httpx.AsyncClient
    deliveries: Counter[str] = field(default_factory=Counter)
    _next: Iterator[int] = field(default_factory=itertools.count)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        if request.method == "POST" and request.url.path == "/v1/messages":
            self.deliveries[json.loads(body)["messageId"]] += 1
        target = self.targets[next(self._next) % len(self.targets)]
        headers = [
            (k, v) for k, v in request.headers.items() if k not in {"host", "content-length"}
        ]
        answer = await self.http.request(
            request.method, target + request.url.path, content=body, headers=headers
        )
        kept = {k: v for k, v in answer.headers.items() if k not in _NOT_FORWARDED}
        await Response(answer.content, answer.status_code, kept)(scope, receive, send)


@asynccontextmanager
async def serving(app: CountingBalancer) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Gemeente:
    spec: GemeenteSpec
    database_url: str
    token: str
    replicas: list[ServerProcess]
    balancer: CountingBalancer
    endpoint: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def write_config(path: Path, values: dict[str, Any]) -> None:
    lines = [f"{name} = {json.dumps(value)}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextmanager
def postgresql_database() -> Iterator[str]:
    yield from _postgresql_database(os.environ[TEST_DATABASE_URL_VARIABLE])


async def start_gemeente(
    spec: GemeenteSpec, folder: Path, registry_url: str, http: httpx.AsyncClient, stack: Any
) -> tuple[Gemeente, dict[str, Any]]:
    database_url = stack.enter_context(postgresql_database())
    # The schema exists before the replicas start (as after a migration).
    database = Database(database_url)
    await database.create_tables()
    await database.dispose()
    key = generate_private_jwk("EdDSA")
    (folder / f"{spec.key}-key.json").write_text(json.dumps(key), encoding="utf-8")
    token = f"case-system-{spec.key}-{os.urandom(8).hex()}"
    ports = [free_port() for _ in range(REPLICAS)]
    balancer = CountingBalancer([f"http://{HOST}:{port}" for port in ports], http)
    endpoint = await stack.enter_async_context(serving(balancer))
    replicas = []
    for number, port in enumerate(ports):
        config = folder / f"{spec.key}-{number}.toml"
        write_config(
            config,
            {
                "oin": spec.oin,
                "gemeentecode": spec.gemeentecode,
                "name": spec.name,
                "signing_key_file": str(folder / f"{spec.key}-key.json"),
                "registry_url": registry_url,
                "registry_trust_anchor_file": str(folder / "registry-anchor.json"),
                "database_url": database_url,
                "public_base_url": endpoint,
                "host": HOST,
                "port": port,
                "case_system_token_sha256": hash_token(token),
                "outbox_base_delay_seconds": 0.2,
                "outbox_max_delay_seconds": 1.0,
                "delivery_interval_seconds": 0.5,
                # The peers (load balancers) listen on loopback, which only an allow-list admits.
                "peer_allow_list": [HOST],
            },
        )
        server = ServerProcess(
            name=f"agent {spec.key} {number}",
            arguments=("agent", "serve", "--config", str(config), "--log-level", "warning"),
            port=port,
            log_path=folder / f"{spec.key}-{number}.log",
            health_path="/v1/health",
        )
        stack.callback(server.stop)
        server.start()
        replicas.append(server)
    return Gemeente(spec, database_url, token, replicas, balancer, endpoint), key


async def enrol(
    http: httpx.AsyncClient,
    registry: ServerProcess,
    operator_token: str,
    anchor: dict[str, Any],
    gemeente: Gemeente,
    key: dict[str, Any],
) -> None:
    operator = OperatorClient(registry.base_url, operator_token, http=http)
    code = await operator.issue_enrolment_code(gemeentecode=gemeente.spec.gemeentecode)
    await RegistryClient(registry.base_url, anchor, http=http).enrol(
        code=code,
        oin=gemeente.spec.oin,
        endpoint=gemeente.endpoint,
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(key)],
    )


@asynccontextmanager
async def replicated_network(
    folder: Path, http: httpx.AsyncClient
) -> AsyncIterator[tuple[Gemeente, Gemeente]]:
    async with AsyncExitStack() as stack:
        started_registry = start_registry(folder, free_port())
        stack.callback(started_registry.server.stop)
        registry = started_registry.server
        operator_token, anchor = started_registry.operator_token, started_registry.anchor
        await registry.wait_ready(http)
        started = [
            await start_gemeente(spec, folder, registry.base_url, http, stack)
            for spec in (UTRECHT, AMSTERDAM)
        ]
        for gemeente, key in started:
            await enrol(http, registry, operator_token, anchor, gemeente, key)
        for gemeente, _ in started:
            for replica in gemeente.replicas:
                await replica.wait_ready(http, seconds=60.0)
        yield started[0][0], started[1][0]


async def call(
    http: httpx.AsyncClient,
    gemeente: Gemeente,
    replica: int,
    method: str,
    path: str,
    **options: Any,
) -> Any:
    base = gemeente.replicas[replica % REPLICAS].base_url
    answer = await http.request(method, base + path, headers=gemeente.auth(), **options)
    assert answer.status_code < 300, answer.text
    return answer.json()


async def hand_over(http: httpx.AsyncClient, utrecht: Gemeente, bsns: list[str]) -> list[str]:
    """Import, start and consent, with the case system's calls spread over both replicas."""
    await call(http, utrecht, 0, "POST", "/v1/provisions/imports", json=synthetic_clients(bsns))
    move_date = (date.today() + timedelta(days=21)).isoformat()
    limit = asyncio.Semaphore(16)

    async def one(number: int, bsn: str) -> str:
        async with limit:
            body = {"bsn": bsn, "moveDate": move_date, "newAddress": NEW_ADDRESS}
            dossier = await call(http, utrecht, number, "POST", "/v1/dossiers", json=body)
            consent = CONSENT | {"givenAt": datetime.now(UTC).isoformat()}
            path = f"/v1/dossiers/{dossier['dossierId']}/consent"
            await call(http, utrecht, number + 1, "POST", path, json=consent)
            return str(dossier["dossierId"])

    return list(await asyncio.gather(*(one(n, bsn) for n, bsn in enumerate(bsns))))


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        return connection.execute(sql).fetchall()  # type: ignore[arg-type]


async def wait_until_completed(
    http: httpx.AsyncClient, gemeenten: tuple[Gemeente, Gemeente], count: int, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    sql = "SELECT COUNT(*) FROM dossiers WHERE state = 'completed'"
    while time.monotonic() < deadline:
        if all(query(g.database_url, sql) == [(count,)] for g in gemeenten):
            return
        await asyncio.sleep(0.25)
    logs = "\n".join(r.log_tail() for g in gemeenten for r in g.replicas)
    raise AssertionError(f"not every dossier completed in {seconds} s\n{logs}")


def check_exactly_once(sender: Gemeente, receiver: Gemeente, message_type: str, count: int) -> None:
    sent = query(
        sender.database_url,
        f"SELECT message_id, state FROM outbox WHERE message_type = '{message_type}'",  # noqa: S608
    )
    # No missed deadline: every message delivered, none dead, none still waiting.
    assert len(sent) == count
    assert {state for _, state in sent} == {"delivered"}
    delivered = {message_id: receiver.balancer.deliveries[message_id] for message_id, _ in sent}
    # Counted at the receiver's door: each message arrived exactly once.
    assert delivered == dict.fromkeys(delivered, 1)
    stored = query(
        receiver.database_url,
        f"SELECT COUNT(*) FROM inbound_messages WHERE message_type = '{message_type}'",  # noqa: S608
    )
    assert stored == [(count,)]


async def test_two_replicas_per_gemeente_hand_over_a_batch_exactly_once(tmp_path: Path) -> None:
    async with (
        httpx.AsyncClient(timeout=60.0) as http,
        replicated_network(tmp_path, http) as (utrecht, amsterdam),
    ):
        started = time.monotonic()
        await hand_over(http, utrecht, valid_bsns(DOSSIERS, first=999_900_000))
        await wait_until_completed(http, (utrecht, amsterdam), DOSSIERS, 60.0 + DOSSIERS * 0.5)
        print(f"{DOSSIERS} dossiers handed over in {time.monotonic() - started:.1f} s")
        check_exactly_once(utrecht, amsterdam, "dossier-offer", DOSSIERS)
        check_exactly_once(amsterdam, utrecht, "device-decision", DOSSIERS)
        transitions = query(
            utrecht.database_url,
            "SELECT COUNT(*) FROM transitions GROUP BY dossier_id HAVING COUNT(*) <> 6",
        )
        assert transitions == []
