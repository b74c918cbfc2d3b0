"""One delivery attempt: how it ended, when to try again, and its records, committed in groups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from protocol.logs import TraceContext

__all__ = ["Attempt", "DeliveryReport", "GroupRecorder", "Outcome", "failed_outcome"]

_RETRY_WITH_HEADER = frozenset({429, 503})


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered,
            self.retried + other.retried,
            self.dead + other.dead,
            self.skipped + other.skipped,
        )


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended; ``permanent``: retrying will not help (a 4xx answer).

    ``not_listed``: the receiver does not list the message type in the registry, so it was not
    sent (protocol.md section 11).
    """

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False
    not_listed: bool = False
    retry_after: timedelta | None = None
    receipt_body: bytes | None = None
    receipt_signature: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One attempt of one message, ready to be recorded."""

    message_id: str
    attempted_at: datetime
    outcome: Outcome
    span: TraceContext


def failed_outcome(response: httpx.Response, now: datetime) -> Outcome:
    """The outcome of an answer that is not a success, with ``Retry-After`` where it is given."""
    status = response.status_code
    detail = _problem_detail(response)
    if status in _RETRY_WITH_HEADER:
        return Outcome(
            False, status_code=status, error=detail, retry_after=_retry_after(response, now)
        )
    # Other client errors will not get better by retrying (4xx except 408 and 429).
    permanent = 400 <= status < 500 and status != 408
    return Outcome(False, status_code=status, error=detail, permanent=permanent)


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment - now, timedelta(0)) if moment.tzinfo else None


def _problem_detail(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(problem, Mapping):
        return f"HTTP {response.status_code}"
    parts = [str(problem.get(key)) for key in ("type", "title", "detail") if problem.get(key)]
    return f"HTTP {response.status_code}: " + " - ".join(parts)


_Recorded = tuple[Attempt, "asyncio.Future[DeliveryReport]"]


class GroupRecorder:
    """Records attempt outcomes in groups: what arrives during a write joins the next one.

    Each caller waits until its own outcome is committed (nothing is reported before it is
    durable). A group whose transaction fails is retried one outcome per transaction, so one
    failing row cannot hold back the others.
    """

    def __init__(
        self, write: Callable[[Sequence[Attempt]], Awaitable[list[DeliveryReport]]]
    ) -> None:
        self._write = write
        self._waiting: list[_Recorded] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, attempt: Attempt) -> DeliveryReport:
        future: asyncio.Future[DeliveryReport] = asyncio.get_running_loop().create_future()
        self._waiting.append((attempt, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                reports = await self._write([attempt for attempt, _ in group])
            except Exception:
                await self._one_by_one(group)
                continue
            for (_, future), report in zip(group, reports, strict=True):
                _settle(future, report)

    async def _one_by_one(self, group: list[_Recorded]) -> None:
        for attempt, future in group:
            try:
                [report] = await self._write([attempt])
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                _settle(future, report)


def _settle(future: asyncio.Future[DeliveryReport], report: DeliveryReport) -> None:
    if not future.done():  # a caller cancelled (shutdown) does not wait for its answer
        future.set_result(report)
