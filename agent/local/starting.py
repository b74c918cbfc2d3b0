"""Waiting for a started process to be ready, for as long as it keeps making progress.

A fixed start window fails on a busy machine (a newcomer's laptop, a loaded CI runner): the
process is still importing when the window closes. Instead the wait ends when the process
answers its readiness path, fails at once when it exits, and gives up only when it has made no
progress (no CPU time used, no line logged) for ``stall_seconds``, or after ``seconds`` in all.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "DEFAULT_STALL_SECONDS",
    "DEFAULT_START_SECONDS",
    "ProcessProgress",
    "StartFailed",
    "wait_until_ready",
]

DEFAULT_START_SECONDS = 300.0
DEFAULT_STALL_SECONDS = 60.0
_POLL_SECONDS = 0.1
_REPORT_EVERY_SECONDS = 10.0


class StartFailed(RuntimeError):
    """A process exited, stalled or ran out of time before it was ready."""


@dataclass
class ProcessProgress:
    """What a process has done so far: CPU time (Linux ``/proc``) and the size of its log."""

    pid: int
    log_path: Path

    def measure(self) -> tuple[int, int]:
        """A value that grows while the process works: (CPU clock ticks, log bytes)."""
        return self._cpu_ticks(), self._log_bytes()

    def _cpu_ticks(self) -> int:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0  # not Linux, or gone: the log size and the exit check still work
        # Fields 14 and 15 of proc(5) (utime, stime); after the ")" they are at 11 and 12.
        return int(fields[11]) + int(fields[12])

    def _log_bytes(self) -> int:
        try:
            return os.stat(self.log_path).st_size
        except OSError:
            return 0


async def wait_until_ready(
    http: httpx.AsyncClient,
    url: str,
    *,
    name: str,
    running: Callable[[], bool],
    progress: ProcessProgress,
    seconds: float = DEFAULT_START_SECONDS,
    stall_seconds: float = DEFAULT_STALL_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> None:
    """Poll ``url`` until it answers 200; raise :class:`StartFailed` with the reason otherwise."""
    began = time.monotonic()
    last_change, last_report = began, began
    seen = progress.measure()
    while True:
        if not running():
            raise StartFailed(f"{name} exited before it was ready")
        try:
            answer = await http.get(url, timeout=5.0)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        now = time.monotonic()
        measured = progress.measure()
        if measured != seen:
            seen, last_change = measured, now
        if now - last_change > stall_seconds:
            raise StartFailed(f"{name} made no progress for {stall_seconds:.0f} s and is not ready")
        if now - began > seconds:
            raise StartFailed(f"{name} not ready after {seconds:.0f} s")
        if on_wait is not None and now - last_report >= _REPORT_EVERY_SECONDS:
            last_report = now
            on_wait(
                f"waiting for {name} ({url}): not ready after {now - began:.0f} s, still starting"
            )
        await asyncio.sleep(_POLL_SECONDS)
