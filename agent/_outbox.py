"""Transactional outbox: enqueue with the state change, deliver with retries (issue 4).

Guarantee: at-least-once delivery. A message keeps its id and exact body bytes across attempts;
only the signature is fresh per attempt. Order is kept per stream (one dossier's messages to one
destination); a stuck stream never blocks another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Row,
    Select,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from agent._claims import claim_leased, lease_free, replica_id
from agent._db import Database, DeliveryAttemptRow, OutboxRow, add_rows, execute, prepared
from agent._directory import Directory
from agent._metrics import AgentMetrics
from agent.errors import OutboxMessageUnknown, ReceiptInvalid
from protocol.clock import Clock
from protocol.errors import ProtocolError
from protocol.logs import TraceContext, log_event, trace
from protocol.messages import Receipt
from protocol.signing import (
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)

__all__ = [
    "DeliveredMessage",
    "DeliveryReport",
    "Outbox",
    "OutboxEntry",
    "OutboxPolicy",
    "body_digest",
    "enqueue",
]

OutboxKind = Literal["message", "event"]
DeliveredHook = Callable[[AsyncSession, "DeliveredMessage", datetime], Awaitable[None]]
_RETRY_WITH_HEADER = frozenset({429, 503})
_CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"
# Attempts in flight per agent. Every attempt waits on its receiver most of its time, and on a
# busy event loop (inbound requests) each of its steps waits its turn: fewer in flight would
# leave the outbox behind its own agent's intake.
_CONCURRENCY = 64
_log = logging.getLogger("meeverhuizen.agent.outbox")


def body_digest(body: bytes) -> str:
    """RFC 3230 ``Digest`` value of exact bytes, as receipts name them."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


@dataclass(frozen=True)
class OutboxPolicy:
    """Retry rules of the outbox."""

    max_age: timedelta
    base_delay: timedelta
    max_delay: timedelta
    batch_size: int = 100
    # A replica's claim on the messages of one pass; after it another replica may take them over.
    claim_lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered, self.retried + other.retried, self.dead + other.dead
        )


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox message as operators see it (no body: it may hold personal data)."""

    message_id: str
    dossier_id: str
    sequence: int
    kind: str
    message_type: str
    destination_oin: str | None
    state: str
    attempts: int
    created_at: datetime
    execute_after: datetime
    last_error: str | None


async def enqueue(
    session: AsyncSession,
    *,
    message_id: str,
    dossier_id: str,
    kind: OutboxKind,
    message_type: str,
    body: bytes,
    now: datetime,
    policy: OutboxPolicy,
    destination_oin: str | None = None,
    destination_url: str | None = None,
) -> None:
    """Add a message to the outbox inside the caller's transaction."""
    destination = destination_oin if kind == "message" else "webhook"
    # One statement: the next sequence number of the dossier is read by the INSERT itself.
    await execute(
        session,
        _ENQUEUE,
        {
            "message_id": message_id,
            "dossier_id": dossier_id,
            "stream": f"{dossier_id}:{destination}",
            "kind": kind,
            "message_type": message_type,
            "destination_oin": destination_oin,
            "destination_url": destination_url,
            "body": body,
            "now": now,
            "deadline": now + policy.max_age,
        },
    )


def _enqueue_statement() -> Insert:
    outbox = OutboxRow.__table__.c
    values = {
        "message_id": bindparam("message_id", type_=outbox.message_id.type),
        "dossier_id": bindparam("dossier_id", type_=outbox.dossier_id.type),
        "sequence": func.coalesce(func.max(outbox.sequence), 0) + 1,
        "stream": bindparam("stream", type_=outbox.stream.type),
        "kind": bindparam("kind", type_=outbox.kind.type),
        "message_type": bindparam("message_type", type_=outbox.message_type.type),
        "destination_oin": bindparam("destination_oin", type_=outbox.destination_oin.type),
        "destination_url": bindparam("destination_url", type_=outbox.destination_url.type),
        "body": bindparam("body", type_=outbox.body.type),
        "state": literal("pending", outbox.state.type),
        "attempts": literal(0, outbox.attempts.type),
        "execute_after": bindparam("now", type_=outbox.execute_after.type),
        "created_at": bindparam("now", type_=outbox.created_at.type),
        "deadline": bindparam("deadline", type_=outbox.deadline.type),
    }
    latest = select(*values.values()).where(outbox.dossier_id == bindparam("dossier_id"))
    return prepared(insert(OutboxRow).from_select(list(values), latest))


_ENQUEUE = _enqueue_statement()


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: timedelta | None = None
    receipt_body: bytes | None = None
    receipt_signature: str | None = None


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


@dataclass(frozen=True)
class _Attempt:
    message_id: str
    attempted_at: datetime
    outcome: _Outcome
    span: TraceContext


_Recorded = tuple[_Attempt, "asyncio.Future[DeliveryReport]"]


class _GroupRecorder:
    """Records attempt outcomes in groups: what arrives during a write joins the next one.

    Each caller waits until its own outcome is committed (nothing is reported before it is
    durable). A group whose transaction fails is retried one outcome per transaction, so one
    failing row cannot hold back the others.
    """

    def __init__(
        self, write: Callable[[Sequence[_Attempt]], Awaitable[list[DeliveryReport]]]
    ) -> None:
        self._write = write
        self._waiting: list[_Recorded] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, attempt: _Attempt) -> DeliveryReport:
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


class Outbox:
    """Delivers due outbox messages; one pass at a time per process."""

    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        http: httpx.AsyncClient,
        clock: Clock,
        random: Callable[[], float],
        private_jwk: Mapping[str, Any],
        verification: VerificationPolicy,
        policy: OutboxPolicy,
        on_delivered: DeliveredHook,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._database = database
        self._directory = directory
        self._http = http
        self._clock = clock
        self._random = random
        self._private_jwk = private_jwk
        self._verification = verification
        self._policy = policy
        self._on_delivered = on_delivered
        self._pass_lock = asyncio.Lock()
        self._new_work = False
        self._owner = replica_id()
        self._metrics = metrics or AgentMetrics()

    # --- one pass ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Messages were committed: a running pass looks for them before it ends."""
        self._new_work = True

    async def deliver_due(self) -> DeliveryReport:
        """Try every message that is due and first in its stream, once.

        Up to ``_CONCURRENCY`` attempts run at a time. Messages that become due while the pass
        runs (committed ones, :meth:`notify`; the next of a stream whose head was delivered) join
        it as attempts end, so a pass is a pipeline rather than a batch that waits for its
        slowest attempt.
        """
        async with self._pass_lock:
            recorder = _GroupRecorder(self._record_group)
            attempted: set[str] = set()
            waiting: list[_Due] = []
            running: set[asyncio.Task[DeliveryReport]] = set()
            reports: list[DeliveryReport] = []
            failures: list[BaseException] = []
            look = True
            try:
                while True:
                    if look and len(waiting) < _CONCURRENCY:
                        look, self._new_work = False, False
                        due = await self._claim_due()
                        fresh = [row for row in due if row.message_id not in attempted]
                        attempted.update(row.message_id for row in fresh)
                        waiting.extend(fresh)
                    while waiting and len(running) < _CONCURRENCY:
                        row = waiting.pop(0)
                        running.add(asyncio.create_task(self._deliver_one(row, recorder)))
                    if not running:
                        if self._new_work:
                            look = True
                            continue
                        break
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        error = task.exception()
                        if error is not None:
                            failures.append(error)
                            continue
                        report = task.result()
                        reports.append(report)
                        # A delivered head lets the next message of its stream become due.
                        look = look or self._new_work or report.delivered > 0
            finally:
                for task in running:  # only when the pass itself is cancelled (shutdown)
                    task.cancel()
        # Every attempt ended and was recorded before the pass did, even when one failed.
        if failures:
            raise failures[0]
        return sum(reports, DeliveryReport())

    async def _claim_due(self) -> Sequence[_Due]:
        # Replicas (issue 8): only the head of a stream is eligible, and a head claimed by another
        # replica (lease not ended) is skipped, so it blocks its stream. On PostgreSQL the claim
        # locks with SKIP LOCKED (agent._claims); SQLite is single-process.
        now = self._clock.now()
        if self._database.is_sqlite:
            # SQLite is single-process and the pass lock keeps passes apart: no claim to write,
            # so no write lock and no UPDATE per pass (a claim would only be ignored there).
            found = await self._database.read(_DUE, {"now": now, "batch": self._policy.batch_size})
            return found.all()
        query = (
            select(OutboxRow)
            .where(OutboxRow.state == "pending", OutboxRow.execute_after <= now)
            .where(_HEAD_OF_STREAM, lease_free(OutboxRow, now))
            .order_by(OutboxRow.execute_after, OutboxRow.sequence)
            .limit(self._policy.batch_size)
        )
        return await claim_leased(
            self._database, query, owner=self._owner, now=now, lease=self._policy.claim_lease
        )

    async def _deliver_one(self, row: _Due, recorder: _GroupRecorder) -> DeliveryReport:
        # Every attempt is a span in the message's own trace (the message id is the trace id).
        with trace(_traceparent(row.message_id)) as span:
            attempted_at = self._clock.now()
            if row.kind == "message":
                outcome = await self._send_message(row)
            else:
                outcome = await self._send_event(row)
            report = await recorder.record(_Attempt(row.message_id, attempted_at, outcome, span))
            self._observe(row, report, outcome)
            return report

    def _observe(self, row: _Due, report: DeliveryReport, outcome: _Outcome) -> None:
        fields: dict[str, Any] = {
            "message_id": row.message_id,
            "dossier_id": row.dossier_id,
            "kind": row.kind,
            "message_type": row.message_type,
            "status_code": outcome.status_code,
        }
        if report.delivered:
            self._metrics.message_delivered(row.kind, row.message_type)
            log_event(_log, "message_delivered", **fields)
            return
        if report.retried or report.dead:
            self._metrics.delivery_failed(row.kind, row.message_type)
        if report.retried:
            log_event(_log, "message_retry_scheduled", **fields)
        if report.dead:
            self._metrics.message_dead(row.kind, row.message_type)
            log_event(_log, "message_dead", level=logging.WARNING, **fields)

    # --- sending -----------------------------------------------------------------------------

    async def _send_message(self, row: _Due) -> _Outcome:
        oin = row.destination_oin or ""
        try:
            entry = await self._directory.participant(oin)
        except Exception as exc:  # registry errors and outages are retried until max age
            return _Outcome(False, error=f"registry: {getattr(exc, 'code', type(exc).__name__)}")
        if not entry.endpoint:
            return _Outcome(False, error="registry: receiver has no endpoint")
        signed = sign_body(row.body, self._private_jwk, signing_time=self._clock.now())
        headers = {**signed.headers(), "traceparent": _traceparent(row.message_id)}
        try:
            response = await self._http.post(
                f"{entry.endpoint.rstrip('/')}/v1/messages", content=row.body, headers=headers
            )
        except httpx.HTTPError as exc:
            return _Outcome(False, error=f"network: {type(exc).__name__}")
        if response.status_code != 200:
            return self._failed(response)
        return await self._check_receipt(row, response)

    async def _send_event(self, row: _Due) -> _Outcome:
        try:
            response = await self._http.post(
                row.destination_url or "",
                content=row.body,
                headers={"Content-Type": _CLOUDEVENTS_JSON},
            )
        except httpx.HTTPError as exc:
            return _Outcome(False, error=f"network: {type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return _Outcome(True, status_code=response.status_code)
        return self._failed(response)

    def _failed(self, response: httpx.Response) -> _Outcome:
        status = response.status_code
        detail = _problem_detail(response)
        if status in _RETRY_WITH_HEADER:
            after = _retry_after(response, self._clock.now())
            return _Outcome(False, status_code=status, error=detail, retry_after=after)
        # Other client errors will not get better by retrying (4xx except 408 and 429).
        permanent = 400 <= status < 500 and status != 408
        return _Outcome(False, status_code=status, error=detail, permanent=permanent)

    async def _check_receipt(self, row: _Due, response: httpx.Response) -> _Outcome:
        try:
            await self._verify_receipt(row, response)
        except (ProtocolError, ReceiptInvalid) as exc:
            return _Outcome(False, status_code=200, error=f"receipt: {exc.code}: {exc.detail}")
        except Exception as exc:  # registry lookup of the receiver's keys failed: retry
            return _Outcome(False, status_code=200, error=f"receipt keys: {type(exc).__name__}")
        return _Outcome(
            True,
            status_code=200,
            receipt_body=response.content,
            receipt_signature=response.headers.get("Payload-Signature"),
        )

    async def _verify_receipt(self, row: _Due, response: httpx.Response) -> None:
        unverified = read_signed_message(
            response.content, response.headers.multi_items(), policy=self._verification
        )
        if unverified.sender_oin != row.destination_oin:
            raise ReceiptInvalid("receipt is not from the receiver")
        keys = await self._directory.verification_keys(unverified.sender_oin)
        # A receipt names the message id and digest, so an older one cannot mislead: no skew check.
        message = verify_message(unverified, keys, policy=self._verification, now=None)
        body = message.body
        if not isinstance(body, Receipt):
            raise ReceiptInvalid("answer is not a receipt")
        if str(body.received_message_id) != row.message_id:
            raise ReceiptInvalid("receipt names another message")
        if body.body_digest != body_digest(row.body):
            raise ReceiptInvalid("receipt digest differs from the bytes sent")

    # --- recording ---------------------------------------------------------------------------

    async def _record_group(self, attempts: Sequence[_Attempt]) -> list[DeliveryReport]:
        # Group commit: the outcomes that completed while the previous group was being written
        # share one transaction: one UPDATE executed for all of them, one INSERT of their
        # attempts, one commit.
        now = self._clock.now()
        ids = [attempt.message_id for attempt in attempts]
        async with self._database.transaction() as session:
            pending: dict[str, Any] = {}
            for message_id in dict.fromkeys(ids):  # one prepared look-up each (no IN list)
                found = (await execute(session, _PENDING, {"id": message_id})).first()
                if found is not None:
                    pending[message_id] = found
            reports: list[DeliveryReport] = []
            recorded: list[tuple[_Attempt, Row[Any], dict[str, Any]]] = []
            for attempt in attempts:
                row = pending.pop(attempt.message_id, None)
                if row is None:  # not pending (any more): nothing is recorded
                    reports.append(DeliveryReport())
                    continue
                change, report = self._change(row, attempt, now)
                reports.append(report)
                recorded.append((attempt, row, change))
            if recorded:
                await execute(session, _RECORD, [change for _, _, change in recorded])
                attempted = (_attempt_values(attempt) for attempt, _, _ in recorded)
                await add_rows(session, DeliveryAttemptRow, *attempted)
            for attempt, row, change in recorded:
                if change["new_state"] == "delivered":
                    with trace(attempt.span):
                        await self._on_delivered(session, _delivered(row), now)
            return reports

    def _change(
        self, row: Row[Any], attempt: _Attempt, now: datetime
    ) -> tuple[dict[str, Any], DeliveryReport]:
        """The new column values of a pending row after this attempt (parameters of _RECORD)."""
        outcome = attempt.outcome
        attempts = row.attempts + 1
        # A replica's own claim ends with the attempt; another replica's claim is left alone.
        released = row.claimed_by == self._owner
        change: dict[str, Any] = {
            "id": row.message_id,
            "new_state": "pending",
            "new_attempts": attempts,
            "new_delivered_at": None,
            "new_last_error": outcome.error,
            "new_receipt_body": None,
            "new_receipt_signature": None,
            "new_execute_after": row.execute_after,
            "new_claimed_by": None if released else row.claimed_by,
            "new_claimed_until": None if released else row.claimed_until,
        }
        if outcome.delivered:
            change |= {
                "new_state": "delivered",
                "new_delivered_at": now,
                "new_last_error": None,
                "new_receipt_body": outcome.receipt_body,
                "new_receipt_signature": outcome.receipt_signature,
            }
            return change, DeliveryReport(delivered=1)
        if outcome.permanent or now >= row.deadline:
            change["new_state"] = "dead"
            return change, DeliveryReport(dead=1)
        change["new_execute_after"] = min(now + self._delay(attempts, outcome), row.deadline)
        return change, DeliveryReport(retried=1)

    def _delay(self, attempts: int, outcome: _Outcome) -> timedelta:
        if outcome.retry_after is not None:
            return min(outcome.retry_after, self._policy.max_delay)
        exponential = self._policy.base_delay * (1 << min(attempts - 1, 30))
        delay = min(exponential, self._policy.max_delay)
        # Equal jitter: between half and the whole delay, so retries of many agents spread out.
        return delay / 2 + delay * (self._random() / 2)

    # --- operators ---------------------------------------------------------------------------

    async def list(self, state: str | None = None) -> list[OutboxEntry]:
        """Outbox messages, optionally only those in ``state``, oldest first."""
        query = select(OutboxRow).order_by(OutboxRow.created_at, OutboxRow.sequence)
        if state is not None:
            query = query.where(OutboxRow.state == state)
        async with self._database.reading() as session:
            rows = (await session.scalars(query)).all()
        return [_entry(row) for row in rows]

    async def requeue(self, message_id: str) -> OutboxEntry:
        """Put a dead message back in the queue, due now, with a fresh maximum age."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            row = await session.get(OutboxRow, message_id)
            if row is None or row.state != "dead":
                raise OutboxMessageUnknown(f"no dead outbox message {message_id}")
            row.state, row.execute_after, row.deadline = "pending", now, now + self._policy.max_age
            row.claimed_by, row.claimed_until = None, None
            return _entry(row)


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        message_id=row.message_id,
        dossier_id=row.dossier_id,
        sequence=row.sequence,
        kind=row.kind,
        message_type=row.message_type,
        destination_oin=row.destination_oin,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        execute_after=row.execute_after,
        last_error=row.last_error,
    )


def _traceparent(message_id: str) -> str:
    # W3C Trace Context: the message id is the trace id, so every attempt joins one trace.
    return f"00-{uuid.UUID(message_id).hex}-{secrets.token_hex(8)}-01"


class _Due(Protocol):
    """A message due for delivery, as a pass reads it (an ORM row or a prepared row)."""

    @property
    def message_id(self) -> str: ...
    @property
    def dossier_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def message_type(self) -> str: ...
    @property
    def destination_oin(self) -> str | None: ...
    @property
    def destination_url(self) -> str | None: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True)
class DeliveredMessage:
    """What the delivered hook is told of a message that has just been receipted."""

    message_id: str
    dossier_id: str
    kind: str
    message_type: str


def _delivered(row: Row[Any]) -> DeliveredMessage:
    return DeliveredMessage(row.message_id, row.dossier_id, row.kind, row.message_type)


def _attempt_values(attempt: _Attempt) -> dict[str, Any]:
    return {
        "message_id": attempt.message_id,
        "at": attempt.attempted_at,
        "status_code": attempt.outcome.status_code,
        "error": attempt.outcome.error,
    }


def _record_statement() -> Update:
    outbox = OutboxRow.__table__.c
    changed = (
        "state",
        "attempts",
        "delivered_at",
        "last_error",
        "receipt_body",
        "receipt_signature",
        "execute_after",
        "claimed_by",
        "claimed_until",
    )
    return prepared(
        update(OutboxRow)
        .where(outbox.message_id == bindparam("id"))
        .values({name: bindparam(f"new_{name}", type_=outbox[name].type) for name in changed})
    )


_OUTBOX = OutboxRow.__table__.c
_PENDING = prepared(
    select(
        _OUTBOX.message_id,
        _OUTBOX.dossier_id,
        _OUTBOX.kind,
        _OUTBOX.message_type,
        _OUTBOX.attempts,
        _OUTBOX.execute_after,
        _OUTBOX.deadline,
        _OUTBOX.claimed_by,
        _OUTBOX.claimed_until,
    ).where(_OUTBOX.message_id == bindparam("id"), _OUTBOX.state == "pending")
)
_RECORD = _record_statement()


def _head_of_stream() -> ColumnElement[bool]:
    # No earlier message of the same stream is undelivered.
    outbox = OutboxRow.__table__.c
    earlier = OutboxRow.__table__.alias("earlier")
    return ~(
        select(earlier.c.message_id)
        .where(
            earlier.c.stream == outbox.stream,
            earlier.c.sequence < outbox.sequence,
            earlier.c.state != "delivered",
        )
        .exists()
    )


_HEAD_OF_STREAM = _head_of_stream()


def _due_statement() -> Select[Any]:
    outbox = OutboxRow.__table__.c
    return prepared(
        select(
            outbox.message_id,
            outbox.dossier_id,
            outbox.kind,
            outbox.message_type,
            outbox.destination_oin,
            outbox.destination_url,
            outbox.body,
        )
        .where(
            outbox.state == "pending",
            outbox.execute_after <= bindparam("now", type_=outbox.execute_after.type),
        )
        .where(_HEAD_OF_STREAM)
        .order_by(outbox.execute_after, outbox.sequence)
        .limit(bindparam("batch", type_=Integer))
    )


_DUE = _due_statement()
