"""The cases the kit runs: the happy path, duplicates and retries, and protocol.md section 7.

Each case sends one or more messages to the target and raises :class:`CaseFailed` with a
readable reason when the answer is not the one ``docs/protocol.md`` prescribes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.conformance.kit import Answer, CaseFailed, Kit, canonical
from protocol import canonicalize
from protocol.jwk import generate_private_jwk
from protocol.signing import OBSOLETE_SIGNATURE_HEADER, SIGNATURE_HEADER

__all__ = ["CASES", "Case", "CaseResult", "expect_problem", "run_cases"]

_PROBLEM = "urn:meeverhuizen:problem:"


@dataclass(frozen=True)
class Case:
    """One check, named after what it proves, with the protocol section it follows."""

    name: str
    section: str
    run: Callable[[Kit], Awaitable[None]]


@dataclass(frozen=True)
class CaseResult:
    case: Case
    passed: bool
    reason: str
    seconds: float


def expect_problem(answer: Answer, status: int, code: str) -> None:
    expected = _PROBLEM + code
    if answer.status != status or answer.problem_type() != expected:
        raise CaseFailed(f"expected {status} {expected}, got {answer.describe()}")
    if "application/problem+json" not in answer.headers.get("content-type", ""):
        raise CaseFailed("the problem is not sent as application/problem+json")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _with_header(signature: str, **changes: Any) -> str:
    # A token whose protected header is changed: checked before any key, so not re-signed.
    encoded, _, rest = signature.partition(".")
    header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    header.update(changes)
    return f"{_b64(canonicalize(header))}.{rest}"


async def _happy_path(kit: Kit) -> None:
    message = kit.message()
    body = canonical(message)
    await kit.check_receipt(await kit.send_signed(body), message["messageId"], body)


async def _duplicate(kit: Kit) -> None:
    message = kit.message()
    body = canonical(message)
    first = await kit.send_signed(body)
    await kit.check_receipt(first, message["messageId"], body)
    # A retry: the same bytes with a new signature get the same receipt, without a second effect.
    again = await kit.send_signed(body, at=kit.clock.now() + timedelta(seconds=1))
    second = await kit.check_receipt(again, message["messageId"], body)
    if again.body != first.body:
        raise CaseFailed(f"a retry got another receipt body ({second.received_at})")


async def _conflict(kit: Kit) -> None:
    message = kit.message()
    body = canonical(message)
    await kit.check_receipt(await kit.send_signed(body), message["messageId"], body)
    # Another, valid body: a second earlier than the first (the clock may not have moved on).
    earlier = datetime.fromisoformat(message["createdAt"]) - timedelta(seconds=1)
    message["createdAt"] = earlier.strftime("%Y-%m-%dT%H:%M:%SZ")
    expect_problem(await kit.send_signed(canonical(message)), 409, "conflict")


def _headers_case(
    status: int, code: str, build: Callable[[Kit, bytes], list[tuple[str, str]]]
) -> Callable[[Kit], Awaitable[None]]:
    async def run(kit: Kit) -> None:
        body = canonical(kit.message())
        expect_problem(await kit.send(body, build(kit, body)), status, code)

    return run


def _signed(kit: Kit, body: bytes) -> list[tuple[str, str]]:
    signed = kit.sign(body)
    return [("Digest", signed.digest), (SIGNATURE_HEADER, signed.signature)]


def _body_case(
    status: int, code: str, change: Callable[[Kit], bytes]
) -> Callable[[Kit], Awaitable[None]]:
    async def run(kit: Kit) -> None:
        body = change(kit)
        expect_problem(await kit.send_signed(body), status, code)

    return run


def _flipped(signature: str) -> str:
    head, middle, tail = signature.split(".")
    flipped = ("A" if tail[0] != "A" else "B") + tail[1:]
    return f"{head}.{middle}.{flipped}"


def _too_large(kit: Kit) -> bytes:
    message = kit.message()
    message["body"]["urgencyReason"] = "x" * 1_100_000
    return canonical(message)


def _duplicate_key(kit: Kit) -> bytes:
    text = canonical(kit.message()).decode()
    return text.replace('{"body":', '{"protocolVersion":"1.0","body":', 1).encode()


async def _other_key(kit: Kit) -> None:
    body = canonical(kit.message())
    answer = await kit.send_signed(body, key=generate_private_jwk("EdDSA"))
    expect_problem(answer, 401, "key-unknown")


async def _future_key(kit: Kit) -> None:
    body = canonical(kit.message())
    expect_problem(await kit.send_signed(body, key=kit.identity.future_key), 401, "key-not-valid")


async def _old_signature(kit: Kit) -> None:
    body = canonical(kit.message())
    answer = await kit.send_signed(body, at=kit.clock.now() - timedelta(minutes=10))
    expect_problem(answer, 400, "clock-skew")


CASES: tuple[Case, ...] = (
    Case("happy path: a message gets a signed receipt for its bytes", "3, 9", _happy_path),
    Case("a retry with the same bytes gets the same receipt", "3.1", _duplicate),
    Case("same messageId with another body is a conflict", "3.1, 7 #17", _conflict),
    Case("a body over 1 MiB is refused", "7 #1", _body_case(413, "body-too-large", _too_large)),
    Case(
        "no signature header",
        "7 #2",
        _headers_case(401, "signature-missing", lambda kit, body: _signed(kit, body)[:1]),
    ),
    Case(
        "the signature only in the obsolete Payload-Signature header",
        "6, 7 #2",
        _headers_case(
            401,
            "obsolete-signature-header",
            lambda kit, body: [
                _signed(kit, body)[0],
                (OBSOLETE_SIGNATURE_HEADER, _signed(kit, body)[1][1]),
            ],
        ),
    ),
    Case(
        "the signature header twice",
        "7 #2",
        _headers_case(
            400,
            "signature-repeated",
            lambda kit, body: [*_signed(kit, body), _signed(kit, body)[1]],
        ),
    ),
    Case(
        "no Digest header",
        "7 #3",
        _headers_case(400, "digest-missing", lambda kit, body: _signed(kit, body)[1:]),
    ),
    Case(
        "a Digest that does not match the body",
        "7 #4",
        _headers_case(
            400,
            "digest-mismatch",
            lambda kit, body: [("Digest", kit.sign(body + b" ").digest), _signed(kit, body)[1]],
        ),
    ),
    Case(
        "a signature that is not a compact JWS",
        "7 #5",
        _headers_case(
            400,
            "malformed-signature",
            lambda kit, body: [_signed(kit, body)[0], (SIGNATURE_HEADER, "not-a-jws")],
        ),
    ),
    Case(
        "alg HS256",
        "7 #6",
        _headers_case(
            400,
            "algorithm-not-allowed",
            lambda kit, body: [
                _signed(kit, body)[0],
                (SIGNATURE_HEADER, _with_header(_signed(kit, body)[1][1], alg="HS256")),
            ],
        ),
    ),
    Case(
        "an unknown critical header parameter",
        "7 #7",
        _headers_case(
            400,
            "unknown-critical-header",
            lambda kit, body: [
                _signed(kit, body)[0],
                (
                    SIGNATURE_HEADER,
                    _with_header(_signed(kit, body)[1][1], crit=["b64", "sigD", "sigT", "x"], x=1),
                ),
            ],
        ),
    ),
    Case(
        "a protected header without the profile (b64 true)",
        "7 #8",
        _headers_case(
            400,
            "malformed-signature",
            lambda kit, body: [
                _signed(kit, body)[0],
                (SIGNATURE_HEADER, _with_header(_signed(kit, body)[1][1], b64=True)),
            ],
        ),
    ),
    Case(
        "a body that is not JSON",
        "7 #9",
        _body_case(400, "malformed-json", lambda kit: b"\xff{not json"),
    ),
    Case("a repeated JSON key", "7 #9", _body_case(400, "duplicate-json-key", _duplicate_key)),
    Case(
        "protocol version 2.0",
        "7 #10",
        _body_case(
            400, "unsupported-version", lambda kit: canonical(kit.message(protocolVersion="2.0"))
        ),
    ),
    Case(
        "a sender the registry does not know",
        "7 #11",
        _body_case(
            401,
            "sender-unknown",
            lambda kit: canonical(
                kit.message(sender={**kit.message()["sender"], "oin": "00000003999999990000"})
            ),
        ),
    ),
    Case("a key the sender never published", "7 #11", _other_key),
    Case("a key that is not valid yet at sigT", "7 #12", _future_key),
    Case(
        "a signature that does not verify",
        "7 #13",
        _headers_case(
            401,
            "bad-signature",
            lambda kit, body: [
                _signed(kit, body)[0],
                (SIGNATURE_HEADER, _flipped(_signed(kit, body)[1][1])),
            ],
        ),
    ),
    Case(
        "a message addressed to another organisation",
        "7 #14",
        _body_case(
            421,
            "receiver-mismatch",
            lambda kit: canonical(
                kit.message(receiver={**kit.message()["receiver"], "oin": kit.identity.oin})
            ),
        ),
    ),
    Case("a signing time 10 minutes old", "7 #15", _old_signature),
    Case(
        "a message that does not match its schema",
        "7 #16",
        _body_case(400, "invalid-message", lambda kit: canonical(kit.message(unknownField=1))),
    ),
)


async def run_cases(kit: Kit, cases: tuple[Case, ...] = CASES) -> list[CaseResult]:
    """Run every case in order; a failing case does not stop the others."""
    results = []
    for case in cases:
        began = time.perf_counter()
        try:
            await case.run(kit)
        except CaseFailed as exc:
            results.append(CaseResult(case, False, str(exc), time.perf_counter() - began))
            continue
        except Exception as exc:  # the target broke the conversation (network, bad answer)
            reason = f"{type(exc).__name__}: {exc}"
            results.append(CaseResult(case, False, reason, time.perf_counter() - began))
            continue
        results.append(CaseResult(case, True, "", time.perf_counter() - began))
    return results
