"""The edges of each signature check: every test here fails when one check is loosened.

Each group names the check of ``protocol.signing`` it pins (docs/protocol.md section 7): the
freshness and key validity of ``verify_body``, the size and clock-skew limits exactly at the
limit, a multi-value ``Digest`` and its strict base64, and the string-typed envelope fields.
Time checks run with the process in three time zones (the ``time_zone`` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from protocol import canonicalize, errors
from protocol.jws import sign_compact
from protocol.signing import (
    SIGNATURE_HEADER,
    SignedBody,
    VerificationKey,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_body,
    verify_message,
)
from protocol.strict_json import read_json
from tests.conftest import load_vector
from tests.protocol.test_signing import SIGNING_TIME

VECTOR = load_vector("message_signing.json")
RECEIVER = VECTOR["receiver_oin"]
POLICY = VerificationPolicy(receiver_oin=RECEIVER)
KEY = VECTOR["private_jwk"]
PUBLIC = VECTOR["public_jwk"]
KEYS = [VerificationKey(PUBLIC)]
SKEW = POLICY.clock_skew
SECOND = timedelta(seconds=1)

Verify = Callable[..., object]


def _via_verify_body(
    body: bytes,
    headers: list[tuple[str, str]],
    keys: list[VerificationKey],
    *,
    policy: VerificationPolicy,
    now: datetime | None,
) -> object:
    return verify_body(body, headers, keys, policy=policy, now=now)


def _via_verify_message(
    body: bytes,
    headers: list[tuple[str, str]],
    keys: list[VerificationKey],
    *,
    policy: VerificationPolicy,
    now: datetime | None,
) -> object:
    unverified = read_signed_message(body, headers, policy=policy)
    return verify_message(unverified, keys, policy=policy, now=now)


# Both ways in: verify_body (registry writes, any signed JSON) and read + verify_message.
VERIFIERS = pytest.mark.parametrize(
    "verify", [_via_verify_body, _via_verify_message], ids=["verify_body", "verify_message"]
)


def _signed(document: Any = None, *, signing_time: datetime = SIGNING_TIME) -> SignedBody:
    body = canonicalize(VECTOR["message"] if document is None else document)
    return sign_body(body, KEY, signing_time=signing_time)


def _pairs(signed: SignedBody) -> list[tuple[str, str]]:
    return list(signed.headers().items())


def _sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _with_digest_headers(body: bytes, *digests: str) -> list[tuple[str, str]]:
    """Digest header fields as given, and a signature over exactly their combined value."""
    combined = ", ".join(value.strip() for value in digests)  # fields combine as in RFC 9110
    header = json.loads(VECTOR["protected_header"])  # sigT is SIGNING_TIME
    token = sign_compact(f"digest: {combined}".encode(), KEY, protected=header, detached=True)
    return [*(("Digest", value) for value in digests), (SIGNATURE_HEADER, token)]


# --- freshness: sigT within the skew of now, the limit itself included ------------------------


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize("offset", [SKEW + SECOND, -(SKEW + SECOND), timedelta(days=2)])
def test_a_signature_outside_the_skew_is_refused(verify: Verify, offset: timedelta) -> None:
    signed = _signed()
    with pytest.raises(errors.ClockSkew):
        verify(signed.body, _pairs(signed), KEYS, policy=POLICY, now=SIGNING_TIME + offset)


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize("offset", [SKEW, -SKEW, timedelta(0)])
def test_a_signature_exactly_at_the_skew_is_accepted(verify: Verify, offset: timedelta) -> None:
    signed = _signed()
    assert verify(signed.body, _pairs(signed), KEYS, policy=POLICY, now=SIGNING_TIME + offset)


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
def test_without_now_an_archived_signature_is_not_judged_on_freshness(verify: Verify) -> None:
    signed = _signed()
    later = SIGNING_TIME + timedelta(days=400)
    assert verify(signed.body, _pairs(signed), KEYS, policy=POLICY, now=None)
    with pytest.raises(errors.ClockSkew):
        verify(signed.body, _pairs(signed), KEYS, policy=POLICY, now=later)


# --- key validity at sigT, not at the receiver's now --------------------------------------------


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize(
    "key",
    [
        VerificationKey(PUBLIC, not_before=SIGNING_TIME + SECOND),
        VerificationKey(PUBLIC, not_after=SIGNING_TIME),
        VerificationKey(PUBLIC, revoked_at=SIGNING_TIME),
    ],
    ids=["not-yet-valid", "expired", "revoked"],
)
@pytest.mark.parametrize("now", [SIGNING_TIME, None], ids=["fresh", "archived"])
def test_a_key_not_valid_at_the_signing_time_is_refused(
    verify: Verify, key: VerificationKey, now: datetime | None
) -> None:
    signed = _signed()
    with pytest.raises(errors.KeyNotValid):
        verify(signed.body, _pairs(signed), [key], policy=POLICY, now=now)


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
def test_a_key_expired_after_signing_still_verifies_that_signature(verify: Verify) -> None:
    key = VerificationKey(PUBLIC, not_after=SIGNING_TIME + SECOND)
    signed = _signed()
    now = SIGNING_TIME + timedelta(minutes=2)  # the key has expired by now, not at sigT
    assert verify(signed.body, _pairs(signed), [key], policy=POLICY, now=now)


@VERIFIERS
@pytest.mark.usefixtures("time_zone")
def test_a_key_valid_only_after_signing_does_not_verify_it(verify: Verify) -> None:
    key = VerificationKey(PUBLIC, not_before=SIGNING_TIME + timedelta(minutes=1))
    signed = _signed()
    now = SIGNING_TIME + timedelta(minutes=2)  # the key is valid now, not at sigT
    with pytest.raises(errors.KeyNotValid):
        verify(signed.body, _pairs(signed), [key], policy=POLICY, now=now)


@VERIFIERS
def test_of_two_registered_keys_with_the_kid_the_one_valid_at_sigt_is_used(
    verify: Verify,
) -> None:
    old = VerificationKey(PUBLIC, not_after=SIGNING_TIME)
    current = VerificationKey(PUBLIC, not_before=SIGNING_TIME)
    signed = _signed()
    assert verify(signed.body, _pairs(signed), [old, current], policy=POLICY, now=SIGNING_TIME)


# --- body size: the limit itself is allowed -----------------------------------------------------


@VERIFIERS
def test_a_body_of_exactly_the_limit_is_accepted_one_more_byte_is_not(verify: Verify) -> None:
    signed = _signed()
    size = len(signed.body)
    exact = VerificationPolicy(receiver_oin=RECEIVER, max_body_bytes=size)
    assert verify(signed.body, _pairs(signed), KEYS, policy=exact, now=SIGNING_TIME)
    smaller = VerificationPolicy(receiver_oin=RECEIVER, max_body_bytes=size - 1)
    with pytest.raises(errors.BodyTooLarge):
        verify(signed.body, _pairs(signed), KEYS, policy=smaller, now=SIGNING_TIME)


def test_read_json_takes_a_document_of_exactly_the_limit() -> None:
    data = b'{"a":[1,2,3]}'
    assert read_json(data, max_bytes=len(data)) == {"a": [1, 2, 3]}
    with pytest.raises(errors.BodyTooLarge):
        read_json(data, max_bytes=len(data) - 1)


# --- createdAt: at most the skew after sigT -----------------------------------------------------


@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize(("ahead", "accepted"), [(SKEW, True), (SKEW + SECOND, False)])
def test_created_at_exactly_the_skew_after_sigt_is_the_limit(
    ahead: timedelta, accepted: bool
) -> None:
    created = (SIGNING_TIME + ahead).strftime("%Y-%m-%dT%H:%M:%SZ")
    signed = _signed(VECTOR["message"] | {"createdAt": created})
    if accepted:
        assert _via_verify_message(signed.body, _pairs(signed), KEYS, policy=POLICY, now=None)
        assert _via_verify_message(
            signed.body, _pairs(signed), KEYS, policy=POLICY, now=SIGNING_TIME
        )
    else:
        with pytest.raises(errors.ClockSkew, match="createdAt"):
            _via_verify_message(signed.body, _pairs(signed), KEYS, policy=POLICY, now=SIGNING_TIME)


# --- Digest: a list of algorithm=value, in one or more fields (RFC 3230 section 4.3.2) ----------


BODY = canonicalize(VECTOR["message"])
OTHER_SHA512 = "SHA-512=" + "A" * 86 + "=="


@VERIFIERS
@pytest.mark.parametrize(
    "digests",
    [
        (f"SHA-256={_sha256(BODY)}",),
        (f"sha-256={_sha256(BODY)}",),
        (f"{OTHER_SHA512}, SHA-256={_sha256(BODY)}",),
        (f"SHA-256={_sha256(BODY)},{OTHER_SHA512}",),
        (f"  SHA-256={_sha256(BODY)} ,  {OTHER_SHA512}",),
        (OTHER_SHA512, f"SHA-256={_sha256(BODY)}"),
        (f"SHA-256={_sha256(BODY)}", f"SHA-256={_sha256(BODY)}"),
    ],
    ids=["one", "lower-case", "second-of-list", "first-no-space", "spaces", "two-fields", "twice"],
)
def test_the_sha256_value_is_found_in_a_digest_list(
    verify: Verify, digests: tuple[str, ...]
) -> None:
    headers = _with_digest_headers(BODY, *digests)
    assert verify(BODY, headers, KEYS, policy=POLICY, now=SIGNING_TIME)


@VERIFIERS
@pytest.mark.parametrize(
    "digests",
    [
        (f"SHA-256={_sha256(BODY)}, SHA-256={_sha256(b'another body')}",),
        (f"SHA-256={_sha256(b'another body')}", f"SHA-256={_sha256(BODY)}"),
        (f"SHA-256={_sha256(BODY)}", f"SHA-256={_sha256(b'another body')}"),
    ],
    ids=["in-one-field", "first-field", "second-field"],
)
def test_every_sha256_value_in_the_list_must_match(
    verify: Verify, digests: tuple[str, ...]
) -> None:
    headers = _with_digest_headers(BODY, *digests)
    with pytest.raises(errors.DigestMismatch):
        verify(BODY, headers, KEYS, policy=POLICY, now=SIGNING_TIME)


def _not_strict_base64(value: str) -> list[str]:
    # Each decodes to the right hash when invalid characters are skipped or padding is ignored.
    return [
        value[:10] + "!" + value[10:],
        value[:10] + " " + value[10:],
        value[:10] + "\n" + value[10:],
        value.rstrip("="),
        value + "==",
    ]


@VERIFIERS
@pytest.mark.parametrize("value", _not_strict_base64(_sha256(BODY)))
def test_a_digest_value_that_is_not_strict_base64_is_refused(verify: Verify, value: str) -> None:
    headers = _with_digest_headers(BODY, f"SHA-256={value}")
    with pytest.raises(errors.DigestMismatch):
        verify(BODY, headers, KEYS, policy=POLICY, now=SIGNING_TIME)


# --- the envelope fields that find the key are strings ------------------------------------------


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(VECTOR["message"]))
    target = document
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("messageId",), 1234567890),
        (("messageId",), ["d0f1b0b4"]),
        (("sender", "oin"), int(VECTOR["message"]["sender"]["oin"][8:])),
        (("sender", "oin"), {"oin": VECTOR["message"]["sender"]["oin"]}),
        (("sender", "oin"), ""),
    ],
    ids=["numeric-message-id", "list-message-id", "numeric-oin", "object-oin", "empty-oin"],
)
def test_a_message_id_or_sender_oin_that_is_not_a_string_is_refused_before_key_lookup(
    path: tuple[str, ...], value: Any
) -> None:
    signed = _signed(_with(path, value))
    with pytest.raises(errors.InvalidMessage, match=".".join(path)):
        read_signed_message(signed.body, _pairs(signed), policy=POLICY)


# --- sigT is UTC whatever the signer's zone -----------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 1, 17, 3600 * 5 + 1800])
def test_the_signing_time_is_written_in_utc_in_every_local_zone(
    time_zone: str, seconds: int
) -> None:
    # A moment per zone that no other test signs at, so no cached header hides the zone.
    zones = ["UTC", "America/New_York", "Asia/Kolkata"]
    moment = SIGNING_TIME + timedelta(days=1 + zones.index(time_zone), seconds=seconds)
    for written in (moment, moment.astimezone(ZoneInfo(time_zone)), moment.astimezone()):
        signed = sign_body(BODY, KEY, signing_time=written)
        unverified = read_signed_message(signed.body, _pairs(signed), policy=POLICY)
        assert unverified.signing_time == moment
        assert unverified.signing_time.utcoffset() == timedelta(0)
        assert verify_body(BODY, _pairs(signed), KEYS, policy=POLICY, now=moment)
