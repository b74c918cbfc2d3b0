"""Agent benchmark: complete handovers per second between two agents on loopback.

Run: ``.venv/bin/python bench/bench_agent.py [--handovers N] [--concurrency C] [--in-progress P]``
(defaults 2000, 16, 256)
(prints one table; see docs/performance.md, section Agent).

1. handovers: a registry and two gemeente agents as ``meeverhuizen ... serve`` processes
   (uvicorn, SQLite files, scheduler on, loopback only). N dossiers are started in Utrecht; then
   consent is recorded for all of them with C requests in flight, but with at most P handovers
   in progress (consent given, not yet ``completed`` on both sides): a steady load rather than
   N consents at once, whose burst would keep Utrecht busy with the API while Amsterdam idles.
   The clock runs until every dossier is ``completed`` on both sides (read from the SQLite
   files, so that polling does not load the agents). One handover = consent API call, signed
   dossier-offer with receipt, decision, signed device-decision with receipt, five to six
   stored transitions per side.
2. bare: a FastAPI endpoint that only reads the body, on the same kind of uvicorn process, posted
   the same offer-sized body with the same client (RawConnections, a raw keep-alive HTTP/1.1
   load generator, which also sends the clocked consent calls) and concurrency: requests per
   second, measured before and after the handovers (the mean is
   the baseline of the ratio; the two tell how much the machine's speed moved meanwhile).
3. peak memory: VmHWM (peak RSS) of each agent process from /proc.
4. CPU per handover: user + system time of each agent process during the clocked phase, divided
   by N. It does not count waiting, so it moves less with other load than the rate does, but it
   moves with the machine's own speed; one agent's ceiling is about 1000 / (its CPU ms per
   handover) handovers per second on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from agent.local.network import (
    AMSTERDAM,
    HOST,
    UTRECHT,
    LocalAgent,
    free_port,
    local_network,
)

BARE_APP = """
import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()

@app.post("/v1/messages")
async def messages(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)

uvicorn.run(app, host="{host}", port={port}, log_level="warning")
"""
NEW_ADDRESS = {
    "street": "Damrak",
    "houseNumber": 1,
    "postalCode": "1012LG",
    "city": "Amsterdam",
    "gemeentecode": "0363",
}
_IMPORT_CHUNK = 400
AGENT_SETTINGS = {"outbox_base_delay_seconds": 0.5, "outbox_max_delay_seconds": 2.0}


def bsns(count: int) -> list[str]:
    found: list[str] = []
    candidate = 900_000_000
    while len(found) < count:
        candidate += 1
        digits = [int(c) for c in str(candidate)]
        total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
        if (total - digits[8]) % 11 == 0:
            found.append(str(candidate))
    return found


def clients(numbers: list[str]) -> list[dict[str, Any]]:
    today = date.today()
    device = {"customMade": False, "movable": True, "ownership": "bruikleen"}
    return [
        {
            "bsn": bsn,
            "name": {"initials": "A.", "surname": f"Client {index}"},
            "address": {
                "street": "Oudegracht",
                "houseNumber": index + 1,
                "postalCode": "3511AB",
                "city": "Utrecht",
                "gemeentecode": "0344",
            },
            "contactPreferences": {"channels": ["letter"]},
            "indicatie": {
                "legalBasis": "Wmo 2015 art. 2.3.5",
                "beschikkingReference": f"UTR-{index}",
                "decisionDate": (today - timedelta(days=100)).isoformat(),
                "startDate": (today - timedelta(days=90)).isoformat(),
                "endDate": (today + timedelta(days=700)).isoformat(),
            },
            "devices": [
                device | {"deviceId": "scootmobiel", "isoCode": "12 23 03", "description": "S"},
                device | {"deviceId": "bed", "isoCode": "18 12 10", "description": "Bed"},
                device
                | {"deviceId": "lift", "isoCode": "18 30 08", "description": "L", "movable": False},
            ],
        }
        for index, bsn in enumerate(numbers)
    ]


class RawConnections:
    """Keep-alive HTTP/1.1 connections of a raw asyncio load generator.

    The clocked requests (consent calls, the bare baseline) go through this client, which costs
    the machine a fraction of a full HTTP client: the two agents are what is measured, and they
    share the machine's cores with the client.
    """

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST and read the whole answer: (status, body)."""
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(*self._address)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self._address[0]}\r\n{lines}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,  # 204: no body
        )
        answer = await reader.readexactly(length)
        self._idle.append((reader, writer))
        return int(head[9:12]), answer

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
            await writer.wait_closed()


def _client(concurrency: int) -> httpx.AsyncClient:
    # The set-up before the clock (imports, dossier starts): httpx on aiohttp's pool.
    limits = httpx.Limits(max_connections=concurrency)
    return httpx.AsyncClient(timeout=60.0, transport=AiohttpTransport(limits=limits))


async def bounded(concurrency: int, calls: list[Any]) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(call: Any) -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


async def post(http: httpx.AsyncClient, agent: LocalAgent, path: str, body: Any) -> Any:
    answer = await http.post(agent.base_url + path, json=body, headers=agent.auth())
    if answer.status_code >= 300:
        raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
    return answer.json()


def completed(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT COUNT(*) FROM dossiers WHERE state = 'completed'")
        return int(row.fetchone()[0])


def cpu_seconds(pid: int | None) -> float:
    # /proc/<pid>/stat fields 14 and 15 (after the command name): utime and stime in ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def handovers(
    count: int, concurrency: int, in_progress: int
) -> tuple[float, float, dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        async with (
            local_network(Path(folder), agent_settings=AGENT_SETTINGS) as network,
            _client(concurrency) as http,
        ):
            utrecht, amsterdam = network.agents[UTRECHT.key], network.agents[AMSTERDAM.key]
            numbers = bsns(count)
            register = clients(numbers)
            for start in range(0, count, _IMPORT_CHUNK):  # each request within the body limit
                await post(
                    http, utrecht, "/v1/provisions/imports", register[start : start + _IMPORT_CHUNK]
                )
            move = (date.today() + timedelta(days=21)).isoformat()
            began = time.perf_counter()
            started = await bounded(
                concurrency,
                [
                    lambda bsn=bsn: post(
                        http,
                        utrecht,
                        "/v1/dossiers",
                        {"bsn": bsn, "moveDate": move, "newAddress": NEW_ADDRESS},
                    )
                    for bsn in numbers
                ],
            )
            start_rate = count / (time.perf_counter() - began)
            consent = {
                "dataKinds": ["identity", "address", "devices", "indicatie"],
                "deviceIds": ["scootmobiel", "bed", "lift"],
                "channel": "online",
                "givenBy": "client",
                "givenAt": datetime.now(UTC).isoformat(),
            }
            agents = (utrecht, amsterdam)
            raw = RawConnections(HOST, utrecht.server.port)
            consent_body = json.dumps(consent).encode()

            async def give_consent(dossier_id: str) -> None:
                path = f"/v1/dossiers/{dossier_id}/consent"
                status, answer = await raw.post(path, consent_body, utrecht.auth())
                if status != 200:
                    raise RuntimeError(f"{path}: {status} {answer[:300]!r}")

            done = 0  # handovers completed on both sides
            issued = 0  # consent calls made
            pending = iter(started)

            async def watch() -> None:
                # The agents are other processes: their SQLite files are polled, there is no event.
                nonlocal done
                while done < count:
                    done = min(completed(a.database_path) for a in agents)
                    await asyncio.sleep(0.02)

            async def client() -> None:
                nonlocal issued
                for dossier in pending:
                    while issued - done >= in_progress:  # noqa: ASYNC110 - see watch()
                        await asyncio.sleep(0.005)
                    issued += 1
                    await give_consent(dossier["dossierId"])

            print(f"{count} dossiers started; the clock runs", file=sys.stderr, flush=True)
            cpu_before = {a.spec.key: cpu_seconds(a.server.pid) for a in agents}
            began = time.perf_counter()
            watching = asyncio.create_task(watch())
            await asyncio.gather(*(client() for _ in range(concurrency)))
            await watching
            rate = count / (time.perf_counter() - began)
            cpu = {
                a.spec.key: (cpu_seconds(a.server.pid) - cpu_before[a.spec.key]) * 1000 / count
                for a in agents
            }
            memory = {a.spec.key: peak_rss_mb(a.server.pid) for a in agents}
            await raw.close()
    return rate, start_rate, memory, cpu


async def bare(requests: int, concurrency: int, body: bytes) -> float:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BARE_APP.format(host=HOST, port=port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    raw = RawConnections(HOST, port)
    try:
        for _ in range(200):
            try:
                await raw.post("/v1/messages", b"{}", {})
                break
            except OSError:
                await asyncio.sleep(0.05)
        began = time.perf_counter()
        await bounded(
            concurrency, [lambda: raw.post("/v1/messages", body, {}) for _ in range(requests)]
        )
        return requests / (time.perf_counter() - began)
    finally:
        await raw.close()
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handovers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--in-progress",
        type=int,
        default=256,
        help="at most this many handovers between consent and completion (a steady load)",
    )
    arguments = parser.parse_args()
    offer_sized = b"x" * 2500
    requests = arguments.handovers * 2
    # The baseline before and after the handovers: this machine's speed drifts within minutes.
    bare_before = await bare(requests, arguments.concurrency, offer_sized)
    rate, start_rate, memory, cpu = await handovers(
        arguments.handovers, arguments.concurrency, arguments.in_progress
    )
    bare_after = await bare(requests, arguments.concurrency, offer_sized)
    bare_rate = (bare_before + bare_after) / 2
    print(
        f"handovers: {arguments.handovers}, client concurrency: {arguments.concurrency}, "
        f"at most {arguments.in_progress} in progress"
    )
    print(f"dossiers started             {start_rate:10.1f} /s  (API, before the clock)")
    print(f"complete handovers           {rate:10.1f} /s  (target >= 200)")
    print(
        f"bare FastAPI body read       {bare_rate:10.1f} requests/s"
        f"  (before {bare_before:.0f}, after {bare_after:.0f})"
    )
    print(f"ratio handovers / bare       {rate / bare_rate:10.3f}")
    for key, megabytes in memory.items():
        print(f"peak RSS agent {key:<13} {megabytes:10.1f} MB  (target < 150)")
    for key, milliseconds in cpu.items():
        print(f"CPU per handover {key:<11} {milliseconds:10.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
