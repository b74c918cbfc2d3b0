"""The fault proxy: passes connections on, or breaks them before or after the host answered."""

from __future__ import annotations

import asyncio
import random

import httpx

from agent.local.processes import free_port
from agent.simulation.faults import DropProxy

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


async def _server(seen: list[bytes]) -> tuple[asyncio.Server, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(_ANSWER)
        await writer.drain()
        writer.close()

    port = free_port()
    return await asyncio.start_server(answer, "127.0.0.1", port), port


async def _requests(port: int, count: int) -> list[int | None]:
    answers: list[int | None] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as http:
        for _ in range(count):
            try:
                answers.append((await http.get(f"http://127.0.0.1:{port}/")).status_code)
            except httpx.TransportError:
                answers.append(None)
    return answers


async def test_without_drops_every_request_arrives_and_is_answered() -> None:
    seen: list[bytes] = []
    server, target = await _server(seen)
    proxy = DropProxy(free_port(), target, 0.0, random.Random(1))
    await proxy.start()
    try:
        assert await _requests(proxy.port, 20) == [200] * 20
    finally:
        await proxy.close()
        server.close()
    assert len(seen) == 20
    assert (proxy.passed, proxy.dropped_before, proxy.dropped_after) == (20, 0, 0)


async def test_a_broken_connection_loses_the_request_or_only_its_answer() -> None:
    seen: list[bytes] = []
    server, target = await _server(seen)
    proxy = DropProxy(free_port(), target, 1.0, random.Random(2))
    await proxy.start()
    try:
        answers = await _requests(proxy.port, 40)
    finally:
        await proxy.close()
        server.close()
    # Every connection breaks: no answer comes back, yet some requests reached the host.
    assert answers == [None] * 40
    assert proxy.dropped_before + proxy.dropped_after == 40
    assert proxy.dropped_before > 5
    assert proxy.dropped_after > 5
    assert len(seen) == proxy.dropped_after
