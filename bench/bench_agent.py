"""Agent benchmark: handovers per second, peak memory, loop stalls during an import, import scaling.

Run once per database (prints one table; see docs/performance.md, section Agent):

    .venv/bin/python bench/bench_agent.py --database sqlite
    .venv/bin/python bench/bench_agent.py --database postgresql

Options: ``--handovers N`` (2000), ``--concurrency C`` (16), ``--in-progress P`` (256),
``--stall-dossiers S`` (1000), ``--import-clients K`` (5000), ``--import-rounds R`` (3).

A registry (SQLite) and two gemeente agents run as ``meeverhuizen ... serve`` processes (uvicorn,
scheduler on, loopback only); Utrecht departs, Amsterdam receives. Each agent gets a fresh
database of the chosen kind: a SQLite file, or a PostgreSQL database on 127.0.0.1:5432 made for
the run and dropped at its end. Before any clock runs, N + S clients are imported into Utrecht's
register (400 per request) and N + S dossiers are started through the API.

1. handovers: consent is recorded for N dossiers, C requests in flight, with at most P handovers
   in progress (consent given, not yet ``completed`` on both sides): a steady load rather than N
   consents at once. The clock runs until all N are ``completed`` on both sides, read by SQL
   from the agents' databases (polling through the API would load the agents). One handover =
   consent API call, signed dossier-offer with receipt, decision, signed device-decision with
   receipt, five to six stored transitions per side.
2. bare: a FastAPI endpoint that only reads the body, on the same kind of uvicorn process, posted
   an offer-sized body with the same client (RawConnections, a raw keep-alive HTTP/1.1 load
   generator, which also sends the clocked consent calls) and concurrency: requests per second
   before and after the agents run (the mean is the baseline of the ratio; the two tell how much
   the machine's speed moved meanwhile).
3. CPU per handover: user + system time of each agent process during phase 1, divided by N
   (on PostgreSQL the database server's own processes are not counted).
4. loop stalls during an import: handovers of the S other dossiers run as in phase 1; after one
   second a K-client JSON import is posted to Utrecht in one request; consents stop when the
   import has answered, and the phase ends when every handover of it is complete. Utrecht's
   ``/metrics`` is read before and after: p99 is the smallest bucket bound of
   ``meeverhuizen_event_loop_stall_seconds`` that holds 99 % of the phase's observations (one
   per 20 ms timer), max is ``meeverhuizen_event_loop_longest_stall_seconds`` (the longest
   since start, so it is the phase's only when it grew in the phase). The same is printed for
   phase 1, without an import.
5. peak memory: VmHWM (peak RSS) of each agent process from /proc, after phase 1 and after 4.
6. import scaling: ``bench_import.py`` (in-process, the same kind of database), after the agents
   have stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import bench_import
import httpx
from httpx_aiohttp import AiohttpTransport
from local_databases import DATABASE_KINDS, DatabaseKind, Databases, fresh_databases
from prometheus_client.parser import text_string_to_metric_families

from agent.local.network import AMSTERDAM, UTRECHT, LocalAgent, local_network
from agent.local.processes import HOST, cpu_seconds, free_port
from agent.local.synthetic import DEVICE_IDS, synthetic_clients, valid_bsns

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
CONSENT = {
    "dataKinds": ["identity", "address", "devices", "indicatie"],
    "deviceIds": list(DEVICE_IDS),
    "channel": "online",
    "givenBy": "client",
}
_SETUP_IMPORT_CHUNK = 400  # clients per set-up request, within the default body limit
_POLL_SECONDS = 0.05  # how often completion is read from the databases
_IMPORT_AFTER_SECONDS = 1.0  # handovers run this long before the import is posted
AGENT_SETTINGS = {
    "outbox_base_delay_seconds": 0.5,
    "outbox_max_delay_seconds": 2.0,
    # The K-client import of phase 4 in one request (5,000 clients are about 4 MB of JSON).
    "max_body_bytes": 32 * 1024 * 1024,
}
STALL_HISTOGRAM = "meeverhuizen_event_loop_stall_seconds_bucket"
LONGEST_STALL = "meeverhuizen_event_loop_longest_stall_seconds"


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
        reader, writer = await self._connection()
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

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                return reader, writer
            writer.close()  # closed by the server after its keep-alive timeout (uvicorn: 5 s)
        return await asyncio.open_connection(*self._address)

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
            await writer.wait_closed()


@dataclass(frozen=True)
class LoopStalls:
    """One reading of an agent's loop-stall metrics."""

    buckets: dict[float, float]  # upper bound (le) -> cumulative count of late timers
    longest: float  # the longest stall since the agent started, seconds


@dataclass(frozen=True)
class PhaseStalls:
    """The loop stalls of one phase, from a reading before and one after it."""

    observations: int
    p99_bound: float  # the smallest bucket bound that holds 99 % of the phase's observations
    highest_bound: float  # the bound of the highest bucket with an observation in the phase
    longest: float  # the longest stall since start, read after the phase
    longest_grew: bool  # True: ``longest`` happened in this phase


def phase_stalls(before: LoopStalls, after: LoopStalls) -> PhaseStalls:
    bounds = sorted(after.buckets)
    counts = [after.buckets[b] - before.buckets.get(b, 0.0) for b in bounds]  # cumulative
    total = counts[-1]  # the +Inf bucket
    p99 = next(b for b, count in zip(bounds, counts, strict=True) if count >= 0.99 * total)
    below = [0.0, *counts[:-1]]
    highest = max(
        (b for b, c, lower in zip(bounds, counts, below, strict=True) if c > lower),
        default=0.0,
    )
    return PhaseStalls(
        observations=int(total),
        p99_bound=p99,
        highest_bound=highest,
        longest=after.longest,
        longest_grew=after.longest > before.longest,
    )


async def loop_stalls(http: httpx.AsyncClient, agent: LocalAgent) -> LoopStalls:
    answer = await http.get(agent.base_url + "/metrics")
    answer.raise_for_status()
    buckets: dict[float, float] = {}
    longest = math.nan
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == STALL_HISTOGRAM:
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == LONGEST_STALL:
                longest = sample.value
    return LoopStalls(buckets, longest)


def _client(concurrency: int) -> httpx.AsyncClient:
    # The set-up before the clock (imports, dossier starts): httpx on aiohttp's pool.
    limits = httpx.Limits(max_connections=concurrency)
    return httpx.AsyncClient(timeout=600.0, transport=AiohttpTransport(limits=limits))


async def bounded(concurrency: int, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


async def post(http: httpx.AsyncClient, agent: LocalAgent, path: str, body: Any) -> Any:
    answer = await http.post(agent.base_url + path, json=body, headers=agent.auth())
    if answer.status_code >= 300:
        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
    return answer.json()


def memory_mb(pid: int | None, field: str) -> float:
    """A memory figure of a process from /proc (``VmRSS`` now, ``VmHWM`` its peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return math.nan


def peak_rss_mb(pid: int | None) -> float:
    return memory_mb(pid, "VmHWM")


class Handovers:
    """Gives consent for started dossiers and counts the handovers completed on both sides."""

    def __init__(
        self, utrecht: LocalAgent, agents: tuple[LocalAgent, ...], databases: Databases
    ) -> None:
        self._utrecht = utrecht
        self._agents = agents
        self._databases = databases
        self._raw = RawConnections(HOST, utrecht.server.port)

    def _completed(self) -> dict[str, int]:
        return {a.spec.key: self._databases.completed(a.database_url) for a in self._agents}

    async def run(
        self,
        dossier_ids: Iterator[str],
        *,
        concurrency: int,
        in_progress: int,
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Consent for dossiers until they run out or ``stop()``; return once all are complete.

        At most ``in_progress`` handovers are unfinished at a time; returns how many ran.
        """
        start = self._completed()
        done = 0  # handovers of this run completed on both sides
        issued = 0  # consent calls made
        consent = json.dumps(CONSENT | {"givenAt": datetime.now(UTC).isoformat()}).encode()

        async def client() -> None:
            nonlocal issued
            for dossier_id in dossier_ids:
                if stop():
                    return
                while issued - done >= in_progress:  # noqa: ASYNC110 - see the loop below
                    await asyncio.sleep(0.005)
                issued += 1
                path = f"/v1/dossiers/{dossier_id}/consent"
                status, answer = await self._raw.post(path, consent, self._utrecht.auth())
                if status != 200:
                    raise RuntimeError(f"{path}: {status} {answer[:300]!r}")

        issuing = asyncio.gather(*(client() for _ in range(concurrency)))
        # The agents are other processes: their databases are polled, there is no event.
        while not (issuing.done() and (done >= issued or issuing.exception())):
            now = self._completed()
            done = min(now[key] - start[key] for key in now)
            await asyncio.sleep(_POLL_SECONDS)
        await issuing  # raises a failed consent call
        return issued

    async def close(self) -> None:
        await self._raw.close()


@dataclass
class AgentFigures:
    """What the agents' phases measured."""

    handovers: int
    start_rate: float
    rate: float
    cpu_ms: dict[str, float]
    handover_stalls: PhaseStalls
    rss_after_handovers: dict[str, float]
    import_clients: int
    import_seconds: float
    import_handovers: int
    import_phase_seconds: float
    import_stalls: PhaseStalls
    rss_after_import: dict[str, float]


async def start_dossiers(
    http: httpx.AsyncClient, utrecht: LocalAgent, numbers: list[str], concurrency: int
) -> tuple[list[str], float]:
    """Import the clients and start a dossier for each: the ids, and dossier starts per second."""
    register = synthetic_clients(numbers)
    for start in range(0, len(register), _SETUP_IMPORT_CHUNK):
        chunk = register[start : start + _SETUP_IMPORT_CHUNK]
        await post(http, utrecht, "/v1/provisions/imports", chunk)
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
    return [dossier["dossierId"] for dossier in started], len(numbers) / (
        time.perf_counter() - began
    )


async def import_register(http: httpx.AsyncClient, utrecht: LocalAgent, body: bytes) -> float:
    """Post one JSON import after the handovers have run a second; seconds until it answers."""
    await asyncio.sleep(_IMPORT_AFTER_SECONDS)
    posted = time.perf_counter()
    answer = await http.post(
        utrecht.base_url + "/v1/provisions/imports",
        content=body,
        headers=utrecht.auth() | {"Content-Type": "application/json"},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"import: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - posted


async def run_agents(
    kind: DatabaseKind, folder: Path, arguments: argparse.Namespace
) -> AgentFigures:
    count, stall_count = arguments.handovers, arguments.stall_dossiers
    numbers = valid_bsns(count + stall_count + arguments.import_clients)
    import_body = json.dumps(synthetic_clients(numbers[count + stall_count :])).encode()
    options = {"concurrency": arguments.concurrency, "in_progress": arguments.in_progress}
    with fresh_databases(kind, folder) as databases:
        urls = {spec.key: databases.create(spec.key) for spec in (UTRECHT, AMSTERDAM)}
        async with (
            local_network(folder, agent_settings=AGENT_SETTINGS, database_urls=urls) as network,
            _client(arguments.concurrency) as http,
        ):
            utrecht, amsterdam = network.agents[UTRECHT.key], network.agents[AMSTERDAM.key]
            agents = (utrecht, amsterdam)
            dossier_ids, start_rate = await start_dossiers(
                http, utrecht, numbers[: count + stall_count], arguments.concurrency
            )
            handovers = Handovers(utrecht, agents, databases)

            # Phase 1: handovers alone, clocked.
            print(f"{count} + {stall_count} dossiers started; the clock runs", file=sys.stderr)
            stalls_before = await loop_stalls(http, utrecht)
            cpu_before = {a.spec.key: cpu_seconds(a.server.pid) for a in agents}
            began = time.perf_counter()
            await handovers.run(iter(dossier_ids[:count]), **options)
            rate = count / (time.perf_counter() - began)
            cpu_ms = {
                a.spec.key: (cpu_seconds(a.server.pid) - cpu_before[a.spec.key]) * 1000 / count
                for a in agents
            }
            handover_stalls = phase_stalls(stalls_before, await loop_stalls(http, utrecht))
            rss_after_handovers = {a.spec.key: peak_rss_mb(a.server.pid) for a in agents}

            # Phase 4: handovers with a K-client import in one request beside them.
            print(f"handovers beside an import of {arguments.import_clients}", file=sys.stderr)
            stalls_before = await loop_stalls(http, utrecht)
            began = time.perf_counter()
            importing = asyncio.create_task(import_register(http, utrecht, import_body))
            import_handovers = await handovers.run(
                iter(dossier_ids[count:]), stop=importing.done, **options
            )
            if not importing.done():
                print("warning: the import outlasted the phase's dossiers", file=sys.stderr)
            import_seconds = await importing
            import_phase_seconds = time.perf_counter() - began
            import_stalls = phase_stalls(stalls_before, await loop_stalls(http, utrecht))
            rss_after_import = {a.spec.key: peak_rss_mb(a.server.pid) for a in agents}
            await handovers.close()
    return AgentFigures(
        handovers=count,
        start_rate=start_rate,
        rate=rate,
        cpu_ms=cpu_ms,
        handover_stalls=handover_stalls,
        rss_after_handovers=rss_after_handovers,
        import_clients=arguments.import_clients,
        import_seconds=import_seconds,
        import_handovers=import_handovers,
        import_phase_seconds=import_phase_seconds,
        import_stalls=import_stalls,
        rss_after_import=rss_after_import,
    )


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


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<34}{value:>12}  {note}".rstrip())


def print_stalls(label: str, stalls: PhaseStalls) -> None:
    line(
        f"loop stall p99, {label}",
        f"<= {stalls.p99_bound * 1000:g} ms",
        f"({stalls.observations} timers; highest bucket <= {stalls.highest_bound * 1000:g} ms)",
    )
    if stalls.longest_grew:
        line(f"loop stall max, {label}", f"{stalls.longest * 1000:.1f} ms", "(target < 50)")
    else:
        line(
            f"loop stall max, {label}",
            f"<= {stalls.longest * 1000:.1f} ms",
            "(the longest since start did not grow in this phase)",
        )


def print_figures(
    kind: DatabaseKind,
    arguments: argparse.Namespace,
    figures: AgentFigures,
    bare_before: float,
    bare_after: float,
) -> None:
    bare_rate = (bare_before + bare_after) / 2
    print(
        f"database: {kind}; handovers: {figures.handovers}, client concurrency: "
        f"{arguments.concurrency}, at most {arguments.in_progress} in progress"
    )
    line("dossiers started", f"{figures.start_rate:.1f} /s", "(API, before the clock)")
    line("complete handovers", f"{figures.rate:.1f} /s", "(target >= 50)")
    line(
        "bare FastAPI body read",
        f"{bare_rate:.0f} /s",
        f"(requests; before {bare_before:.0f}, after {bare_after:.0f})",
    )
    line("ratio handovers / bare", f"{figures.rate / bare_rate:.4f}")
    for key, milliseconds in figures.cpu_ms.items():
        line(f"CPU per handover, {key}", f"{milliseconds:.1f} ms")
    print_stalls("handovers", figures.handover_stalls)
    line(
        f"import of {figures.import_clients:,} clients (HTTP)",
        f"{figures.import_seconds:.2f} s",
        f"(beside {figures.import_handovers} handovers in {figures.import_phase_seconds:.1f} s)",
    )
    print_stalls("import", figures.import_stalls)
    for key in figures.rss_after_import:
        line(
            f"peak RSS, {key}",
            f"{figures.rss_after_import[key]:.1f} MB",
            f"(target < 150; after the handovers {figures.rss_after_handovers[key]:.1f})",
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=DATABASE_KINDS, default="sqlite")
    parser.add_argument("--handovers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--in-progress",
        type=int,
        default=256,
        help="at most this many handovers between consent and completion (a steady load)",
    )
    parser.add_argument(
        "--stall-dossiers",
        type=int,
        default=1000,
        help="dossiers handed over beside the import",
    )
    parser.add_argument("--import-clients", type=int, default=5000)
    parser.add_argument("--import-rounds", type=int, default=3)
    arguments = parser.parse_args()
    kind: DatabaseKind = arguments.database
    offer_sized = b"x" * 2500
    requests = arguments.handovers * 2
    # The baseline before and after the agents: this machine's speed drifts within minutes.
    bare_before = await bare(requests, arguments.concurrency, offer_sized)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        figures = await run_agents(kind, Path(folder), arguments)
    bare_after = await bare(requests, arguments.concurrency, offer_sized)
    print_figures(kind, arguments, figures, bare_before, bare_after)
    bench_import.report(kind, await bench_import.compare_imports(kind, arguments.import_rounds))


if __name__ == "__main__":
    asyncio.run(main())
