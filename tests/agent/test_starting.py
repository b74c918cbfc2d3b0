"""Waiting for local processes: by their readiness, as long as they make progress."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.local.processes import ServerProcess, free_port
from agent.local.starting import (
    DEFAULT_STALL_SECONDS,
    ProcessProgress,
    StartFailed,
    wait_until_ready,
)


class CountingProgress(ProcessProgress):
    """Progress that changes on every measurement (a process busy importing), or never."""

    def __init__(self, *, busy: bool) -> None:
        super().__init__(pid=0, log_path=Path("/nonexistent"))
        self.busy = busy
        self.measured = 0

    def measure(self) -> tuple[int, int]:
        self.measured += 1
        return (self.measured if self.busy else 0, 0)


async def _wait(
    *,
    ready_after: int,
    busy: bool,
    name: str = "registry",
    running: bool = True,
    stall_seconds: float = DEFAULT_STALL_SECONDS,
) -> None:
    """Wait for a process whose readiness path answers 200 after ``ready_after`` polls."""
    calls = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200 if calls > ready_after else 503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        await wait_until_ready(
            http,
            "http://127.0.0.1:1/v1/health/ready",
            name=name,
            running=lambda: running,
            progress=CountingProgress(busy=busy),
            stall_seconds=stall_seconds,
        )


async def test_a_process_that_keeps_making_progress_is_waited_for() -> None:
    # No stall is tolerated at all, yet the wait goes on: the process works on every poll.
    await _wait(ready_after=5, busy=True, stall_seconds=0.0)


async def test_a_process_without_progress_is_given_up_with_the_reason() -> None:
    with pytest.raises(StartFailed, match="registry made no progress"):
        await _wait(ready_after=1000, busy=False, stall_seconds=0.0)


async def test_a_process_that_exits_fails_the_wait_at_once() -> None:
    with pytest.raises(StartFailed, match="agent utrecht exited"):
        await _wait(ready_after=1000, name="agent utrecht", running=False, busy=True)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_progress_counts_the_cpu_time_and_the_log_of_the_process(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    log = tmp_path / "process.log"
    progress = ProcessProgress(sleeper.pid, log)
    before = progress.measure()
    log.write_text("started\n")
    after = progress.measure()
    assert after[1] > before[1]


async def test_a_failed_start_names_the_log_and_shows_its_last_lines(tmp_path: Path) -> None:
    server = ServerProcess(
        name="registry",
        arguments=("registry", "serve", "--port", "not-a-port"),
        port=free_port(),
        log_path=tmp_path / "registry.log",
        health_path="/v1/health/ready",
    )
    server.start()
    try:
        async with httpx.AsyncClient() as http:
            with pytest.raises(StartFailed) as failed:
                await server.wait_ready(http)
    finally:
        server.stop()
    message = str(failed.value)
    assert "registry exited before it was ready" in message
    assert str(tmp_path / "registry.log") in message
    assert "not-a-port" in message  # the log's tail: the command's own error
