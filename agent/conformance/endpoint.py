"""The kit's own endpoint: receives what the target sends, verifies and receipts it, keeps it.

It answers ``POST /v1/messages`` exactly as docs/protocol.md sections 3, 7 and 9 prescribe for a
receiver: every check of section 7 in order with its problem type, the sender's roles from the
registry (check 17), deduplication on ``messageId`` (3.1) and a signed receipt (9). Every
arrival, accepted or refused, is kept so the cases can say what the target sent and why the kit
refused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response

from agent.core.inbound import receipt_body
from agent.delivery.outbox import body_digest
from agent.errors import (
    AgentError,
    MediaTypeUnsupported,
    MessageConflict,
    SenderNotPermitted,
    SenderUnknown,
    registry_failure,
)
from protocol.clock import Clock
from protocol.errors import ProblemError, ProtocolError
from protocol.messages import Message
from protocol.roles import sender_gemeentecodes
from protocol.signing import (
    SignedBody,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)
from registry.client import RegistryClient
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError
from registry.server_kit.api_rules import BASE_PATH, create_api

__all__ = ["Arrival", "KitEndpoint", "serve_endpoint"]

_T = TypeVar("_T")
_VERSION = "1.0.0"
# A target still sending when the run ends must not hold the kit open.
_SHUTDOWN_SECONDS = 5


@dataclass(frozen=True)
class Arrival:
    """One request the target sent the kit: the verified message, or the problem it got."""

    message: Message | None
    document: dict[str, Any] | None
    problem: ProblemError | None

    @property
    def message_type(self) -> str | None:
        kind = (self.document or {}).get("messageType")
        return kind if isinstance(kind, str) else None

    def concerns(self, dossier_id: str) -> bool:
        return (self.document or {}).get("dossierId") == dossier_id

    def describe_refusal(self) -> str:
        problem = self.problem
        if problem is None:
            return "accepted"
        return f"{problem.status} {problem.type} ({problem.detail})"


@dataclass
class KitEndpoint:
    """Receives the target's messages as the kit's organisation and answers with receipts."""

    own_oin: str
    private_jwk: dict[str, Any]
    registry: RegistryClient
    clock: Clock
    # Further organisations the kit plays at the same endpoint (its supplier): OIN -> key.
    also: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    _receipts: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def _receiver(self, document: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The kit's organisation a message is addressed to; its gemeente when none of them."""
        receiver = (document or {}).get("receiver")
        oin = receiver.get("oin") if isinstance(receiver, dict) else None
        if isinstance(oin, str) and oin in self.also:
            return oin, self.also[oin]
        return self.own_oin, self.private_jwk

    async def receive(self, body: bytes, headers: Iterable[tuple[str, str]]) -> SignedBody:
        """Verify one message as section 7 prescribes; keep it; return the signed receipt."""
        document = _loose_document(body)
        try:
            signed = await self._receive(body, list(headers), *self._receiver(document))
        except ProblemError as exc:
            self._record(Arrival(None, document, exc))
            raise
        return signed

    async def _receive(
        self,
        body: bytes,
        headers: list[tuple[str, str]],
        own_oin: str,
        private_jwk: dict[str, Any],
    ) -> SignedBody:
        policy = VerificationPolicy(receiver_oin=own_oin)
        unverified = read_signed_message(body, headers, policy=policy)  # checks 1-10
        keys = await self._lookup(lambda: self.registry.key_history(unverified.sender_oin))
        if all(key.kid != unverified.kid for key in keys):
            keys = await self._lookup(
                lambda: self.registry.key_history(unverified.sender_oin, refresh=True)
            )
        now = self.clock.now()
        message = verify_message(unverified, keys, policy=policy, now=now)  # checks 11-16
        entry = await self._lookup(lambda: self.registry.participant(message.sender.oin))
        if message.sender.role not in entry.roles:  # check 17
            raise SenderNotPermitted(
                f"the registry does not give the sender the role {message.sender.role}"
            )
        outside = sorted(sender_gemeentecodes(message) - set(entry.gemeentecodes))
        if outside:
            raise SenderNotPermitted(f"the sender does not serve gemeente {', '.join(outside)}")
        digest = body_digest(body)
        stored = self._receipts.get(str(message.message_id))
        if stored is not None and stored[0] != digest:  # check 18
            raise MessageConflict("this message id was received before with other content")
        if stored is None:
            receipt = receipt_body(message, own_oin=own_oin, digest=digest, now=now)
            self._receipts[str(message.message_id)] = (digest, receipt)
            self._record(Arrival(message, unverified.document, None))
        else:
            receipt = stored[1]  # a retry: the same receipt, no second arrival
        return sign_body(receipt, private_jwk, signing_time=now)

    async def _lookup(self, ask: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await ask()
        except (ParticipantUnknown, ParticipantNotEnrolled) as exc:
            raise SenderUnknown("the sender is not a registered participant") from exc
        except RegistryError as exc:
            raise registry_failure(exc) from exc

    def _record(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
        self._arrived.set()

    async def wait_for(
        self, wanted: Callable[[Arrival], bool], *, seconds: float, seen: int = 0
    ) -> Arrival | None:
        """The first arrival from index ``seen`` on that ``wanted`` accepts, within ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            found = next((a for a in self.arrivals[seen:] if wanted(a)), None)
            remaining = deadline - loop.time()
            if found is not None or remaining <= 0:
                return found
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=remaining)

    def app(self) -> FastAPI:
        """The endpoint as an ASGI application (NL GOV API Design Rules, problem+json)."""
        api = create_api(
            title="Meeverhuizen conformance kit",
            version=_VERSION,
            description="Receives the messages of the agent under test and receipts them.",
            error_types=[AgentError, ProtocolError],
        )
        api.state.endpoint = self

        @api.post(f"{BASE_PATH}/messages", response_class=Response)
        async def receive_message(request: Request) -> Response:
            """Receive one signed protocol message; the answer is a signed receipt."""
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                raise MediaTypeUnsupported("send the signed message as application/json")
            signed = await self.receive(await request.body(), request.headers.items())
            return Response(content=signed.body, status_code=200, headers=signed.headers())

        return api


def _loose_document(body: bytes) -> dict[str, Any] | None:
    # Only to tell which message a refused arrival was (type, dossier); never trusted.
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@contextlib.asynccontextmanager
async def serve_endpoint(app: FastAPI, *, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn in this event loop on ``host:port`` while the block runs."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            with contextlib.suppress(BaseException):
                task.result()  # uvicorn exits when it cannot listen
            raise ValueError(f"the kit cannot listen on {host}:{port}")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task
