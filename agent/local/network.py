"""A registry and gemeente agents as real uvicorn processes on 127.0.0.1 (demo, tests, benchmark).

Each process gets a free port, a SQLite file (or a database URL given for an agent) and keys in
one folder. The registry is the trust
anchor; agents enrol with a one-time code, as an operator would do it (docs/registry.md).
Supplier agents are onboarded by the operator, enrol the same way, and get the contracts
their spec names.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from agent.local.processes import HOST, ServerProcess, free_port
from agent.local.starting import DEFAULT_START_SECONDS
from agent.settings import hash_token
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES
from registry.client import RegistryClient
from registry.operator import OperatorClient

__all__ = [
    "AMSTERDAM",
    "HULPMIDDELEN",
    "UTRECHT",
    "ZORGTECHNIEK",
    "GemeenteSpec",
    "LocalAgent",
    "LocalNetwork",
    "LocalRegistry",
    "LocalSupplier",
    "SupplierSpec",
    "enrol_with_code",
    "local_network",
    "start_registry",
    "supplier_enrolment_code",
    "write_settings",
]


@dataclass(frozen=True)
class GemeenteSpec:
    """A gemeente that runs an agent in the local network."""

    key: str
    name: str
    gemeentecode: str
    oin: str


UTRECHT = GemeenteSpec("utrecht", "Gemeente Utrecht", "0344", "00000001002220647000")
AMSTERDAM = GemeenteSpec("amsterdam", "Gemeente Amsterdam", "0363", "00000001002564440000")


@dataclass(frozen=True)
class SupplierSpec:
    """A supplier that runs an agent, and the gemeente contracts it holds (ISO 9999 prefixes)."""

    key: str
    name: str
    kvk_number: str
    contracts: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def oin(self) -> str:
        return f"00000003{self.kvk_number}0000"


# Utrecht's supplier of the demo's scootmobiel, and Amsterdam's contracted supplier for it.
HULPMIDDELEN = SupplierSpec("hulpmiddelen", "Hulpmiddelen BV", "12345678", (("0344", ("12 23",)),))
ZORGTECHNIEK = SupplierSpec("zorgtechniek", "Zorgtechniek", "87654321", (("0363", ("12 23",)),))


@dataclass
class LocalAgent:
    """A gemeente agent process with what a caller needs to talk to it.

    ``database_path`` is its SQLite file, unused when ``database_url`` names another database.
    """

    spec: GemeenteSpec
    server: ServerProcess
    database_path: Path
    config_path: Path
    case_system_token: str
    brp_token: str
    database_url: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def auth(self) -> dict[str, str]:
        """Authorization header of the gemeente's case system."""
        return {"Authorization": f"Bearer {self.case_system_token}"}


@dataclass
class LocalSupplier:
    """A supplier agent process with its planner's token."""

    spec: SupplierSpec
    server: ServerProcess
    config_path: Path
    token: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def auth(self) -> dict[str, str]:
        """Authorization header of the supplier's planner."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class LocalNetwork:
    """The registry and the agents, started and enrolled."""

    folder: Path
    registry: ServerProcess
    agents: dict[str, LocalAgent]
    suppliers: dict[str, LocalSupplier] = field(default_factory=dict)
    # The registry's operator token (a conformance run enrols the kit with it).
    registry_operator_token: str = ""

    def processes(self) -> list[ServerProcess]:
        servers = [agent.server for agent in self.agents.values()]
        return [self.registry, *servers, *(s.server for s in self.suppliers.values())]

    def stop(self) -> None:
        """Stop every process (agents first)."""
        for process in reversed(self.processes()):
            process.stop()


def _write_private(path: Path, content: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # A JSON string of printable ASCII is a valid TOML basic string.
    return json.dumps(str(value), ensure_ascii=True)


def _common_values(
    folder: Path, port: int, registry_url: str, key: str, token: str
) -> dict[str, Any]:
    """Settings every agent of the network shares: a new key, the registry, loopback, retries."""
    key_path = folder / f"{key}-key.json"
    _write_private(key_path, json.dumps(generate_private_jwk("EdDSA")))
    return {
        "signing_key_file": key_path,
        "registry_url": registry_url,
        "registry_trust_anchor_file": folder / "registry-anchor.json",
        "database_url": f"sqlite+aiosqlite:///{folder / f'{key}.sqlite'}",
        "public_base_url": f"http://{HOST}:{port}",
        "host": HOST,
        "port": port,
        "case_system_token_sha256": hash_token(token),
        "outbox_base_delay_seconds": 0.5,
        "outbox_max_delay_seconds": 2.0,
        "delivery_interval_seconds": 1.0,
        "peer_allow_list": [HOST],
    }


def write_settings(path: Path, values: Mapping[str, Any]) -> None:
    """Write a settings file: one ``key = value`` line per (dotted) setting."""
    lines = [f"{setting} = {_toml_value(value)}" for setting, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _server(
    key: str, name: str, folder: Path, port: int, values: Mapping[str, Any], log_level: str
) -> ServerProcess:
    """Write the agent's TOML file and describe its ``agent serve`` process."""
    config_path = folder / f"{key}.toml"
    write_settings(config_path, values)
    return ServerProcess(
        name=name,
        arguments=("agent", "serve", "--config", str(config_path), "--log-level", log_level),
        port=port,
        log_path=folder / f"{key}.log",
        health_path="/v1/health/ready",
    )


@dataclass(frozen=True)
class LocalRegistry:
    """A registry process with its operator token and trust anchor (its public JWK)."""

    server: ServerProcess
    operator_token: str
    anchor: dict[str, Any]


def start_registry(
    folder: Path,
    port: int,
    *,
    signing_jwk: Mapping[str, Any] | None = None,
    endpoint_hosts: Sequence[str] = (HOST,),
    host: str = HOST,
) -> LocalRegistry:
    """Start ``meeverhuizen registry serve`` on ``port`` with a SQLite file in ``folder``.

    The registry signs with ``signing_jwk`` (a new key when None); its public JWK is written to
    ``folder/registry-anchor.json``. Endpoints on ``endpoint_hosts`` may be registered over http
    (a test network). The caller stops the process.
    """
    registry_key = dict(signing_jwk) if signing_jwk is not None else generate_private_jwk("EdDSA")
    key_path = folder / "registry-key.json"
    _write_private(key_path, json.dumps(registry_key))
    anchor = public_jwk(registry_key)
    (folder / "registry-anchor.json").write_text(json.dumps(anchor), encoding="utf-8")
    operator_token = f"registry-operator-{os.urandom(16).hex()}"
    database = f"sqlite+aiosqlite:///{folder / 'registry.sqlite'}"
    arguments = ("registry", "serve", "--host", host, "--port", str(port))
    server = ServerProcess(
        name="registry",
        arguments=(*arguments, "--database-url", database, "--key-file", str(key_path)),
        port=port,
        log_path=folder / "registry.log",
        health_path="/v1/health/ready",
        environment={
            "MEEVERHUIZEN_REGISTRY_ENVIRONMENT": "production",
            "MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": operator_token,
            "MEEVERHUIZEN_REGISTRY_ENDPOINT_ALLOW_LIST": json.dumps(list(endpoint_hosts)),
        },
    )
    server.start()
    return LocalRegistry(server, operator_token, anchor)


async def _enrol(
    http: httpx.AsyncClient,
    registry_url: str,
    operator_token: str,
    anchor: Mapping[str, Any],
    agent: LocalAgent,
) -> None:
    operator = OperatorClient(registry_url, operator_token, http=http)
    code = await operator.issue_enrolment_code(gemeentecode=agent.spec.gemeentecode)
    key_file = agent.config_path.with_name(f"{agent.spec.key}-key.json")
    await enrol_with_code(
        http, registry_url, anchor, code, agent.spec.oin, agent.base_url, key_file
    )


async def enrol_with_code(
    http: httpx.AsyncClient,
    registry_url: str,
    anchor: Mapping[str, Any],
    code: str,
    oin: str,
    endpoint: str,
    key_file: Path,
) -> None:
    """Enrol as the agent would: its endpoint, every message type and its public key."""
    private = json.loads(await asyncio.to_thread(key_file.read_text))
    await RegistryClient(registry_url, anchor, http=http).enrol(
        code=code,
        oin=oin,
        endpoint=endpoint,
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(private)],
    )


@asynccontextmanager
async def local_network(
    folder: Path,
    *,
    gemeenten: Sequence[GemeenteSpec] = (UTRECHT, AMSTERDAM),
    suppliers: Sequence[SupplierSpec] = (),
    agent_settings: Mapping[str, Any] | None = None,
    database_urls: Mapping[str, str] | None = None,
    log_level: str = "warning",
    start_seconds: float = DEFAULT_START_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[LocalNetwork]:
    """Start the registry and one enrolled agent per gemeente and supplier; all stop on exit.

    ``agent_settings`` are written into each agent's TOML file (``AgentSettings`` fields).
    ``database_urls`` gives a gemeente's agent (by key) its own database, e.g. PostgreSQL; the
    others get a SQLite file in ``folder``. Each process is waited for by its readiness path
    for as long as it makes progress, at most ``start_seconds``; ``on_wait`` hears what is
    waited for while it takes long (:mod:`agent.local.starting`).
    """
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))
        ports = _free_ports(1 + len(gemeenten) + len(suppliers))
        # Every agent of the local network listens on loopback over http.
        started = start_registry(folder, ports[0])
        stack.callback(started.server.stop)
        registry, operator_token, anchor = started.server, started.operator_token, started.anchor
        agents: dict[str, LocalAgent] = {}
        # All processes start at once (most of their start-up is importing); enrolment only
        # needs the registry, and an agent looks the registry up only when it sends.
        for spec, port in zip(gemeenten, ports[1 : 1 + len(gemeenten)], strict=True):
            overrides = dict(agent_settings or {})
            if database_urls and spec.key in database_urls:
                overrides["database_url"] = database_urls[spec.key]
            agent = _agent(spec, folder, port, registry.base_url, overrides, log_level)
            stack.callback(agent.server.stop)
            agent.server.start()
            agents[spec.key] = agent
        planners: dict[str, LocalSupplier] = {}
        for supplier_spec, port in zip(suppliers, ports[1 + len(gemeenten) :], strict=True):
            supplier = _supplier(
                supplier_spec, folder, port, registry.base_url, agent_settings or {}, log_level
            )
            stack.callback(supplier.server.stop)
            supplier.server.start()
            planners[supplier_spec.key] = supplier
        await registry.wait_ready(http, seconds=start_seconds, on_wait=on_wait)
        for agent in agents.values():
            await _enrol(http, registry.base_url, operator_token, anchor, agent)
        for supplier in planners.values():
            await _enrol_supplier(http, registry.base_url, operator_token, anchor, supplier)
        for server in [a.server for a in agents.values()] + [s.server for s in planners.values()]:
            await server.wait_ready(http, seconds=start_seconds, on_wait=on_wait)
        yield LocalNetwork(
            folder=folder,
            registry=registry,
            agents=agents,
            suppliers=planners,
            registry_operator_token=operator_token,
        )


async def _enrol_supplier(
    http: httpx.AsyncClient,
    registry_url: str,
    operator_token: str,
    anchor: Mapping[str, Any],
    supplier: LocalSupplier,
) -> None:
    spec = supplier.spec
    operator = OperatorClient(registry_url, operator_token, http=http)
    code = await supplier_enrolment_code(operator, spec)
    key_file = supplier.config_path.with_name(f"{spec.key}-key.json")
    await enrol_with_code(http, registry_url, anchor, code, spec.oin, supplier.base_url, key_file)


async def supplier_enrolment_code(operator: OperatorClient, spec: SupplierSpec) -> str:
    """Onboard the supplier with the contracts its spec names; its one-time enrolment code."""
    await operator.onboard_supplier(oin=spec.oin, kvk_number=spec.kvk_number, name=spec.name)
    for gemeentecode, prefixes in spec.contracts:
        await operator.add_contract(
            gemeentecode=gemeentecode,
            supplier_oin=spec.oin,
            iso_prefixes=list(prefixes),
            valid_from=date(2020, 1, 1),
        )
    return await operator.issue_enrolment_code(supplier_oin=spec.oin)


def _supplier(
    spec: SupplierSpec,
    folder: Path,
    port: int,
    registry_url: str,
    overrides: Mapping[str, Any],
    log_level: str,
) -> LocalSupplier:
    token = f"planner-{spec.key}-{os.urandom(16).hex()}"
    values = _common_values(folder, port, registry_url, spec.key, token) | {
        "oin": spec.oin,
        "role": "supplier",
        "kvk_number": spec.kvk_number,
        "name": spec.name,
    }
    values |= {k: v for k, v in overrides.items() if not k.startswith("consent.")}
    server = _server(spec.key, f"supplier {spec.key}", folder, port, values, log_level)
    return LocalSupplier(spec, server, folder / f"{spec.key}.toml", token)


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _agent(
    spec: GemeenteSpec,
    folder: Path,
    port: int,
    registry_url: str,
    overrides: Mapping[str, Any],
    log_level: str,
) -> LocalAgent:
    token = f"case-system-{spec.key}-{os.urandom(16).hex()}"
    brp_token = f"brp-{spec.key}-{os.urandom(16).hex()}"
    values = _common_values(folder, port, registry_url, spec.key, token) | {
        "oin": spec.oin,
        "role": "gemeente",
        "gemeentecode": spec.gemeentecode,
        "name": spec.name,
        "brp_token_sha256": hash_token(brp_token),
    }
    values |= overrides
    server = _server(spec.key, f"agent {spec.key}", folder, port, values, log_level)
    return LocalAgent(
        spec,
        server,
        database_path=folder / f"{spec.key}.sqlite",
        config_path=folder / f"{spec.key}.toml",
        case_system_token=token,
        brp_token=brp_token,
        database_url=str(values["database_url"]),
    )
