"""Registry benchmark: cached client resolutions, and served resolutions against a static answer.

Run: ``.venv/bin/python bench/bench_registry.py`` (prints one table; see docs/performance.md).

1. cached: ``RegistryClient.gemeente`` answered from the verified cache (no I/O), per second;
2. uncached: ``GET /v1/gemeenten/0344`` against ``meeverhuizen registry serve`` (uvicorn, one
   process, SQLite, loopback only): every answer is looked up in the database and signed;
3. static: ``GET /v1/status`` of the same service (signed constant answer, no database): the
   framework's own limit. The ratio uncached/static is the figure of merit (target >= 50%).

The load generator speaks HTTP/1.1 keep-alive over raw asyncio streams, so that it is not the
bottleneck (an httpx client would be).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from protocol.jwk import (
    generate_private_jwk,
    load_private_jwk_from_pem,
    private_jwk_to_pem,
    public_jwk,
)
from registry.client import RegistryClient
from registry.operator import OperatorClient

TOKEN = secrets.token_urlsafe(24)
UTRECHT_OIN = "00000001002220647000"
CACHED_LOOKUPS = 200_000
CONNECTIONS = 16
REQUESTS_PER_RUN = 4_000
RUNS = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_server(directory: Path, port: int) -> subprocess.Popen[bytes]:
    key_file = directory / "registry.pem"
    if not key_file.exists():
        key_file.write_bytes(private_jwk_to_pem(generate_private_jwk("EdDSA")))
        key_file.chmod(0o600)  # production refuses a key file others can read
    environment = {
        **os.environ,
        "MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": TOKEN,
        "MEEVERHUIZEN_REGISTRY_ENVIRONMENT": "production",
        # The enrolled agent's endpoint is on loopback, which production admits only when named.
        "MEEVERHUIZEN_REGISTRY_ENDPOINT_ALLOW_LIST": '["127.0.0.1"]',
    }
    command = [
        sys.executable, "-c", "from agent.cli import main; main()", "registry", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--key-file", str(key_file),
        "--database-url", f"sqlite+aiosqlite:///{directory / 'registry.sqlite'}",
    ]  # fmt: skip
    log = (directory / "registry.log").open("ab")
    return subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)


async def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(1200):  # up to a minute: start-up is mostly importing
            if server.poll() is not None:
                break
            try:
                if (await http.get(f"{url}/v1/status")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    tail = await asyncio.to_thread(log.read_text)
    raise SystemExit(f"registry did not start; {log}:\n{tail[-2000:]}")


async def _enrol(url: str, trust_anchor: dict[str, object]) -> RegistryClient:
    http = httpx.AsyncClient()
    operator = OperatorClient(url, TOKEN, http=http)
    code = await operator.issue_enrolment_code(gemeentecode="0344")
    client = RegistryClient(url, trust_anchor, http=http)
    await client.enrol(
        code=code,
        oin=UTRECHT_OIN,
        endpoint="http://127.0.0.1:8101",
        protocol_versions=["1.0"],
        message_types=["nl.meeverhuizen.dossier-offer"],
        public_jwks=[public_jwk(generate_private_jwk("EdDSA"))],
    )
    return client


async def _cached_rate(client: RegistryClient) -> float:
    await client.gemeente("0344")  # fill the cache
    start = time.perf_counter()
    for _ in range(CACHED_LOOKUPS):
        await client.gemeente("0344")
    return CACHED_LOOKUPS / (time.perf_counter() - start)


async def _connection(port: int, path: str, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    try:
        for _ in range(count):
            writer.write(request.encode("ascii"))
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {head[:40]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


async def _served_rates(port: int, *paths: str) -> list[float]:
    """Median rate per path; the paths take turns, so a change in machine load hits both."""
    per_connection = REQUESTS_PER_RUN // CONNECTIONS
    rates: list[list[float]] = [[] for _ in paths]
    for _ in range(RUNS):
        for path, path_rates in zip(paths, rates, strict=True):
            start = time.perf_counter()
            await asyncio.gather(
                *(_connection(port, path, per_connection) for _ in range(CONNECTIONS))
            )
            path_rates.append(per_connection * CONNECTIONS / (time.perf_counter() - start))
    return [statistics.median(path_rates) for path_rates in rates]


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_server(Path(directory), port)
        try:
            await _wait_until_up(url, server, Path(directory) / "registry.log")
            key = load_private_jwk_from_pem((Path(directory) / "registry.pem").read_bytes())
            client = await _enrol(url, public_jwk(key))
            cached = await _cached_rate(client)
            await _served_rates(port, "/v1/status", "/v1/gemeenten/0344")  # warm up
            static, uncached = await _served_rates(port, "/v1/status", "/v1/gemeenten/0344")
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"{'measurement':<50}{'per second':>14}")
    print(f"{'cached RegistryClient.gemeente':<50}{cached:>14,.0f}   target >= 100,000")
    print(f"{'static GET /v1/status (served, signed)':<50}{static:>14,.0f}")
    print(f"{'uncached GET /v1/gemeenten/0344 (SQL per request)':<50}{uncached:>14,.0f}")
    print(f"ratio uncached / static: {uncached / static:.0%}   target >= 50%")


if __name__ == "__main__":
    asyncio.run(main())
