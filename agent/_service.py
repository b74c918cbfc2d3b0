"""The agent's service layer: dossiers, consent, inbound messages, register and outbox (issue 4).

Every state change and the messages it causes are committed in one transaction; network calls
happen outside transactions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent._brp_events import on_dossier_request
from agent._consent_flow import ConsentFlow
from agent._db import (
    SELECT_DOSSIER,
    ConsentRow,
    Database,
    DossierRow,
    InboundMessageRow,
    OutboxRow,
    ProvisionRow,
    TransitionRow,
    add_rows,
    append,
    execute,
    insert_persistent,
    load_dossier,
    prepared,
    update_dossier,
)
from agent._deadlines import Deadlines
from agent._delivery_channels import DeliveryChannel, configured_channels
from agent._directory import Directory
from agent._events import state_changed_event
from agent._metrics import AgentMetrics
from agent._offer import REQUIRED_KINDS, build_offer
from agent._orders import OrderDesk
from agent._outbox import (
    DeliveredMessage,
    DeliveryReport,
    Outbox,
    OutboxPolicy,
    body_digest,
    enqueue,
)
from agent._policy import continued_provision_end, decide_devices
from agent._processing_log import inbound_trace, parse_traceparent
from agent._register import ImportFormat, ImportResult, load_client, parse_import, store_import
from agent._states import Side, check_transition, initial_state
from agent._supplier import SupplierDesk
from agent._tasks import Tasks
from agent._views import (
    ConsentInput,
    DecisionView,
    DossierStart,
    DossierSummary,
    DossierView,
    TransitionView,
)
from agent.errors import (
    ConsentMissing,
    DirectoryUnavailable,
    DossierUnknown,
    IllegalTransition,
    MessageConflict,
    MessageNotHandled,
    NothingToMove,
    ProvisionUnknown,
    ReceiverNotConnected,
    SenderUnknown,
)
from agent.settings import AgentSettings
from agent.working_days import WorkingDayCalendar
from protocol import canonicalize
from protocol.clock import Clock
from protocol.logs import log_event
from protocol.messages import (
    CancelReason,
    ConsentWithdrawn,
    DeviceDecision,
    DossierCancelled,
    DossierOffer,
    DossierRequest,
    Message,
    MessageBody,
    Receipt,
    SupplierStatus,
    message_to_json,
)
from protocol.signing import (
    SignedBody,
    VerificationKey,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["AgentService"]

_SIGNATURE_HEADER = "payload-signature"
_CONSENT_OUTCOMES = {
    "consent-given": "given",
    "consent-refused": "refused",
    "consent-expired": "expired",
    "consent-withdrawn": "withdrawn",
}
_IMPORT_CHUNK = 200
_log = logging.getLogger("meeverhuizen.agent")


class AgentService:
    """One agent's behaviour, without HTTP: the API routes, the CLI and tests call this."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        database: Database,
        directory: Directory,
        http: httpx.AsyncClient,
        clock: Clock,
        random: Callable[[], float],
        channels: Sequence[DeliveryChannel] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        # Prometheus counters of this agent; other modules count through it (issue 8).
        self.metrics = AgentMetrics()
        self._directory = directory
        self._clock = clock
        self.http = http
        self._jwk = settings.private_jwk()
        self._verification = VerificationPolicy(
            receiver_oin=settings.oin,
            max_body_bytes=settings.max_body_bytes,
            clock_skew=settings.clock_skew,
        )
        self._outbox_policy = OutboxPolicy(
            max_age=settings.outbox_max_age,
            base_delay=_seconds(settings.outbox_base_delay_seconds),
            max_delay=_seconds(settings.outbox_max_delay_seconds),
            batch_size=settings.outbox_batch_size,
            claim_lease=_seconds(settings.outbox_claim_lease_seconds),
        )
        self.outbox = Outbox(
            database=database,
            directory=directory,
            http=http,
            clock=clock,
            random=random,
            private_jwk=self._jwk,
            verification=self._verification,
            policy=self._outbox_policy,
            on_delivered=self._on_delivered,
            metrics=self.metrics,
        )
        self.tasks = Tasks(database=database, clock=clock)
        self.consent = ConsentFlow(
            settings,
            database=database,
            clock=clock,
            outbox_policy=self._outbox_policy,
            transition=self._transition,
            channels=configured_channels(settings.consent) if channels is None else channels,
        )
        # Issue 7: takeover orders, the supplier role and persistent deadlines.
        self.deadlines = Deadlines(database=database, clock=clock)
        calendar = WorkingDayCalendar(bevrijdingsdag=settings.takeover.bevrijdingsdag)
        self.orders = OrderDesk(
            settings=settings,
            database=database,
            directory=directory,
            policy=self._outbox_policy,
            calendar=calendar,
            deadlines=self.deadlines,
            transition=self._transition,
            metrics=self.metrics,
        )
        self.supplier = SupplierDesk(
            settings=settings,
            database=database,
            policy=self._outbox_policy,
            calendar=calendar,
            deadlines=self.deadlines,
            clock=clock,
            metrics=self.metrics,
        )
        self._wake: Callable[[], None] = lambda: None
        # Set by the scheduler while it runs (readiness, issue 8).
        self.scheduler_running: Callable[[], bool] = lambda: False

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Called after each commit that enqueued something (the scheduler's wake-up)."""
        self._wake = wake

    def wake(self) -> None:
        """Wake the delivery job (after a commit that enqueued something)."""
        self.outbox.notify()
        self._wake()

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def directory(self) -> Directory:
        return self._directory

    # --- delivery ----------------------------------------------------------------------------

    async def deliver_due(self) -> DeliveryReport:
        """One delivery pass: every due message that is first in its stream, once."""
        return await self.outbox.deliver_due()

    async def deliver_until_quiet(self, *, max_passes: int = 100) -> DeliveryReport:
        """Delivery passes until one delivers nothing (what the scheduled job runs)."""
        await self.consent.deliver_pending()
        total = DeliveryReport()
        for _ in range(max_passes):
            report = await self.outbox.deliver_due()
            total += report
            if report.delivered == 0:
                break
        return total

    # --- register ----------------------------------------------------------------------------

    async def import_provisions(
        self,
        content: bytes,
        import_format: ImportFormat,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Validate the whole import, then apply it in one transaction (all or nothing).

        ``progress(done, total)`` is told after each chunk of clients (the CLI's progress bar).
        """
        clients = parse_import(content, import_format)
        now = self._clock.now()
        devices = 0
        async with self.database.transaction() as session:
            for start in range(0, len(clients), _IMPORT_CHUNK):
                chunk = clients[start : start + _IMPORT_CHUNK]
                devices += (await store_import(session, chunk, now=now)).devices
                if progress is not None:
                    progress(start + len(chunk), len(clients))
        return ImportResult(clients=len(clients), devices=devices)

    # --- departing side ----------------------------------------------------------------------

    async def start_dossier(self, start: DossierStart) -> DossierView:
        """Start a handover for a client in the register; it waits for the client's consent."""
        now = self._clock.now()
        async with self.database.transaction() as session:
            dossier = await self.start_dossier_in(
                session, start, cause="started by case system", now=now
            )
            view = await self._view(session, dossier.id)
        await self.consent.deliver_pending()
        self.wake()
        return view

    async def start_dossier_in(
        self, session: AsyncSession, start: DossierStart, *, cause: str, now: datetime
    ) -> DossierRow:
        """Start a dossier inside the caller's transaction (case system, BRP event, request)."""
        client = await load_client(session, start.bsn)
        if client is None:
            raise ProvisionUnknown("this client is not in the register of current provisions")
        if not any(device.movable for device in client.devices):
            raise NothingToMove("the client has no movable device")
        if start.new_address.gemeentecode == self.settings.gemeentecode:
            raise NothingToMove("the new address is in this gemeente")
        dossier = DossierRow(
            id=str(uuid.uuid4()),
            side="departing",
            state=initial_state("departing"),
            partner_gemeentecode=start.new_address.gemeentecode,
            client_bsn=start.bsn,
            move_date=start.move_date,
            new_address=start.new_address.model_dump(mode="json", by_alias=True, exclude_none=True),
            created_at=now,
            updated_at=now,
        )
        await insert_persistent(session, dossier)
        await self._record(session, dossier, None, dossier.state, cause, now)
        await self._transition(session, dossier, "waiting-for-consent", "consent asked", now)
        await self.consent.on_started(session, dossier, client, now)
        return dossier

    async def cancel_dossier_in(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        *,
        reason: CancelReason,
        cause: str,
        now: datetime,
    ) -> None:
        """Cancel a dossier in the caller's transaction; a partner that got a message is told."""
        await self._transition(session, dossier, "cancelled", cause, now)
        # Issue 7: every supplier that got an order or a departure notice is told as well.
        cancelled = DossierCancelled(reason=reason)
        await self.orders.forward_cancellation(session, dossier, cancelled, now)
        told = await session.scalar(
            select(OutboxRow.message_id)
            .where(OutboxRow.dossier_id == dossier.id, OutboxRow.kind == "message")
            .where(OutboxRow.destination_oin == dossier.partner_oin)
            .limit(1)
        )
        if told is None:
            return
        roles = _DEPARTING if dossier.side == "departing" else _RECEIVING
        await self._enqueue_message(
            session,
            dossier,
            cancelled,
            message_type="dossier-cancelled",
            roles=roles,
            now=now,
        )

    async def send_dossier_request_in(
        self, session: AsyncSession, request: DossierRequest, *, departing_oin: str, now: datetime
    ) -> str:
        """Receiving side: ask the departing gemeente for a dossier; returns the request's id."""
        # No dossier of our own yet: the request's id is its dossier id until the offer comes.
        addressee = DossierRow(id=str(uuid.uuid4()), partner_oin=departing_oin)
        await self._enqueue_message(
            session, addressee, request, message_type="dossier-request", roles=_RECEIVING, now=now
        )
        return addressee.id

    async def record_consent(self, dossier_id: str, consent: ConsentInput) -> DossierView:
        """Record the client's consent or refusal; with consent the offer goes out at once."""
        if consent.outcome == "given":
            missing = sorted(REQUIRED_KINDS - set(consent.data_kinds))
            if missing or not consent.device_ids:
                raise ConsentMissing(f"consent must cover {', '.join(missing) or 'a device'}")
        gemeentecode = await self._partner_gemeentecode(dossier_id, "departing")
        receiver_oin = (
            await self._receiving_oin(gemeentecode) if consent.outcome == "given" else None
        )
        now = self._clock.now()
        async with self.database.transaction() as session:
            dossier = await self._locked_dossier(session, dossier_id, "departing")
            target = "consent-given" if consent.outcome == "given" else "consent-refused"
            check_transition("departing", dossier.state, target)
            consent_row = _consent_row(dossier_id, consent, now)
            await append(session, consent_row)
            await self.consent.on_recorded(session, dossier, consent_row, now)
            await self._transition(session, dossier, target, f"consent {consent.outcome}", now)
            if receiver_oin is not None:
                await update_dossier(session, dossier, partner_oin=receiver_oin)
                await self._send_offer(session, dossier, now, consent=consent_row)
            view = await self._view(session, dossier_id)
        self.wake()
        return view

    async def send_offer(self, dossier_id: str) -> None:
        """Send the offer of a dossier in ``consent-given`` (refused without a consent record)."""
        now = self._clock.now()
        async with self.database.transaction() as session:
            dossier = await self._locked_dossier(session, dossier_id, "departing")
            await self._send_offer(session, dossier, now)
        self.wake()

    async def _send_offer(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        now: datetime,
        *,
        consent: ConsentRow | None = None,
    ) -> None:
        check_transition("departing", dossier.state, "offer-sent")
        if consent is None:  # the consent just recorded in this transaction needs no read back
            consent = await session.scalar(
                select(ConsentRow)
                .where(ConsentRow.dossier_id == dossier.id, ConsentRow.outcome == "given")
                .order_by(ConsentRow.recorded_at.desc())
                .limit(1)
            )
        client = await load_client(session, dossier.client_bsn or "")
        if client is None:
            raise ProvisionUnknown("the client is no longer in the register")
        if dossier.partner_oin is None or dossier.new_address is None or dossier.move_date is None:
            raise IllegalTransition("the dossier has no receiving gemeente or move yet")
        offer = build_offer(
            client=client,
            consent=consent,
            new_address=dossier.new_address,
            move_date=dossier.move_date,
            departing_gemeentecode=self.settings.gemeentecode or "",
        )
        await self._enqueue_message(
            session, dossier, offer, message_type="dossier-offer", roles=_DEPARTING, now=now
        )
        await self.consent.log.record(
            session,
            activity_id="dossier-offer-sent",
            operation="send",
            bsn=client.bsn,
            now=now,
            dossier_id=dossier.id,
        )
        await self._transition(session, dossier, "offer-sent", "dossier-offer queued", now)

    async def _receiving_oin(self, gemeentecode: str | None) -> str:
        try:
            entry = await self._directory.gemeente(gemeentecode or "", message_type="dossier-offer")
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise ReceiverNotConnected(exc.detail) from exc
        except RegistryError as exc:
            raise DirectoryUnavailable(exc.detail) from exc
        if entry.oin is None:
            raise ReceiverNotConnected(f"gemeente {gemeentecode} has not enrolled")
        return entry.oin

    # --- inbound -----------------------------------------------------------------------------

    async def receive_message(self, body: bytes, headers: Iterable[tuple[str, str]]) -> SignedBody:
        """Verify, store and apply one inbound message; return the signed receipt to answer."""
        header_list = list(headers)
        unverified = read_signed_message(body, header_list, policy=self._verification)
        keys = await self._sender_keys(unverified.sender_oin)
        now = self._clock.now()
        message = verify_message(unverified, keys, policy=self._verification, now=now)
        digest = body_digest(body)
        signature = next(v for k, v in header_list if k.lower() == _SIGNATURE_HEADER)
        trace = parse_traceparent(
            next((v for k, v in header_list if k.lower() == "traceparent"), None)
        )
        await self.orders.prepare(message)  # registry lookups before the transaction
        try:
            with inbound_trace(trace):
                receipt = await self._store_and_apply(message, body, signature, digest, now)
        except IntegrityError:
            # The same message arrived twice at once: the other request stored it first.
            stored = await self._stored_receipt(str(message.message_id), digest)
            if stored is None:
                raise
            receipt = stored
        return sign_body(receipt, self._jwk, signing_time=now)

    async def _sender_keys(self, oin: str) -> tuple[VerificationKey, ...]:
        try:
            return await self._directory.verification_keys(oin)
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise SenderUnknown("the sender is not a registered participant") from exc
        except RegistryError as exc:
            raise DirectoryUnavailable(exc.detail) from exc

    async def _store_and_apply(
        self, message: Message, body: bytes, signature: str, digest: str, now: datetime
    ) -> bytes:
        async with self.database.transaction() as session:
            stored = (await execute(session, _STORED, {"id": str(message.message_id)})).first()
            if stored is not None:
                return _same_or_conflict(stored, digest)
            receipt = self._receipt(message, digest, now)
            await add_rows(
                session,
                InboundMessageRow,
                {
                    "message_id": str(message.message_id),
                    "dossier_id": str(message.dossier_id),
                    "sender_oin": message.sender.oin,
                    "message_type": message.message_type,
                    "body": body,
                    "signature": signature,
                    "digest": digest,
                    "received_at": now,
                    "receipt_body": receipt,
                },
            )
            await self._apply(session, message, now)
        self.metrics.message_received(message.message_type)
        log_event(
            _log,
            "message_received",
            message_id=str(message.message_id),
            dossier_id=str(message.dossier_id),
            message_type=message.message_type,
        )
        self.wake()
        return receipt

    async def _stored_receipt(self, message_id: str, digest: str) -> bytes | None:
        stored = (await self.database.read(_STORED, {"id": message_id})).first()
        return None if stored is None else _same_or_conflict(stored, digest)

    def _receipt(self, message: Message, digest: str, now: datetime) -> bytes:
        receipt = Message.model_validate(
            {
                "messageId": uuid.uuid4(),
                "dossierId": message.dossier_id,
                "messageType": "receipt",
                "sender": {"oin": self.settings.oin, "role": message.receiver.role},
                "receiver": {"oin": message.sender.oin, "role": message.sender.role},
                "createdAt": now,
                "inReplyTo": message.message_id,
                "body": Receipt.model_validate(
                    {
                        "receivedMessageId": message.message_id,
                        "bodyDigest": digest,
                        "receivedAt": now,
                    }
                ),
            }
        )
        return canonicalize(message_to_json(receipt))

    async def _apply(self, session: AsyncSession, message: Message, now: datetime) -> None:
        body = message.body
        if self.settings.role == "supplier" and isinstance(
            body, ConsentWithdrawn | DossierCancelled
        ):
            await self.supplier.apply(session, message, now)  # issue 7: the supplier stops
        elif isinstance(body, DossierOffer):
            await self._on_offer(session, message, body, now)
        elif isinstance(body, DeviceDecision):
            await self._on_decision(session, message, body, now)
        elif isinstance(body, ConsentWithdrawn):
            await self.consent.on_withdrawn(session, message, body, now)
            await self.orders.stop_orders(
                session, str(message.dossier_id), "withdrawn", now, erase=True
            )
        elif isinstance(body, DossierRequest):
            await on_dossier_request(self, session, message, body, now)
        elif isinstance(body, SupplierStatus):
            await self.orders.on_status(session, message, body, now)
        elif message.message_type in _SUPPLIER_MESSAGES:
            await self.supplier.apply(session, message, now)
        elif isinstance(body, DossierCancelled):
            dossier = await self._partner_dossier(session, message)
            cause = f"dossier-cancelled {message.message_id} received"
            if dossier.state == "completed":
                await self.orders.cancelled_after_completion(session, dossier, body, now)
            else:
                await self._transition(session, dossier, "cancelled", cause, now)
            await self.orders.forward_cancellation(session, dossier, body, now)
        else:
            raise MessageNotHandled(f"{message.message_type} is not handled by this agent yet")

    async def _on_offer(
        self, session: AsyncSession, message: Message, offer: DossierOffer, now: datetime
    ) -> None:
        if self.settings.role != "gemeente":
            raise MessageNotHandled("only a gemeente agent receives dossier offers")
        if offer.client.new_address.gemeentecode != self.settings.gemeentecode:
            raise MessageNotHandled("the new address is not in this gemeente")
        dossier_id = str(message.dossier_id)
        if (await execute(session, _DOSSIER_EXISTS, {"id": dossier_id})).first() is not None:
            raise IllegalTransition("an offer for this dossier was received before")
        dossier = DossierRow(
            id=dossier_id,
            side="receiving",
            state=initial_state("receiving"),
            partner_oin=message.sender.oin,
            partner_gemeentecode=offer.departing_gemeentecode,
            client_bsn=offer.client.bsn,
            move_date=offer.client.move_date,
            created_at=now,
            updated_at=now,
        )
        await insert_persistent(session, dossier)
        cause = f"dossier-offer {message.message_id} received"
        await self._record(session, dossier, None, dossier.state, cause, now)
        await self.consent.log.record(
            session,
            activity_id="dossier-offer-received",
            operation="receive",
            bsn=offer.client.bsn,
            now=now,
            dossier_id=dossier_id,
        )
        decision, provisions = self._decide(dossier, offer)
        await add_rows(session, ProvisionRow, *provisions)
        decision, ordered = await self.orders.place_orders(
            session, dossier, message, offer, decision, now
        )
        await self._enqueue_message(
            session,
            dossier,
            decision,
            message_type="device-decision",
            roles=_RECEIVING,
            now=now,
            in_reply_to=str(message.message_id),
        )
        await self._transition(session, dossier, "decided", "decided by takeover policy", now)
        if ordered:
            await self._transition(session, dossier, "orders-placed", "takeover orders queued", now)

    def _decide(
        self, dossier: DossierRow, offer: DossierOffer
    ) -> tuple[DeviceDecision, list[dict[str, Any]]]:
        items = decide_devices(offer.devices, self.settings.device_exceptions)
        end = continued_provision_end(offer.indicatie)
        iso_codes = {device.device_id: device.iso_code for device in offer.devices}
        provisions = []
        for item in items:
            taken_over = item.outcome == "take-over"
            provisions.append(
                {
                    "dossier_id": dossier.id,
                    "device_id": item.device_id,
                    "iso_code": iso_codes[item.device_id],
                    "outcome": item.outcome,
                    "reason_code": item.reason_code,
                    "reason_text": item.reason_text,
                    "alternative": item.alternative_offered,
                    # Continued provision: from the move date, with the indicatie's own end.
                    "start_date": offer.client.move_date if taken_over else None,
                    "end_date": end if taken_over else None,
                }
            )
        decision = DeviceDecision.model_validate(
            {
                "decisions": [
                    i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in items
                ],
                "effectiveDate": offer.client.move_date.isoformat(),
                **({"provisionEndDate": end.isoformat()} if end is not None else {}),
            }
        )
        return decision, provisions

    async def _on_decision(
        self, session: AsyncSession, message: Message, decision: DeviceDecision, now: datetime
    ) -> None:
        dossier = await self._partner_dossier(session, message)
        if dossier.state != "offer-sent":
            # Issue 7: a later decision names another receiving supplier after a refusal.
            await self.orders.on_decision_update(session, dossier, message, now)
            return
        await self._transition(
            session, dossier, "decided", f"device-decision {message.message_id} received", now
        )
        client = await load_client(session, dossier.client_bsn or "")
        iso_codes = {d.device_id: d.iso_code for d in client.devices} if client else {}
        await add_rows(
            session,
            ProvisionRow,
            *(
                {
                    "dossier_id": dossier.id,
                    "device_id": item.device_id,
                    "iso_code": iso_codes.get(item.device_id, ""),
                    "outcome": item.outcome,
                    "reason_code": item.reason_code,
                    "reason_text": item.reason_text,
                    "alternative": item.alternative_offered,
                    # Departing side: our own provision ends on the effective (move) date.
                    "start_date": None,
                    "end_date": decision.effective_date,
                }
                for item in decision.decisions
            ),
        )
        if await self.orders.send_departure_notices(session, dossier, message, now):
            cause = "departure notices queued"
            await self._transition(session, dossier, "orders-placed", cause, now)
            return
        await self._transition(session, dossier, "completed", "decision received", now)

    async def _partner_dossier(self, session: AsyncSession, message: Message) -> DossierRow:
        dossier = await load_dossier(session, str(message.dossier_id))
        if dossier is None or dossier.partner_oin != message.sender.oin:
            raise DossierUnknown("no dossier with this id is shared with the sender")
        return dossier

    async def _on_delivered(
        self, session: AsyncSession, row: DeliveredMessage, now: datetime
    ) -> None:
        await self.orders.on_delivered(session, row, now)
        if row.kind != "message" or row.message_type != "device-decision":
            return
        dossier = await load_dossier(session, row.dossier_id)
        if dossier is not None and dossier.state == "decided":
            # Without takeover orders (orders-placed) the receipted decision completes it.
            await self._transition(session, dossier, "completed", "device-decision receipted", now)

    # --- state changes and messages ----------------------------------------------------------

    async def _transition(
        self, session: AsyncSession, dossier: DossierRow, target: str, cause: str, now: datetime
    ) -> None:
        check_transition(_side(dossier), dossier.state, target)
        previous = dossier.state
        await update_dossier(session, dossier, state=target, updated_at=now)
        await self._record(session, dossier, previous, target, cause, now)
        # Consent is the departing side's to count; the receiver records a withdrawal too.
        if _side(dossier) == "departing" and target in _CONSENT_OUTCOMES:
            self.metrics.consent_outcome(_CONSENT_OUTCOMES[target])
            if target == "consent-expired":
                self.metrics.deadline_breached("consent-answer")

    async def _record(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        previous: str | None,
        target: str,
        cause: str,
        now: datetime,
    ) -> None:
        await add_rows(
            session,
            TransitionRow,
            {
                "dossier_id": dossier.id,
                "from_state": previous,
                "to_state": target,
                "at": now,
                "cause": cause,
            },
        )
        log_event(
            _log,
            "dossier_state_changed",
            dossier_id=dossier.id,
            side=dossier.side,
            from_state=previous,
            to_state=target,
        )
        if self.settings.webhook_url is None:
            return
        event_id = uuid.uuid4()
        event = state_changed_event(
            event_id=event_id,
            oin=self.settings.oin,
            dossier_id=dossier.id,
            side=dossier.side,
            from_state=previous,
            to_state=target,
            cause=cause,
            at=now,
        )
        await enqueue(
            session,
            message_id=str(event_id),
            dossier_id=dossier.id,
            kind="event",
            message_type="nl.meeverhuizen.dossier.state-changed",
            body=event,
            now=now,
            policy=self._outbox_policy,
            destination_url=self.settings.webhook_url,
        )

    async def _enqueue_message(
        self,
        session: AsyncSession,
        dossier: DossierRow,
        body: MessageBody,
        *,
        message_type: str,
        roles: tuple[str, str],
        now: datetime,
        in_reply_to: str | None = None,
    ) -> None:
        message_id = uuid.uuid4()
        message = Message.model_validate(
            {
                "messageId": message_id,
                "dossierId": dossier.id,
                "messageType": message_type,
                "sender": {"oin": self.settings.oin, "role": roles[0]},
                "receiver": {"oin": dossier.partner_oin, "role": roles[1]},
                "createdAt": now,
                "inReplyTo": in_reply_to,
                "body": body,
            }
        )
        await enqueue(
            session,
            message_id=str(message_id),
            dossier_id=dossier.id,
            kind="message",
            message_type=message_type,
            body=canonicalize(message_to_json(message)),
            now=now,
            policy=self._outbox_policy,
            destination_oin=dossier.partner_oin,
        )

    # --- reading -----------------------------------------------------------------------------

    async def _partner_gemeentecode(self, dossier_id: str, side: Side) -> str | None:
        found = (await self.database.read(_PARTNER_GEMEENTE, {"id": dossier_id})).first()
        if found is None or found.side != side:
            raise DossierUnknown(f"no {side} dossier {dossier_id}")
        gemeentecode: str | None = found.partner_gemeentecode
        return gemeentecode

    async def _locked_dossier(
        self, session: AsyncSession, dossier_id: str, side: Side
    ) -> DossierRow:
        # Replicas (issue 8): FOR UPDATE serialises changes to one dossier (no-op on SQLite).
        dossier = await load_dossier(session, dossier_id, lock=True)
        if dossier is None or dossier.side != side:
            raise DossierUnknown(f"no {side} dossier {dossier_id}")
        return dossier

    async def list_dossiers(self, state: str | None = None) -> list[DossierSummary]:
        """Dossiers, optionally only those in ``state``, newest first."""
        query = select(DossierRow).order_by(DossierRow.created_at.desc(), DossierRow.id)
        if state is not None:
            query = query.where(DossierRow.state == state)
        async with self.database.reading() as session:
            rows = (await session.scalars(query)).all()
        return [DossierSummary.model_validate(_summary(row)) for row in rows]

    async def dossier(self, dossier_id: str) -> DossierView:
        """One dossier with its timeline and decisions."""
        async with self.database.reading() as session:
            return await self._view(session, dossier_id)

    async def _view(self, session: AsyncSession, dossier_id: str) -> DossierView:
        await session.flush()  # inside a transaction: as it will be committed
        parameters = {"id": dossier_id}
        row = (await execute(session, SELECT_DOSSIER, parameters)).first()
        if row is None:
            raise DossierUnknown(f"no dossier {dossier_id}")
        transitions = (await execute(session, _TIMELINE, parameters)).all()
        decisions = (await execute(session, _DECISIONS, parameters)).all()
        return DossierView.model_validate(
            {
                **_summary(row),
                "timeline": [_transition_view(t) for t in transitions],
                "decisions": [_decision_view(d) for d in decisions],
            }
        )


# Prebuilt Core statements of the handover path (agent._db.execute).
_DOSSIERS = DossierRow.__table__.c
_DOSSIER_EXISTS = prepared(select(_DOSSIERS.id).where(_DOSSIERS.id == bindparam("id")))
_PARTNER_GEMEENTE = prepared(
    select(_DOSSIERS.side, _DOSSIERS.partner_gemeentecode).where(_DOSSIERS.id == bindparam("id"))
)
_TIMELINE = prepared(
    select(TransitionRow.__table__)
    .where(TransitionRow.dossier_id == bindparam("id"))
    .order_by(TransitionRow.id)
)
_DECISIONS = prepared(
    select(ProvisionRow.__table__)
    .where(ProvisionRow.dossier_id == bindparam("id"))
    .order_by(ProvisionRow.id)
)
_STORED = prepared(
    select(InboundMessageRow.digest, InboundMessageRow.receipt_body).where(
        InboundMessageRow.message_id == bindparam("id")
    )
)

_DEPARTING = ("departing-gemeente", "receiving-gemeente")
_SUPPLIER_MESSAGES = frozenset(
    {
        "takeover-order",
        "departure-notice",
        "settlement-offer",
        "settlement-accept",
        "settlement-dispute",
    }
)
_RECEIVING = ("receiving-gemeente", "departing-gemeente")


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _side(dossier: DossierRow) -> Side:
    return "departing" if dossier.side == "departing" else "receiving"


def _same_or_conflict(stored: Row[Any], digest: str) -> bytes:
    if stored.digest != digest:
        raise MessageConflict("this message id was received before with other content")
    receipt: bytes = stored.receipt_body
    return receipt


def _consent_row(dossier_id: str, consent: ConsentInput, now: datetime) -> ConsentRow:
    return ConsentRow(
        consent_id=str(uuid.uuid4()),
        dossier_id=dossier_id,
        outcome=consent.outcome,
        data_kinds=list(consent.data_kinds),
        device_ids=list(consent.device_ids),
        channel=consent.channel,
        granted_by=consent.given_by,
        granted_at=consent.given_at,
        recorded_at=now,
        representative_name=consent.representative_name,
        representative_relation=consent.representative_relation,
        recorded_by=consent.recorded_by,
    )


def _summary(row: DossierRow | Row[Any]) -> dict[str, Any]:
    return {
        "dossier_id": row.id,
        "side": row.side,
        "state": row.state,
        "partner_oin": row.partner_oin,
        "partner_gemeentecode": row.partner_gemeentecode,
        "move_date": row.move_date,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _transition_view(row: Row[Any]) -> TransitionView:
    return TransitionView(
        from_state=row.from_state, to_state=row.to_state, at=row.at, cause=row.cause
    )


def _decision_view(row: Row[Any]) -> DecisionView:
    return DecisionView(
        device_id=row.device_id,
        iso_code=row.iso_code,
        outcome=row.outcome,
        reason_code=row.reason_code,
        reason_text=row.reason_text,
        alternative=row.alternative,
        start_date=row.start_date,
        end_date=row.end_date,
    )
