"""The network faults of a simulation: a TCP proxy in front of each host that breaks connections.

Every message for an organisation on a host goes to the host's shared address, which is this
proxy's port; the proxy passes the bytes on to the host. A share of the connections (the drop
rate) it breaks: half of them before the request reaches the host (the message is lost on the
way), half after the host answered but before the answer reaches the sender (the message arrived,
the sender does not know it). Both must end in exactly one delivery: the sender retries from its
outbox, the receiver recognises a message it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

from agent.local.processes import HOST

__all__ = ["DropProxy"]

_CHUNK = 65536


@dataclass
class DropProxy:
    """Passes connections from ``port`` to ``target``; breaks a share ``drop_rate`` of them."""

    port: int
    target: int
    drop_rate: float
    rng: random.Random
    dropped_before: int = 0
    dropped_after: int = 0
    passed: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)
    _open: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _streams: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, HOST, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Connections still open (an agent's kept-alive one) end with the proxy: their streams
        # close, so their copying ends (a cancelled handler task would be reported by asyncio).
        for stream in self._streams:
            stream.close()
        if self._open:
            await asyncio.wait(self._open, timeout=5.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open.add(task)
            task.add_done_callback(self._open.discard)
        draw = self.rng.random()
        if draw < self.drop_rate / 2:
            self.dropped_before += 1
            writer.close()
            return
        lose_answer = draw < self.drop_rate
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(HOST, self.target)
        except OSError:
            # The host is down (a restart): the sender sees a refused connection and retries.
            writer.close()
            return
        self.passed += 1
        self._streams |= {writer, upstream_writer}
        if lose_answer:
            self.dropped_after += 1
        forward = asyncio.create_task(_pipe(reader, upstream_writer))
        try:
            await _pipe(upstream_reader, writer, lose=lose_answer)
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            for stream in (writer, upstream_writer):
                stream.close()
                self._streams.discard(stream)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, lose: bool = False
) -> None:
    """Copy until the end; with ``lose``, stop at the first bytes (the answer never arrives)."""
    try:
        while data := await reader.read(_CHUNK):
            if lose:
                return
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        return
