"""What an agent sends, queued in the transaction of the change that causes it.

:class:`Outgoing` builds a protocol message from this agent (or a CloudEvent for the back office)
and adds it to the outbox inside the caller's transaction; the outbox signs and delivers it after
the commit. Every package queues its messages here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import Insert, Table, bindparam, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.tables import OutboxRow
from protocol import canonicalize
from protocol.messages import Message, MessageBody, message_to_json

__all__ = ["OutboxKind", "OutboxPolicy", "Outgoing", "enqueue"]

OutboxKind = Literal["message", "event"]


@dataclass(frozen=True)
class OutboxPolicy:
    """Retry rules of the outbox."""

    max_age: timedelta
    base_delay: timedelta
    max_delay: timedelta
    batch_size: int = 100
    # A replica's claim on the messages of one pass; after it another replica may take them over.
    claim_lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """Queues this agent's protocol messages and back-office events."""

    oin: str
    policy: OutboxPolicy
    # Back-office events go here; none are queued without one.
    webhook_url: str | None

    async def message(
        self,
        session: AsyncSession,
        dossier_id: str,
        body: MessageBody,
        now: datetime,
        *,
        to: str,
        roles: tuple[str, str],
        in_reply_to: str | None = None,
    ) -> str:
        """Queue ``body`` for the participant ``to`` (``roles``: sender's, receiver's); its id."""
        message_id = uuid.uuid4()
        message = Message.model_validate(
            {
                "messageId": message_id,
                "dossierId": dossier_id,
                "messageType": body.message_type,
                "sender": {"oin": self.oin, "role": roles[0]},
                "receiver": {"oin": to, "role": roles[1]},
                "createdAt": now,
                "inReplyTo": in_reply_to,
                "body": body,
            }
        )
        await enqueue(
            session,
            message_id=str(message_id),
            dossier_id=dossier_id,
            kind="message",
            message_type=body.message_type,
            body=canonicalize(message_to_json(message)),
            now=now,
            policy=self.policy,
            destination_oin=to,
        )
        return str(message_id)

    async def follow_up(
        self,
        session: AsyncSession,
        dossier_id: str,
        body: MessageBody,
        now: datetime,
        *,
        sender_role: str,
        receivers: Mapping[str, str],
    ) -> int:
        """Send ``body`` to each participant that got one of the dossier's earlier messages.

        ``receivers`` maps the earlier message types to the role their receiver has (a
        ``takeover-order`` went to a ``receiving-supplier``). Returns how many were told.
        """
        told = await session.execute(
            select(OutboxRow.destination_oin, OutboxRow.message_type)
            .where(
                OutboxRow.dossier_id == dossier_id,
                OutboxRow.kind == "message",
                OutboxRow.message_type.in_(list(receivers)),
            )
            .distinct()
        )
        roles = {
            oin: receivers[message_type]
            for oin, message_type in told
            if oin is not None and oin != self.oin
        }
        for oin, role in sorted(roles.items()):
            await self.message(session, dossier_id, body, now, to=oin, roles=(sender_role, role))
        return len(roles)

    async def event(
        self,
        session: AsyncSession,
        *,
        event_id: uuid.UUID,
        dossier_id: str,
        event_type: str,
        body: bytes,
        now: datetime,
    ) -> None:
        """Queue a CloudEvent for the back-office webhook; nothing when none is configured."""
        if self.webhook_url is None:
            return
        await enqueue(
            session,
            message_id=str(event_id),
            dossier_id=dossier_id,
            kind="event",
            message_type=event_type,
            body=body,
            now=now,
            policy=self.policy,
            destination_url=self.webhook_url,
        )


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
    await session.execute(
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
    # Core, on the table: an ORM-enabled INSERT does not take a SELECT.
    return insert(cast(Table, OutboxRow.__table__)).from_select(list(values), latest)


_ENQUEUE = _enqueue_statement()
