"""Many organisations on a few ``agent host`` processes on 127.0.0.1 (simulation, benchmark).

Each hosted organisation is a whole agent with its own settings file, key, SQLite file, token and
host name (``http://KEY.test:PORT``); the organisations are spread over ``processes`` hosts,
and each host has one shared address for messages (docs/hosting.md). Requests to a ``.test``
host name go to 127.0.0.1 through :class:`LoopbackTransport`, so the organisations' own
addresses (and the personal links in their letters) work as they are. A host's shared address
may be a port in front of it (a fault proxy, ``agent.simulation.faults``): ``endpoint_ports``.

Every organisation is enrolled at the registry as an operator would do it; a supplier gets the
contracts its spec names. All organisations of the network share one token for the case system,
the planner, the operator and the BRP push (a test network: one caller plays every role).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.local.network import (
    GemeenteSpec,
    LocalRegistry,
    SupplierSpec,
    enrol_with_code,
    start_registry,
    supplier_enrolment_code,
    write_settings,
)
from agent.local.processes import HOST, ServerProcess, free_port
from agent.local.starting import DEFAULT_START_SECONDS
from agent.settings import hash_token
from agent.storage.database import MIGRATIONS
from protocol.jwk import generate_private_jwk
from registry.operator import OperatorClient

__all__ = [
    "HostedNetwork",
    "HostedOrganisation",
    "LoopbackTransport",
    "gemeente_oin",
    "hosted_network",
]

_TEST_DOMAIN = ".test"


@dataclass(frozen=True)
class HostedOrganisation:
    """One organisation of the network: a gemeente or a supplier, on one of the hosts."""

    key: str
    name: str
    oin: str
    role: str
    host: int
    base_url: str
    # The host's shared address for messages, registered for this organisation.
    endpoint: str
    gemeentecode: str | None = None


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Sends a request for a ``.test`` host name to 127.0.0.1, keeping its ``Host`` header."""

    def __init__(self, **options: Any) -> None:
        self._inner = httpx.AsyncHTTPTransport(**options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.host.endswith(_TEST_DOMAIN):
            return await self._inner.handle_async_request(request)
        # A copy goes out: the caller's request keeps its URL, so its cookies keep their host.
        loopback = httpx.Request(
            request.method,
            request.url.copy_with(host=HOST),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(loopback)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class HostedNetwork:
    """The registry, the hosts and every organisation on them, started and enrolled."""

    folder: Path
    registry: ServerProcess
    hosts: list[ServerProcess]
    organisations: dict[str, HostedOrganisation]
    token: str
    operator_token: str

    def auth(self) -> dict[str, str]:
        """The Authorization header every organisation of the network accepts."""
        return {"Authorization": f"Bearer {self.token}"}

    async def restart(self, host: int, http: httpx.AsyncClient, *, seconds: float) -> None:
        """SIGKILL host number ``host`` and start it again; returns once it is ready."""
        server = self.hosts[host]
        server.kill()
        server.start()
        await server.wait_ready(http, seconds=seconds)


def gemeente_oin(gemeentecode: str) -> str:
    """A test OIN for a gemeente: 00000001, an RSIN made from its code (9xxx + code), 000."""
    weights = (9, 8, 7, 6, 5, 4, 3, 2)
    for filler in range(100, 1000):
        digits = f"9{filler}{gemeentecode}"
        check = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
        if check < 10:
            return f"00000001{digits}{check}000"
    raise ValueError(f"no test RSIN for gemeentecode {gemeentecode}")


def _organisation_values(
    folder: Path, key: str, port: int, shared: str, registry_url: str, token: str
) -> dict[str, Any]:
    key_path = folder / f"{key}-key.json"
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(generate_private_jwk("EdDSA")))
    return {
        "signing_key_file": key_path,
        "registry_url": registry_url,
        "registry_trust_anchor_file": folder / "registry-anchor.json",
        "database_url": f"sqlite+aiosqlite:///{folder / f'{key}.sqlite'}",
        "public_base_url": f"http://{key}{_TEST_DOMAIN}:{port}",
        "endpoint_url": shared,
        "case_system_token_sha256": hash_token(token),
        "operator_token_sha256": hash_token(token),
        "peer_allow_list": [HOST],
    }


def _write_organisations(
    folder: Path,
    specs: Sequence[GemeenteSpec | SupplierSpec],
    ports: Sequence[int],
    shared_ports: Sequence[int],
    registry_url: str,
    token: str,
    agent_settings: Mapping[str, Any],
) -> dict[str, HostedOrganisation]:
    """Each organisation's settings file, dealt over the hosts in turn."""
    organisations: dict[str, HostedOrganisation] = {}
    for number, spec in enumerate(specs):
        host = number % len(ports)
        shared = f"http://{HOST}:{shared_ports[host]}"
        values = _organisation_values(folder, spec.key, ports[host], shared, registry_url, token)
        values |= {"name": spec.name, "oin": spec.oin}
        if isinstance(spec, GemeenteSpec):
            role = "gemeente"
            values |= {"gemeentecode": spec.gemeentecode, "brp_token_sha256": hash_token(token)}
        else:
            role = "supplier"
            values |= {"kvk_number": spec.kvk_number}
        values |= {"role": role, **agent_settings}
        write_settings(folder / f"{spec.key}.toml", values)
        organisations[spec.key] = HostedOrganisation(
            key=spec.key,
            name=spec.name,
            oin=spec.oin,
            role=role,
            host=host,
            base_url=str(values["public_base_url"]),
            endpoint=shared,
            gemeentecode=spec.gemeentecode if isinstance(spec, GemeenteSpec) else None,
        )
    return organisations


def _host(
    folder: Path, number: int, port: int, shared: str, files: list[str], log_level: str
) -> ServerProcess:
    """Write host ``number``'s settings file and describe its ``agent host`` process."""
    config = folder / f"host-{number}.toml"
    write_settings(
        config, {"public_base_url": shared, "host": HOST, "port": port, "organisations": files}
    )
    return ServerProcess(
        name=f"agent host {number}",
        arguments=("agent", "host", "--config", str(config), "--log-level", log_level),
        port=port,
        log_path=folder / f"host-{number}.log",
        health_path="/v1/health",
    )


@asynccontextmanager
async def hosted_network(
    folder: Path,
    *,
    gemeenten: Sequence[GemeenteSpec],
    suppliers: Sequence[SupplierSpec] = (),
    processes: int = 2,
    agent_settings: Mapping[str, Any] | None = None,
    endpoint_ports: Sequence[int] | None = None,
    log_level: str = "warning",
    start_seconds: float = DEFAULT_START_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[HostedNetwork]:
    """Start the registry and ``processes`` hosts with every organisation; all stop on exit.

    Organisations are dealt over the hosts in turn. ``agent_settings`` go into every
    organisation's settings file. ``endpoint_ports`` gives each host the port of its shared
    address for messages (a proxy in front of it); without it the host's own port is used.
    """
    token = f"simulation-{os.urandom(16).hex()}"
    ports = [free_port() for _ in range(processes)]
    shared_ports = list(endpoint_ports) if endpoint_ports is not None else ports
    specs: list[GemeenteSpec | SupplierSpec] = [*gemeenten, *suppliers]
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))
        registry = start_registry(folder, free_port())
        stack.callback(registry.server.stop)
        registry_url = registry.server.base_url
        organisations = _write_organisations(
            folder, specs, ports, shared_ports, registry_url, token, agent_settings or {}
        )
        await asyncio.to_thread(_copy_migrated_database, folder, list(organisations))
        hosts = []
        for number, port in enumerate(ports):
            files = [f"{o.key}.toml" for o in organisations.values() if o.host == number]
            shared = f"http://{HOST}:{shared_ports[number]}"
            server = _host(folder, number, port, shared, files, log_level)
            stack.callback(server.stop)
            server.start()
            hosts.append(server)
        await registry.server.wait_ready(http, seconds=start_seconds, on_wait=on_wait)
        operator = OperatorClient(registry_url, registry.operator_token, http=http)
        await _enrol_all(http, operator, registry, specs, organisations, folder)
        for server in hosts:
            await server.wait_ready(http, seconds=start_seconds, on_wait=on_wait)
        yield HostedNetwork(
            folder, registry.server, hosts, organisations, token, registry.operator_token
        )


def _copy_migrated_database(folder: Path, keys: Sequence[str]) -> None:
    """Migrate one SQLite file and copy it for every organisation (a host then starts fast)."""
    if not keys:
        return
    template = folder / "template.sqlite"
    MIGRATIONS.upgrade_database(f"sqlite+aiosqlite:///{template}")
    for key in keys:
        shutil.copyfile(template, folder / f"{key}.sqlite")
    template.unlink()


async def _enrol_all(
    http: httpx.AsyncClient,
    operator: OperatorClient,
    registry: LocalRegistry,
    specs: Sequence[GemeenteSpec | SupplierSpec],
    organisations: Mapping[str, HostedOrganisation],
    folder: Path,
) -> None:
    """Enrol every organisation; suppliers are onboarded first and get their contracts."""
    limit = asyncio.Semaphore(8)

    async def enrol(spec: GemeenteSpec | SupplierSpec) -> None:
        async with limit:
            if isinstance(spec, GemeenteSpec):
                code = await operator.issue_enrolment_code(gemeentecode=spec.gemeentecode)
            else:
                code = await supplier_enrolment_code(operator, spec)
            await enrol_with_code(
                http,
                registry.server.base_url,
                registry.anchor,
                code,
                spec.oin,
                organisations[spec.key].endpoint,
                folder / f"{spec.key}-key.json",
            )

    await asyncio.gather(*(enrol(spec) for spec in specs))
