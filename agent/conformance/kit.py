"""The kit's side of a conversation: its identity in the registry, messages, sending, receipts."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from agent.conformance.endpoint import KitEndpoint
from protocol import canonicalize
from protocol.clock import Clock, SystemClock
from protocol.identifiers import oin_for_kvk
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES, Receipt
from protocol.signing import (
    SIGNATURE_HEADER,
    SignedBody,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_message,
)
from registry.client import Participant, RegistryClient
from registry.errors import ParticipantExists
from registry.operator import OperatorClient

__all__ = [
    "AgentPlanner",
    "Answer",
    "CaseFailed",
    "Desk",
    "Kit",
    "KitIdentity",
    "KitSupplier",
    "OperatorPlanner",
    "Planner",
    "canonical",
    "enrol_kit",
]

_EXAMPLES = Path(__file__).parent
# The kit plays Amsterdam towards a target that is another gemeente, Utrecht towards Amsterdam.
_GEMEENTEN = (("0363", "00000001002564440000"), ("0344", "00000001002220647000"))
# The kit's supplier: another KvK number when the target is this supplier itself.
_SUPPLIER_KVK_NUMBERS = ("87654321", "76543210")
_SUPPLIER_NAME = "Conformancekit Hulpmiddelen B.V."


class CaseFailed(AssertionError):
    """A case's expectation was not met; the message says what was expected and what came."""


@dataclass(frozen=True)
class Answer:
    """The target's answer to one request."""

    status: int
    headers: httpx.Headers
    body: bytes

    def problem_type(self) -> str | None:
        try:
            document = json.loads(self.body)
        except ValueError:
            return None
        kind = document.get("type") if isinstance(document, dict) else None
        return kind if isinstance(kind, str) else None

    def describe(self) -> str:
        kind = self.problem_type()
        return f"{self.status} {kind}" if kind else f"{self.status} ({len(self.body)} bytes)"


@dataclass(frozen=True)
class KitSupplier:
    """The supplier the kit plays besides its gemeente: the target's counterpart in settlement,
    and the supplier of the devices a gemeente target tells of an exception."""

    oin: str
    name: str
    key: dict[str, Any]


@dataclass(frozen=True)
class KitIdentity:
    """Who the kit is in the registry: a gemeente with a valid key and a not-yet-valid one, and
    a supplier with a key of its own."""

    oin: str
    gemeentecode: str
    key: dict[str, Any]
    future_key: dict[str, Any]
    supplier: KitSupplier


async def enrol_kit(
    registry: RegistryClient,
    operator: OperatorClient,
    *,
    target: Participant,
    endpoint: str,
    clock: Clock,
) -> KitIdentity:
    """Enrol the kit as a gemeente other than the target, with a fresh key pair each run."""
    gemeentecode, oin = next(g for g in _GEMEENTEN if g[0] != target.gemeentecode)
    key, future_key = generate_private_jwk("EdDSA"), generate_private_jwk("EdDSA")
    later = clock.now() + timedelta(days=1)
    code = await operator.issue_enrolment_code(gemeentecode=gemeentecode)
    await registry.enrol(
        code=code,
        oin=oin,
        endpoint=endpoint,
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[
            public_jwk(key),
            {"jwk": public_jwk(future_key), "notBefore": later.strftime("%Y-%m-%dT%H:%M:%SZ")},
        ],
    )
    supplier = await _enrol_supplier(registry, operator, target=target, endpoint=endpoint)
    return KitIdentity(oin, gemeentecode, key, future_key, supplier)


async def _enrol_supplier(
    registry: RegistryClient, operator: OperatorClient, *, target: Participant, endpoint: str
) -> KitSupplier:
    """Enrol the kit's supplier (onboarded once per registry) at the kit's own endpoint."""
    kvk_number = next(k for k in _SUPPLIER_KVK_NUMBERS if oin_for_kvk(k) != target.oin)
    oin, key = oin_for_kvk(kvk_number), generate_private_jwk("EdDSA")
    # An earlier run may have onboarded it; a new enrolment replaces its key and endpoint.
    with contextlib.suppress(ParticipantExists):
        await operator.onboard_supplier(oin=oin, kvk_number=kvk_number, name=_SUPPLIER_NAME)
    code = await operator.issue_enrolment_code(supplier_oin=oin)
    await registry.enrol(
        code=code,
        oin=oin,
        endpoint=endpoint,
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(key)],
    )
    return KitSupplier(oin, _SUPPLIER_NAME, key)


class Planner(Protocol):
    """Whoever records the target supplier's progress on an order: a person, or its API."""

    async def record(self, order_id: str, status: str, *, seconds: float) -> None: ...


class Desk(Protocol):
    """Whoever acts at a gemeente target where the protocol waits for a person or its BRP.

    Each step is done, or asked of the target's operator, before the kit waits ``seconds``.
    """

    async def add_client(self, client: Mapping[str, Any], *, seconds: float) -> None:
        """Put ``client`` (the register's JSON import form) in the target's register."""
        ...

    async def give_consent(
        self, *, bsn: str, asked_by: str, device_ids: list[str], seconds: float
    ) -> None:
        """Record the client's consent in the dossier the gemeente ``asked_by`` asked for."""
        ...

    async def deliver_alternative(
        self, *, dossier_id: str, device_id: str, delivered_on: date, seconds: float
    ) -> None:
        """Record that the alternative for an excepted device was delivered."""
        ...

    async def report_move_in(self, event: Mapping[str, Any], *, seconds: float) -> None:
        """Let the target's BRP report ``event`` (a CloudEvent ``nl.brp.verhuisd``)."""
        ...


@dataclass(frozen=True)
class OperatorPlanner:
    """Asks the operator to record the status in the target's planner by hand."""

    tell: Callable[[str], None]

    async def record(self, order_id: str, status: str, *, seconds: float) -> None:
        self.tell(
            f"record '{status}' for takeover order {order_id} in the planner of the agent "
            f"under test; the kit waits {seconds:.0f} s for its supplier-status"
        )


@dataclass(frozen=True)
class AgentPlanner:
    """The planner API of a Meeverhuizen agent: ``POST /v1/orders/{orderId}/status``."""

    http: httpx.AsyncClient
    base_url: str
    token: str

    async def record(self, order_id: str, status: str, *, seconds: float) -> None:
        response = await self.http.post(
            f"{self.base_url.rstrip('/')}/v1/orders/{order_id}/status",
            json={"status": status},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if response.status_code != 200:
            raise CaseFailed(
                f"the target's planner API refused status {status}: {response.status_code}"
            )


@dataclass
class Kit:
    """Sends messages to the target as the kit's gemeente and checks what comes back."""

    http: httpx.AsyncClient
    target_url: str
    target: Participant
    identity: KitIdentity
    registry: RegistryClient
    clock: Clock = field(default_factory=SystemClock)
    # Where the target's own messages arrive, and how long a case waits for one.
    endpoint: KitEndpoint | None = None
    answer_seconds: float = 60.0
    planner: Planner | None = None
    # What a person at the target does for a gemeente case (register, consent, deliveries).
    desk: Desk | None = None
    # Where the kit tells the operator what to configure or do at the target.
    tell: Callable[[str], None] = print
    # The registry's operator, for the contract a case needs (its supplier's, for an order).
    operator: OperatorClient | None = None

    def message(self, **changes: Any) -> dict[str, Any]:
        """A valid message from the kit to the target, with new ids and times.

        To a gemeente the kit sends a dossier-offer as the departing gemeente; to a supplier a
        takeover-order as the receiving gemeente (the published examples, docs/examples).
        """
        supplier = self.target.kind == "supplier"
        example = _EXAMPLES / ("takeover-order.json" if supplier else "dossier-offer.json")
        message: dict[str, Any] = copy.deepcopy(json.loads(example.read_text(encoding="utf-8")))
        now = self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        roles = ("receiving-gemeente", "receiving-supplier")
        if not supplier:
            roles = ("departing-gemeente", "receiving-gemeente")
        message.update(
            messageId=str(uuid.uuid4()),
            dossierId=str(uuid.uuid4()),
            createdAt=now,
            sender={"oin": self.identity.oin, "role": roles[0]},
            receiver={"oin": self.target.oin, "role": roles[1]},
        )
        body = message["body"]
        if supplier:
            body["orderId"] = str(uuid.uuid4())
            body["address"]["gemeentecode"] = self.identity.gemeentecode
        else:
            body["departingGemeentecode"] = self.identity.gemeentecode
            body["client"]["newAddress"]["gemeentecode"] = self.target.gemeentecode
            body["consent"]["consentId"] = str(uuid.uuid4())
            body["consent"]["grantedAt"] = now
        message.update(changes)
        return message

    def follow_up(self, first: Mapping[str, Any], message_type: str, body: Any) -> dict[str, Any]:
        """Another message in the conversation ``first`` began: same dossier and parties."""
        now = self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        keep = ("dossierId", "protocolVersion", "sender", "receiver")
        message = {name: copy.deepcopy(first[name]) for name in keep}
        message.update(
            messageId=str(uuid.uuid4()), messageType=message_type, createdAt=now, body=body
        )
        return message

    def envelope(
        self,
        message_type: str,
        body: Any,
        *,
        dossier_id: str,
        sender: tuple[str, str],
        receiver_role: str,
        in_reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A new message from the kit (``sender``: OIN and role) to the target."""
        now = self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message: dict[str, Any] = {
            "messageId": str(uuid.uuid4()),
            "dossierId": dossier_id,
            "messageType": message_type,
            "protocolVersion": "1.0",
            "sender": {"oin": sender[0], "role": sender[1]},
            "receiver": {"oin": self.target.oin, "role": receiver_role},
            "createdAt": now,
            "body": body,
        }
        if in_reply_to is not None:
            message["inReplyTo"] = in_reply_to
        return message

    def sign(
        self, body: bytes, *, key: Mapping[str, Any] | None = None, at: datetime | None = None
    ) -> SignedBody:
        return sign_body(body, key or self.identity.key, signing_time=at or self.clock.now())

    async def send(self, body: bytes, headers: list[tuple[str, str]]) -> Answer:
        """POST ``body`` with exactly ``headers`` to the target's ``/v1/messages``."""
        response = await self.http.post(
            self.target_url.rstrip("/") + "/v1/messages",
            content=body,
            headers=[("Content-Type", "application/json"), *headers],
        )
        return Answer(response.status_code, response.headers, response.content)

    async def send_signed(self, body: bytes, **options: Any) -> Answer:
        signed = self.sign(body, **options)
        return await self.send(
            body, [("Digest", signed.digest), (SIGNATURE_HEADER, signed.signature)]
        )

    async def check_receipt(
        self, answer: Answer, message_id: str, body: bytes, *, to: str | None = None
    ) -> Receipt:
        """The answer is 200 with a receipt signed by a target key, for this message and body.

        ``to`` is the kit's OIN that sent it (its gemeente unless said otherwise).
        """
        if answer.status != 200:
            raise CaseFailed(f"expected 200 with a receipt, got {answer.describe()}")
        if SIGNATURE_HEADER not in answer.headers:
            raise CaseFailed(f"the receipt has no {SIGNATURE_HEADER} header")
        policy = VerificationPolicy(receiver_oin=to or self.identity.oin)
        keys = await self.registry.verification_keys(self.target.oin or "")
        try:
            unverified = read_signed_message(
                answer.body, list(answer.headers.multi_items()), policy=policy
            )
            message = verify_message(unverified, keys, policy=policy, now=self.clock.now())
        except Exception as exc:  # every refusal of the receipt is a failure of the case
            raise CaseFailed(f"the receipt does not verify: {exc}") from exc
        if not isinstance(message.body, Receipt):
            raise CaseFailed(f"the answer is a {message.message_type}, not a receipt")
        if str(message.body.received_message_id) != message_id:
            raise CaseFailed("the receipt names another message id")
        expected = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if message.body.body_digest != expected:
            raise CaseFailed("the receipt's bodyDigest is not the digest of the bytes sent")
        return message.body


def canonical(message: dict[str, Any]) -> bytes:
    """The RFC 8785 form the protocol sends."""
    return canonicalize(message)
