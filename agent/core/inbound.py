"""Inbound protocol messages: verified, stored once with their exact bytes, applied, receipted.

docs/protocol.md, section 7: the signature and the sender's key are checked before anything is
stored; a message id seen before is answered with the same receipt (or refused when its content
differs); the message is applied by the handler registered for its type, in the same transaction
that stores it, so a crash neither loses nor repeats it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.delivery.outbox import body_digest
from agent.errors import (
    IdentifierReused,
    MessageConflict,
    MessageNotHandled,
    SenderNotPermitted,
    SenderUnknown,
    registry_failure,
)
from agent.storage.tables import InboundMessageRow
from protocol import canonicalize
from protocol.logs import log_event
from protocol.messages import Message, Receipt, message_to_json
from protocol.roles import receiver_gemeentecodes, sender_gemeentecodes
from protocol.signing import (
    SIGNATURE_HEADER,
    SignedBody,
    VerificationKey,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["Inbound", "receipt_body"]

_SIGNATURE_HEADER = SIGNATURE_HEADER.lower()
_log = logging.getLogger("meeverhuizen.agent")


class Inbound:
    """Receives one signed message at a time and answers with a signed receipt."""

    def __init__(
        self,
        agent: AgentContext,
        *,
        verification: VerificationPolicy,
        committed: Callable[[], None],
    ) -> None:
        self._agent = agent
        self._verification = verification
        self._committed = committed
        self._jwk = agent.settings.private_jwk()

    async def receive(self, body: bytes, headers: Iterable[tuple[str, str]]) -> SignedBody:
        """Verify, store and apply one inbound message; return the signed receipt to answer."""
        header_list = list(headers)
        unverified = read_signed_message(body, header_list, policy=self._verification)
        keys = await self._sender_keys(unverified.sender_oin, unverified.kid)
        now = self._agent.clock.now()
        message = verify_message(unverified, keys, policy=self._verification, now=now)
        await self._check_sender(message)
        await self._check_served(message)
        digest = body_digest(body)
        signature = next(v for k, v in header_list if k.lower() == _SIGNATURE_HEADER)
        for prepare in self._agent.hooks.preparations:  # registry look-ups before the transaction
            await prepare(message)
        try:
            receipt = await self._store_and_apply(message, body, signature, digest, now)
        except IntegrityError as exc:
            # The same message arrived twice at once: the other request stored it first.
            stored = await self._stored_receipt(str(message.message_id), digest)
            if stored is None:
                raise _conflicting(message) from exc
            receipt = stored
        return sign_body(receipt, self._jwk, signing_time=now)

    async def _sender_keys(self, oin: str, kid: str) -> tuple[VerificationKey, ...]:
        """The sender's whole key history; verification picks the key valid at ``sigT``.

        A kid the cached history does not know is asked of the registry again (a key added
        since), so a new key works at once and a revocation is seen within a minute.
        """
        directory = self._agent.directory
        try:
            keys = await directory.key_history(oin)
            if all(key.kid != kid for key in keys):
                keys = await directory.key_history(oin, refresh=True)
            return keys
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise SenderUnknown("the sender is not a registered participant") from exc
        except RegistryError as exc:
            raise registry_failure(exc) from exc

    async def _check_sender(self, message: Message) -> None:
        """The sender acts only in the roles and gemeenten the registry gives its OIN.

        docs/protocol.md section 7, check 17. Whether a message concerns a dossier or order the
        receiver shares with this sender is checked by the handler of its type.
        """
        try:
            entry = await self._agent.directory.participant(message.sender.oin)
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise SenderUnknown("the sender is not a registered participant") from exc
        except RegistryError as exc:
            raise registry_failure(exc) from exc
        if message.sender.role not in entry.roles:
            raise SenderNotPermitted(
                f"the registry does not give the sender the role {message.sender.role}"
            )
        outside = sorted(sender_gemeentecodes(message) - set(entry.gemeentecodes))
        if outside:
            raise SenderNotPermitted(
                f"the sender does not serve gemeente {', '.join(outside)} (registry)"
            )

    async def _check_served(self, message: Message) -> None:
        """The message is about a gemeente this agent serves: its own, or one of its region.

        docs/protocol.md section 2: a regional service receives for every gemeentecode the
        registry lists for its OIN; the configured gemeentecode needs no registry look-up.
        """
        named = receiver_gemeentecodes(message) - {self._agent.settings.gemeentecode}
        if not named:
            return
        outside = sorted(named - await self._agent.served_gemeentecodes())
        if outside:  # a gemeente assigned since the cached answer: asked again at once
            outside = sorted(named - await self._agent.served_gemeentecodes(refresh=True))
        if outside:
            raise MessageNotHandled(f"this agent does not serve gemeente {', '.join(outside)}")

    async def _store_and_apply(
        self, message: Message, body: bytes, signature: str, digest: str, now: datetime
    ) -> bytes:
        async def store(session: AsyncSession) -> tuple[bytes, bool]:
            """The receipt, and whether the message is new (else the stored copy's receipt)."""
            stored = await session.get(InboundMessageRow, str(message.message_id))
            if stored is not None:
                return _same_or_conflict(stored, digest), False
            receipt = self._receipt(message, digest, now)
            session.add(
                InboundMessageRow(
                    message_id=str(message.message_id),
                    dossier_id=str(message.dossier_id),
                    sender_oin=message.sender.oin,
                    message_type=message.message_type,
                    body=body,
                    signature=signature,
                    digest=digest,
                    received_at=now,
                    receipt_body=receipt,
                )
            )
            await session.flush()  # a concurrent copy of this message fails here, not later
            await self._agent.hooks.apply(session, message, now)
            return receipt, True

        # A handler that met a concurrent change (a deadline firing on the same rows) runs again.
        receipt, new = await self._agent.database.retrying(store)
        if not new:
            return receipt
        self._agent.metrics.message_received(message.message_type)
        log_event(
            _log,
            "message_received",
            message_id=str(message.message_id),
            dossier_id=str(message.dossier_id),
            message_type=message.message_type,
        )
        self._committed()
        return receipt

    async def _stored_receipt(self, message_id: str, digest: str) -> bytes | None:
        async with self._agent.database.reading() as session:
            stored = await session.get(InboundMessageRow, message_id)
        return None if stored is None else _same_or_conflict(stored, digest)

    def _receipt(self, message: Message, digest: str, now: datetime) -> bytes:
        return receipt_body(message, own_oin=self._agent.settings.oin, digest=digest, now=now)


def receipt_body(message: Message, *, own_oin: str, digest: str, now: datetime) -> bytes:
    """The canonical receipt for ``message`` received with ``digest`` (docs/protocol.md 9)."""
    receipt = Message.model_validate(
        {
            "messageId": uuid.uuid4(),
            "dossierId": message.dossier_id,
            "messageType": "receipt",
            "sender": {"oin": own_oin, "role": message.receiver.role},
            "receiver": {"oin": message.sender.oin, "role": message.sender.role},
            "createdAt": now,
            "inReplyTo": message.message_id,
            "body": Receipt.model_validate(
                {"receivedMessageId": message.message_id, "bodyDigest": digest, "receivedAt": now}
            ),
        }
    )
    return canonicalize(message_to_json(receipt))


def _same_or_conflict(stored: InboundMessageRow, digest: str) -> bytes:
    if stored.digest != digest:
        raise MessageConflict("this message id was received before with other content")
    receipt: bytes = stored.receipt_body
    return receipt


def _conflicting(message: Message) -> IdentifierReused:
    """A new message whose content clashes with what is stored (an id of another message reused).

    Nothing of it was applied; the sender's outbox holds it as a dead letter with this detail.
    The database's own text is left out of the answer and the log: it may quote stored values.
    """
    log_event(
        _log,
        "message_conflict",
        level=logging.WARNING,
        message_id=str(message.message_id),
        dossier_id=str(message.dossier_id),
        message_type=message.message_type,
    )
    return IdentifierReused(
        f"this {message.message_type} names an id (of a settlement, order or device) that an "
        "earlier message used for something else; nothing of it was applied"
    )
