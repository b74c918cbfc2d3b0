"""BRP events benchmark: irrelevant events processed per second, push and pull, in-process.

Run: ``.venv/bin/python bench/bench_brp.py [--events N] [--batch B]`` (docs/performance.md,
section BRP events). One gemeente agent (SQLite file, scheduler off) behind httpx's ASGI
transport; its register holds one client, every event is about someone else (the common case):
each is checked, deduplicated, looked up, stored reduced and counted.

1. push: batches of B events posted to ``POST /v1/brp-events``.
2. pull: the feed reader reads the simulator's feed (``limiet`` = B) until it is empty.
3. bare: a FastAPI endpoint that only reads the body, posted the same batches the same way.
The ratio is events/s of push or pull against bare (the HTTP and JSON cost alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from agent.app import create_app
from agent.local.brp_simulator import BrpSimulator, create_simulator_app, generate_feed, push_events
from agent.settings import AgentSettings, hash_token
from protocol.clock import SystemClock
from protocol.jwk import generate_private_jwk, public_jwk
from registry.errors import ParticipantUnknown

TOKEN = "bench-brp-token-0123456789"  # noqa: S105 - a benchmark token
CLIENTS = Path(__file__).resolve().parent.parent / "tests" / "agent" / "data" / "clients.json"


class _NoDirectory:
    async def gemeente(self, gemeentecode: str, *, message_type: str | None = None) -> Any:
        raise AssertionError("not used")

    async def participant(
        self, oin: str, *, message_type: str | None = None, refresh: bool = False
    ) -> Any:
        # The agent asks which gemeenten it serves (a regional service: several): only its own.
        raise ParticipantUnknown(f"no participant {oin} in this benchmark")

    async def verification_keys(self, oin: str, *, at: Any = None) -> Any:
        raise AssertionError("not used")


def _settings(database: Path, batch: int) -> AgentSettings:
    return AgentSettings(
        oin="00000001002220647000",
        gemeentecode="0344",
        name="Gemeente Utrecht",
        signing_jwk=generate_private_jwk("EdDSA"),
        registry_url="http://registry.invalid",
        registry_trust_anchor=public_jwk(generate_private_jwk("EdDSA")),
        database_url=f"sqlite+aiosqlite:///{database}",
        public_base_url="http://utrecht.test",
        brp_token_sha256=hash_token(TOKEN),
        brp_feed_page_size=batch,
        scheduler_enabled=False,
    )


def _bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/brp-events")
    async def discard(request: Request) -> Response:
        await request.body()
        return Response(status_code=202)

    return app


async def _timed(action: Any) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def _run_agent(
    directory: Path, name: str, events: list[dict[str, Any]], batch: int, mode: str
) -> float:
    settings = _settings(directory / f"{name}.sqlite", batch)
    simulator = BrpSimulator()
    simulator.publish(*events)
    routes: dict[str, httpx.AsyncBaseTransport] = {}

    class Router(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await routes[request.url.host].handle_async_request(request)

    async with httpx.AsyncClient(transport=Router()) as http:
        app = create_app(settings, clock=SystemClock(), http=http, registry=_NoDirectory())
        routes["utrecht.test"] = httpx.ASGITransport(app=app)
        routes["brp.test"] = httpx.ASGITransport(app=create_simulator_app(simulator))
        async with app.router.lifespan_context(app):
            service = app.state.service
            await service.import_provisions(CLIENTS.read_bytes(), "json")
            if mode == "push":
                url = "http://utrecht.test/v1/brp-events"
                return await _timed(lambda: push_events(http, url, TOKEN, events, batch_size=batch))
            reader = service.feed_reader("http://brp.test/gebeurtenissen", http=http)
            return await _timed(reader.read)


async def _run_bare(events: list[dict[str, Any]], batch: int) -> float:
    transport = httpx.ASGITransport(app=_bare_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bare.test") as http:
        url = "http://bare.test/v1/brp-events"
        return await _timed(lambda: push_events(http, url, TOKEN, events, batch_size=batch))


async def main(count: int, batch: int) -> None:
    events = generate_feed(count, gemeentecode="0344")
    size = len(json.dumps(events[:batch]))
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        bare = await _run_bare(events, batch)
        push = await _run_agent(directory, "push", events, batch, "push")
        pull = await _run_agent(directory, "pull", events, batch, "pull")
    print(f"{count} irrelevant events, batches of {batch} (~{size} bytes), SQLite, in-process")
    print(f"{'path':<6} {'events/s':>10} {'ratio to bare':>14}")
    for name, seconds in (("bare", bare), ("push", push), ("pull", pull)):
        print(f"{name:<6} {count / seconds:>10.0f} {bare / seconds:>14.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.batch))
