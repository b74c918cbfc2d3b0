"""One ``meeverhuizen ... serve`` process on 127.0.0.1: started, waited for, stopped or killed.

Its output goes to a log file; waiting for it follows its readiness path for as long as it makes
progress (``agent.local.starting``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from agent.local.starting import (
    DEFAULT_STALL_SECONDS,
    DEFAULT_START_SECONDS,
    ProcessProgress,
    StartFailed,
    wait_until_ready,
)

__all__ = ["HOST", "ServerProcess", "cpu_seconds", "free_port"]

HOST = "127.0.0.1"
_LAUNCHER = "from agent.cli import main; main()"
_STOP_SECONDS = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU of a running process so far (Linux /proc); 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        # Fields 14 and 15 of /proc/<pid>/stat (after the command name): utime and stime.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    # Settings of the caller's own services must not leak into the child processes.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MEEVERHUIZEN_")}
    return inherited | dict(extra)


@dataclass
class ServerProcess:
    """One ``meeverhuizen ... serve`` process; it can be killed and started again."""

    name: str
    arguments: tuple[str, ...]
    port: int
    log_path: Path
    health_path: str
    environment: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Start the process (output appended to its log file)."""
        if self.running():
            raise RuntimeError(f"{self.name} runs already")
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", _LAUNCHER, *self.arguments],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_child_environment(self.environment),
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash that the outbox and inbound deduplication must survive."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), SIGKILL when it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def wait_ready(
        self,
        http: httpx.AsyncClient,
        *,
        seconds: float = DEFAULT_START_SECONDS,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Wait until the readiness path answers 200, as long as the process makes progress.

        Raises :class:`StartFailed` naming the log file, with its last lines, when the process
        exits, stalls or is not ready after ``seconds``.
        """
        if self.process is None:
            raise StartFailed(f"{self.name} was not started")
        try:
            await wait_until_ready(
                http,
                self.base_url + self.health_path,
                name=self.name,
                running=self.running,
                progress=ProcessProgress(self.process.pid, self.log_path),
                seconds=seconds,
                stall_seconds=stall_seconds,
                on_wait=on_wait,
            )
        except StartFailed as exc:
            tail = self.log_tail() or "(the log is empty)"
            raise StartFailed(f"{exc}; its log {self.log_path} ends with:\n{tail}") from exc

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the process's output (for error messages)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
