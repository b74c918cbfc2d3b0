"""Transactional outbox: enqueue with the state change, deliver with retries.

Guarantee: at-least-once delivery. A message keeps its id and exact body bytes across attempts;
only the signature is fresh per attempt. Order is kept per stream (one dossier's messages to one
destination); a stuck stream never blocks another. Urgent dossiers' messages go first.

A message whose type the receiver does not list in the registry is never sent: an informative
one (``INFORMATIVE_MESSAGE_TYPES``) is ``skipped`` and the stream goes on; any other is ``dead``
and holds its stream until an operator requeues it once the receiver lists the type.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from sqlalchemy import ColumnElement, func, nulls_last, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.api_model import ApiModel
from agent.delivery.attempts import (
    Attempt,
    DeliveryReport,
    GroupRecorder,
    Outcome,
    failed_outcome,
)
from agent.delivery.outgoing import OutboxPolicy
from agent.directory import Directory
from agent.errors import OutboxMessageUnknown, ReceiptInvalid
from agent.metrics import AgentMetrics
from agent.storage.claims import claim_leased, lease_free, replica_id
from agent.storage.database import Database
from agent.storage.tables import DeliveryAttemptRow, DossierRow, OutboxRow
from protocol.clock import Clock
from protocol.errors import ProtocolError
from protocol.logs import log_event, trace
from protocol.messages import INFORMATIVE_MESSAGE_TYPES, Receipt
from protocol.signing import (
    SIGNATURE_HEADER,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)
from registry.errors import EndpointNotAllowed, MessageTypeNotSupported
from registry.server_kit.endpoints import EndpointRules

__all__ = ["DeliveredMessage", "Outbox", "OutboxEntry", "OutboxState", "body_digest"]

DeliveredHook = Callable[[AsyncSession, "DeliveredMessage", datetime], Awaitable[None]]
OutboxState = Literal["pending", "delivered", "skipped", "dead"]
_CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"
# Attempts in flight per agent. Every attempt waits on its receiver most of its time, and on a
# busy event loop (inbound requests) each of its steps waits its turn: fewer in flight would
# leave the outbox behind its own agent's intake.
_CONCURRENCY = 64
_log = logging.getLogger("meeverhuizen.agent.outbox")


def body_digest(body: bytes) -> str:
    """RFC 3230 ``Digest`` value of exact bytes, as receipts name them."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


class OutboxEntry(ApiModel):
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


@dataclass(frozen=True)
class DeliveredMessage:
    """What the delivered hook is told of a message that has just been receipted."""

    message_id: str
    dossier_id: str
    kind: str
    message_type: str


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
        endpoints: EndpointRules | None = None,
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
        self._endpoints = endpoints or EndpointRules()

    # --- one pass ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Messages were committed: a running pass looks for them before it ends."""
        self._new_work = True

    async def deliver_due(self) -> DeliveryReport:
        """Try every message that is due and first in its stream, urgent dossiers' first.

        Up to ``_CONCURRENCY`` attempts run at a time. Messages that become due while the pass
        runs (committed ones, :meth:`notify`; the next of a stream whose head was delivered; a
        retry whose delay has passed) join it as attempts end, so a pass is a pipeline rather
        than a batch that waits for its slowest attempt. A message is never attempted twice at
        once: rows already waiting or in flight are left out of each look.
        """
        async with self._pass_lock:
            recorder = GroupRecorder(self._record_group)
            in_pass: set[str] = set()  # waiting or in flight
            waiting: list[OutboxRow] = []
            running: dict[asyncio.Task[DeliveryReport], str] = {}  # task -> message id
            reports: list[DeliveryReport] = []
            failures: list[BaseException] = []
            look = True
            try:
                while True:
                    if look and len(waiting) < _CONCURRENCY:
                        look, self._new_work = False, False
                        due = await self._claim_due(leave_out=in_pass)
                        in_pass.update(row.message_id for row in due)
                        waiting.extend(due)
                    while waiting and len(running) < _CONCURRENCY:
                        row = waiting.pop(0)
                        running[asyncio.create_task(self._deliver_one(row, recorder))] = (
                            row.message_id
                        )
                    if not running:
                        if self._new_work:
                            look = True
                            continue
                        break
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        # Its attempt is recorded: a retry, once due, may join this pass.
                        in_pass.discard(running.pop(task))
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

    @staticmethod
    async def earliest(session: AsyncSession) -> datetime | None:
        """When the first pending message that heads its stream falls due (None: none pending)."""
        return await session.scalar(
            select(func.min(OutboxRow.execute_after)).where(
                OutboxRow.state == "pending", _head_of_stream()
            )
        )

    async def _claim_due(self, *, leave_out: Collection[str]) -> Sequence[OutboxRow]:
        # Only the head of a stream is eligible, and a head claimed by another replica (lease not
        # ended) is skipped, so it blocks its stream. On PostgreSQL the claim locks with SKIP
        # LOCKED (agent.storage.claims), the outbox rows only. Heads of urgent dossiers come
        # first (the client cannot be without a device); a message without a dossier row here
        # (an order's, on a supplier's agent) counts as not urgent.
        now = self._clock.now()
        query = (
            select(OutboxRow)
            .outerjoin(DossierRow, DossierRow.id == OutboxRow.dossier_id)
            .where(OutboxRow.state == "pending", OutboxRow.execute_after <= now)
            .where(_head_of_stream(), lease_free(OutboxRow, now))
            .where(OutboxRow.message_id.not_in(leave_out))
            .order_by(
                nulls_last(DossierRow.urgent.desc()), OutboxRow.execute_after, OutboxRow.sequence
            )
            .limit(self._policy.batch_size)
        )
        if self._database.is_sqlite:
            # One process and one pass at a time (the pass lock): a claim would only be ignored,
            # so none is written and a pass takes no write lock.
            async with self._database.reading() as session:
                return (await session.scalars(query)).all()
        return await claim_leased(
            self._database, query, owner=self._owner, now=now, lease=self._policy.claim_lease
        )

    async def _deliver_one(self, row: OutboxRow, recorder: GroupRecorder) -> DeliveryReport:
        # Every attempt is a span in the message's own trace (the message id is the trace id).
        with trace(_traceparent(row.message_id)) as span:
            attempted_at = self._clock.now()
            if row.kind == "message":
                outcome = await self._send_message(row)
            else:
                outcome = await self._send_event(row)
            report = await recorder.record(Attempt(row.message_id, attempted_at, outcome, span))
            self._observe(row, report, outcome)
            return report

    def _observe(self, row: OutboxRow, report: DeliveryReport, outcome: Outcome) -> None:
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
        if report.skipped:
            log_event(
                _log,
                "message_skipped",
                reason="the receiver does not list this informative message type",
                **fields,
            )

    # --- sending -----------------------------------------------------------------------------

    async def _send_message(self, row: OutboxRow) -> Outcome:
        oin = row.destination_oin or ""
        try:
            entry = await self._directory.participant(oin, message_type=row.message_type)
        except MessageTypeNotSupported:
            error = f"registry: the receiver does not accept {row.message_type} messages"
            return Outcome(False, error=error, permanent=True, not_listed=True)
        except Exception as exc:  # registry errors and outages are retried until max age
            return Outcome(False, error=f"registry: {getattr(exc, 'code', type(exc).__name__)}")
        if not entry.endpoint:
            return Outcome(False, error="registry: receiver has no endpoint")
        try:
            # Checked before every connection: a name may resolve to an internal address later.
            checked = await self._endpoints.check(entry.endpoint)
        except EndpointNotAllowed as exc:
            return Outcome(False, error=f"endpoint: {exc.detail}")
        # To the address just checked: the name is not looked up again (DNS rebinding).
        target = checked.target("/v1/messages")
        signed = sign_body(row.body, self._private_jwk, signing_time=self._clock.now())
        headers = {**signed.headers(), "traceparent": _traceparent(row.message_id)}
        try:
            # No redirect is followed: only the receiver's own signed receipt counts.
            response = await self._http.post(
                target.url,
                content=row.body,
                headers={**headers, **target.headers},
                extensions=dict(target.extensions),
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"network: {type(exc).__name__}")
        if response.status_code != 200:
            return failed_outcome(response, self._clock.now())
        return await self._check_receipt(row, response)

    async def _send_event(self, row: OutboxRow) -> Outcome:
        try:
            response = await self._http.post(
                row.destination_url or "",
                content=row.body,
                headers={"Content-Type": _CLOUDEVENTS_JSON},
            )
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"network: {type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return Outcome(True, status_code=response.status_code)
        return failed_outcome(response, self._clock.now())

    async def _check_receipt(self, row: OutboxRow, response: httpx.Response) -> Outcome:
        try:
            await self._verify_receipt(row, response)
        except (ProtocolError, ReceiptInvalid) as exc:
            return Outcome(False, status_code=200, error=f"receipt: {exc.code}: {exc.detail}")
        except Exception as exc:  # registry lookup of the receiver's keys failed: retry
            return Outcome(False, status_code=200, error=f"receipt keys: {type(exc).__name__}")
        return Outcome(
            True,
            status_code=200,
            receipt_body=response.content,
            receipt_signature=response.headers.get(SIGNATURE_HEADER),
        )

    async def _verify_receipt(self, row: OutboxRow, response: httpx.Response) -> None:
        unverified = read_signed_message(
            response.content, response.headers.multi_items(), policy=self._verification
        )
        if unverified.sender_oin != row.destination_oin:
            raise ReceiptInvalid("receipt is not from the receiver")
        keys = await self._directory.key_history(unverified.sender_oin)
        if all(key.kid != unverified.kid for key in keys):
            keys = await self._directory.key_history(unverified.sender_oin, refresh=True)
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

    async def _record_group(self, attempts: Sequence[Attempt]) -> list[DeliveryReport]:
        # Group commit: the outcomes that completed while the previous group was being written
        # share one transaction and one commit.
        now = self._clock.now()
        async with self._database.transaction() as session:
            pending = {
                row.message_id: row
                for row in await session.scalars(
                    select(OutboxRow).where(
                        OutboxRow.message_id.in_({a.message_id for a in attempts}),
                        OutboxRow.state == "pending",
                    )
                )
            }
            reports: list[DeliveryReport] = []
            delivered: list[tuple[Attempt, OutboxRow]] = []
            for attempt in attempts:
                row = pending.pop(attempt.message_id, None)
                if row is None:  # not pending (any more): nothing is recorded
                    reports.append(DeliveryReport())
                    continue
                reports.append(self._change(row, attempt, now))
                session.add(
                    DeliveryAttemptRow(
                        message_id=attempt.message_id,
                        at=attempt.attempted_at,
                        status_code=attempt.outcome.status_code,
                        error=attempt.outcome.error,
                    )
                )
                if row.state == "delivered":
                    delivered.append((attempt, row))
            for attempt, row in delivered:
                with trace(attempt.span):
                    await self._on_delivered(session, _delivered(row), now)
            return reports

    def _change(self, row: OutboxRow, attempt: Attempt, now: datetime) -> DeliveryReport:
        """Apply this attempt's outcome to a pending row."""
        outcome = attempt.outcome
        row.attempts += 1
        row.last_error = outcome.error
        # A replica's own claim ends with the attempt; another replica's claim is left alone.
        if row.claimed_by == self._owner:
            row.claimed_by, row.claimed_until = None, None
        if outcome.delivered:
            row.state, row.delivered_at, row.last_error = "delivered", now, None
            row.receipt_body, row.receipt_signature = (
                outcome.receipt_body,
                outcome.receipt_signature,
            )
            return DeliveryReport(delivered=1)
        if outcome.not_listed and row.message_type in INFORMATIVE_MESSAGE_TYPES:
            row.state = "skipped"
            return DeliveryReport(skipped=1)
        if outcome.permanent or now >= row.deadline:
            row.state = "dead"
            return DeliveryReport(dead=1)
        row.execute_after = min(now + self._delay(row.attempts, outcome), row.deadline)
        return DeliveryReport(retried=1)

    def _delay(self, attempts: int, outcome: Outcome) -> timedelta:
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
            return [OutboxEntry.model_validate(row) for row in await session.scalars(query)]

    async def requeue(self, message_id: str) -> OutboxEntry:
        """Put a dead message back in the queue, due now, with a fresh maximum age."""
        now = self._clock.now()
        async with self._database.transaction() as session:
            row = await session.get(OutboxRow, message_id)
            if row is None or row.state != "dead":
                raise OutboxMessageUnknown(f"no dead outbox message {message_id}")
            row.state, row.execute_after, row.deadline = "pending", now, now + self._policy.max_age
            row.claimed_by, row.claimed_until = None, None
            return OutboxEntry.model_validate(row)

    async def measure(self) -> None:
        """Set the outbox gauges of the metrics from the database (per scrape)."""
        async with self._database.reading() as session:
            counts = await session.execute(
                select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            )
            oldest = await session.scalar(
                select(func.min(OutboxRow.created_at)).where(OutboxRow.state == "pending")
            )
        age = (self._clock.now() - oldest).total_seconds() if oldest is not None else 0.0
        self._metrics.outbox(dict(counts.all()), age)


def _traceparent(message_id: str) -> str:
    # W3C Trace Context: the message id is the trace id, so every attempt joins one trace.
    return f"00-{uuid.UUID(message_id).hex}-{secrets.token_hex(8)}-01"


def _delivered(row: OutboxRow) -> DeliveredMessage:
    return DeliveredMessage(row.message_id, row.dossier_id, row.kind, row.message_type)


def _head_of_stream() -> ColumnElement[bool]:
    # No earlier message of the same stream is undelivered (a skipped one holds nothing up).
    earlier = OutboxRow.__table__.alias("earlier")
    return ~(
        select(earlier.c.message_id)
        .where(
            earlier.c.stream == OutboxRow.stream,
            earlier.c.sequence < OutboxRow.sequence,
            earlier.c.state.not_in(("delivered", "skipped")),
        )
        .exists()
    )
