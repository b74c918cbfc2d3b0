"""Message-level signing: the replayable vector, property tests and one test per rejection."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws as joserfc_jws
from joserfc.jwk import import_key
from joserfc.registry import HeaderParameter

from protocol import canonicalize, errors
from protocol._keys import b64url_encode
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.jws import sign_compact
from protocol.messages import Message, message_to_json, parse_message
from protocol.signing import (
    SignedBody,
    VerificationKey,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    sign_message,
    verify_body,
    verify_message,
)
from tests.conftest import load_vector

VECTOR = load_vector("message_signing.json")
SIGNING_TIME = datetime(2025, 2, 10, 10, 15, 30, tzinfo=UTC)
RECEIVER = VECTOR["receiver_oin"]
POLICY = VerificationPolicy(receiver_oin=RECEIVER)
KEY = VECTOR["private_jwk"]
KEYS = [VerificationKey(VECTOR["public_jwk"])]


def _message(**changes: Any) -> Message:
    document = json.loads(json.dumps(VECTOR["message"]))
    document.update(changes)
    return parse_message(document)


def _pairs(signed: SignedBody) -> list[tuple[str, str]]:
    return list(signed.headers().items())


def _receive(
    body: bytes,
    headers: list[tuple[str, str]],
    *,
    keys: list[VerificationKey] = KEYS,
    policy: VerificationPolicy = POLICY,
    now: datetime | None = SIGNING_TIME,
) -> Message:
    unverified = read_signed_message(body, headers, policy=policy)
    return verify_message(unverified, keys, policy=policy, now=now)


def test_vector_reproduces_exactly() -> None:
    signed = sign_message(_message(), KEY, signing_time=SIGNING_TIME)
    assert signed.body.decode("utf-8") == VECTOR["canonical_body"]
    assert signed.digest == VECTOR["digest"]
    assert signed.signature == VECTOR["signature"]
    header = signed.signature.split(".")[0]
    assert base64.urlsafe_b64decode(header + "==").decode() == VECTOR["protected_header"]
    assert VECTOR["signing_input"] == f"{header}.digest: {signed.digest}"


def test_vector_verifies() -> None:
    body = VECTOR["canonical_body"].encode("utf-8")
    headers = [("digest", VECTOR["digest"]), ("NLGOV-ADR-PAYLOAD-SIG", VECTOR["signature"])]
    assert _receive(body, headers) == _message()


def test_vector_digest_is_sha256_of_body() -> None:
    body = VECTOR["canonical_body"].encode("utf-8")
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert VECTOR["digest"] == f"SHA-256={expected}"
    assert canonicalize(VECTOR["message"]) == body


def _is_object(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("sigD must be an object")


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
def test_signature_verifies_with_joserfc() -> None:
    # An independent RFC 7797 implementation checks the detached, unencoded signature.
    registry = joserfc_jws.JWSRegistry(
        header_registry={
            "sigT": HeaderParameter("JAdES signing time", "str"),
            "sigD": HeaderParameter("JAdES signed data", _is_object),
        },
        algorithms=["EdDSA"],
    )
    signing_input = f"digest: {VECTOR['digest']}".encode()
    result = joserfc_jws.deserialize_compact(
        VECTOR["signature"],
        import_key(VECTOR["public_jwk"]),
        payload=signing_input,
        registry=registry,
    )
    assert result.payload == signing_input


@pytest.mark.parametrize("algorithm", ["EdDSA", "PS256"])
def test_round_trip_both_algorithms(algorithm: str) -> None:
    private = generate_private_jwk(algorithm)  # type: ignore[arg-type]
    signed = sign_message(_message(), private, signing_time=SIGNING_TIME)
    keys = [VerificationKey(public_jwk(private))]
    assert _receive(signed.body, _pairs(signed), keys=keys) == _message()


def test_verify_body_returns_document() -> None:
    signed = sign_body(b'{"keys":[]}', KEY, signing_time=SIGNING_TIME)
    assert verify_body(signed.body, _pairs(signed), KEYS, policy=POLICY, now=SIGNING_TIME) == {
        "keys": []
    }


def test_archived_message_reverifies_without_clock() -> None:
    signed = sign_message(_message(), KEY, signing_time=SIGNING_TIME)
    assert _receive(signed.body, _pairs(signed), now=None) == _message()


def test_unverified_message_fields() -> None:
    signed = sign_message(_message(), KEY, signing_time=SIGNING_TIME)
    unverified = read_signed_message(signed.body, _pairs(signed), policy=POLICY)
    assert (unverified.kid, unverified.algorithm) == (VECTOR["kid"], "EdDSA")
    assert unverified.signing_time == SIGNING_TIME
    assert unverified.sender_oin == VECTOR["message"]["sender"]["oin"]
    assert unverified.message_id == VECTOR["message"]["messageId"]


@pytest.mark.usefixtures("time_zone")
def test_key_validity_window() -> None:
    key = VerificationKey(
        {},
        not_before=SIGNING_TIME,
        not_after=SIGNING_TIME + timedelta(days=1),
        revoked_at=SIGNING_TIME + timedelta(hours=1),
    )
    assert key.valid_at(SIGNING_TIME)
    assert not key.valid_at(SIGNING_TIME - timedelta(seconds=1))
    assert not key.valid_at(SIGNING_TIME + timedelta(hours=1))


# Property: any single changed byte in body, signature header or digest header fails.

SIGNED = sign_message(_message(), KEY, signing_time=SIGNING_TIME)


def _flip(data: bytes, index: int, new: int) -> bytes:
    index %= len(data)
    new = new if new != data[index] else (new + 1) % 256
    return data[:index] + bytes([new]) + data[index + 1 :]


def _fails(body: bytes, headers: list[tuple[str, str]]) -> bool:
    try:
        _receive(body, headers)
    except errors.ProtocolError:
        return True
    return False


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_changed_body_byte_fails(index: int, new: int) -> None:
    assert _fails(_flip(SIGNED.body, index, new), _pairs(SIGNED))


def _header_bytes_changed(name: str, index: int, new: int) -> list[tuple[str, str]]:
    headers = SIGNED.headers()
    changed = _flip(headers[name].encode(), index, new)
    headers[name] = changed.decode("latin-1")
    return list(headers.items())


@settings(max_examples=150)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_changed_signature_byte_fails(index: int, new: int) -> None:
    assert _fails(SIGNED.body, _header_bytes_changed("nlgov-adr-payload-sig", index, new))


@settings(max_examples=150)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_changed_digest_byte_fails(index: int, new: int) -> None:
    assert _fails(SIGNED.body, _header_bytes_changed("Digest", index, new))


# One test per rejection code: its own class and code, and nothing returned.


def _rejected(error: type[errors.ProtocolError], call: Callable[[], object]) -> None:
    result: object = None
    with pytest.raises(error) as caught:
        result = call()
    assert result is None
    assert caught.value.code == error.code
    assert type(caught.value) is error


def _resigned_header(header_changes: dict[str, Any], key: dict[str, Any] = KEY) -> str:
    header = json.loads(VECTOR["protected_header"]) | header_changes
    return sign_compact(f"digest: {SIGNED.digest}".encode(), key, protected=header, detached=True)


def test_body_too_large() -> None:
    policy = VerificationPolicy(receiver_oin=RECEIVER, max_body_bytes=100)
    _rejected(errors.BodyTooLarge, lambda: _receive(SIGNED.body, _pairs(SIGNED), policy=policy))


def test_signature_missing() -> None:
    headers = [("Digest", SIGNED.digest)]
    _rejected(errors.SignatureMissing, lambda: _receive(SIGNED.body, headers))


def test_signature_in_the_obsolete_header_is_refused_naming_the_new_one() -> None:
    headers = [("Digest", SIGNED.digest), ("Payload-Signature", SIGNED.signature)]
    with pytest.raises(errors.ObsoleteSignatureHeader) as caught:
        _receive(SIGNED.body, headers)
    assert "nlgov-adr-payload-sig" in caught.value.detail
    assert "nlgov-adr-payload-sig" in caught.value.title


def test_obsolete_header_next_to_the_new_one_is_not_read() -> None:
    headers = [*_pairs(SIGNED), ("Payload-Signature", "not-a-jws")]
    assert _receive(SIGNED.body, headers) == _message()


def test_signed_body_sends_the_signature_in_the_header_the_module_names() -> None:
    assert VECTOR["signature_header"] == "nlgov-adr-payload-sig"
    assert SIGNED.headers()["nlgov-adr-payload-sig"] == SIGNED.signature
    assert "Payload-Signature" not in SIGNED.headers()


def test_signature_repeated() -> None:
    headers = [*_pairs(SIGNED), ("nlgov-adr-payload-sig", SIGNED.signature)]
    _rejected(errors.SignatureRepeated, lambda: _receive(SIGNED.body, headers))


@pytest.mark.parametrize("digest", [None, "MD5=abc", "SHA-512=" + "A" * 88])
def test_digest_missing(digest: str | None) -> None:
    headers = [("nlgov-adr-payload-sig", SIGNED.signature)]
    headers += [("Digest", digest)] if digest else []
    _rejected(errors.DigestMissing, lambda: _receive(SIGNED.body, headers))


def test_digest_mismatch() -> None:
    body = SIGNED.body.replace(b"dossier-offer", b"dossier-offeR")
    _rejected(errors.DigestMismatch, lambda: _receive(body, _pairs(SIGNED)))


def test_malformed_signature() -> None:
    headers = [("Digest", SIGNED.digest), ("nlgov-adr-payload-sig", "not-a-jws")]
    _rejected(errors.MalformedSignature, lambda: _receive(SIGNED.body, headers))


@pytest.mark.parametrize(
    "changes",
    [{"sigD": {"mId": "urn:other", "pars": ["digest"]}}, {"sigT": "2025-02-10 10:15:30"}],
)
def test_header_profile_enforced(changes: dict[str, Any]) -> None:
    headers = [("Digest", SIGNED.digest), ("nlgov-adr-payload-sig", _resigned_header(changes))]
    _rejected(errors.MalformedSignature, lambda: _receive(SIGNED.body, headers))


@pytest.mark.parametrize("alg", ["none", "RS256", "HS256"])
def test_algorithm_not_allowed(alg: str) -> None:
    header = json.loads(VECTOR["protected_header"]) | {"alg": alg}
    token = b64url_encode(canonicalize(header)) + ".." + b64url_encode(b"x" * 64)
    headers = [("Digest", SIGNED.digest), ("nlgov-adr-payload-sig", token)]
    _rejected(errors.AlgorithmNotAllowed, lambda: _receive(SIGNED.body, headers))


def test_algorithm_not_allowed_by_policy() -> None:
    policy = VerificationPolicy(receiver_oin=RECEIVER, algorithms=frozenset({"PS256"}))
    _rejected(
        errors.AlgorithmNotAllowed, lambda: _receive(SIGNED.body, _pairs(SIGNED), policy=policy)
    )


def test_unknown_critical_header() -> None:
    header = json.loads(VECTOR["protected_header"])
    header |= {"crit": [*header["crit"], "exp"], "exp": 1}
    token = b64url_encode(canonicalize(header)) + ".." + b64url_encode(b"x" * 64)
    headers = [("Digest", SIGNED.digest), ("nlgov-adr-payload-sig", token)]
    _rejected(errors.UnknownCriticalHeader, lambda: _receive(SIGNED.body, headers))


def test_bad_signature() -> None:
    other = generate_private_jwk("EdDSA")
    # Same kid as the real key, signature by another key.
    header = json.loads(VECTOR["protected_header"])
    token = sign_compact(
        f"digest: {SIGNED.digest}".encode(), other, protected=header, detached=True
    )
    headers = [("Digest", SIGNED.digest), ("nlgov-adr-payload-sig", token)]
    _rejected(errors.BadSignature, lambda: _receive(SIGNED.body, headers))


def test_key_unknown() -> None:
    keys = [VerificationKey(public_jwk(generate_private_jwk("EdDSA")))]
    _rejected(errors.KeyUnknown, lambda: _receive(SIGNED.body, _pairs(SIGNED), keys=keys))


@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize(
    "key",
    [
        VerificationKey(VECTOR["public_jwk"], not_before=SIGNING_TIME + timedelta(seconds=1)),
        VerificationKey(VECTOR["public_jwk"], not_after=SIGNING_TIME),
        VerificationKey(VECTOR["public_jwk"], revoked_at=SIGNING_TIME - timedelta(days=1)),
    ],
)
def test_key_not_valid(key: VerificationKey) -> None:
    _rejected(errors.KeyNotValid, lambda: _receive(SIGNED.body, _pairs(SIGNED), keys=[key]))


def test_receiver_mismatch() -> None:
    policy = VerificationPolicy(receiver_oin="00000001001234567000")
    _rejected(errors.ReceiverMismatch, lambda: _receive(SIGNED.body, _pairs(SIGNED), policy=policy))


@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize("offset", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_clock_skew(offset: timedelta) -> None:
    now = SIGNING_TIME + offset
    _rejected(errors.ClockSkew, lambda: _receive(SIGNED.body, _pairs(SIGNED), now=now))


@pytest.mark.usefixtures("time_zone")
def test_clock_skew_is_configurable() -> None:
    policy = VerificationPolicy(receiver_oin=RECEIVER, clock_skew=timedelta(minutes=10))
    now = SIGNING_TIME + timedelta(minutes=6)
    assert _receive(SIGNED.body, _pairs(SIGNED), now=now, policy=policy) == _message()


# Freshness (docs/protocol.md section 7.1): sigT near now; createdAt not after sigT plus skew.


def _signed_at(created_at: datetime, signing_time: datetime) -> SignedBody:
    created = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return sign_message(_message(createdAt=created), KEY, signing_time=signing_time)


@pytest.mark.usefixtures("time_zone")
def test_retry_with_old_created_at_and_fresh_signature_verifies() -> None:
    # The outbox keeps the body (and createdAt) across retries for hours; only sigT is new.
    later = SIGNING_TIME + timedelta(hours=7)
    signed = _signed_at(SIGNING_TIME, later)
    message = _receive(signed.body, _pairs(signed), now=later + timedelta(minutes=4))
    assert message.created_at == SIGNING_TIME


@pytest.mark.usefixtures("time_zone")
def test_stale_signature_of_fresh_created_at_is_refused() -> None:
    signed = _signed_at(SIGNING_TIME, SIGNING_TIME)
    now = SIGNING_TIME + timedelta(minutes=5, seconds=1)
    _rejected(errors.ClockSkew, lambda: _receive(signed.body, _pairs(signed), now=now))


@pytest.mark.usefixtures("time_zone")
@pytest.mark.parametrize("ahead", [timedelta(minutes=5, seconds=1), timedelta(days=2)])
def test_created_at_after_signing_time_plus_skew_is_refused(ahead: timedelta) -> None:
    signed = _signed_at(SIGNING_TIME + ahead, SIGNING_TIME)
    with pytest.raises(errors.ClockSkew, match="createdAt is in the future"):
        _receive(signed.body, _pairs(signed), now=SIGNING_TIME)


@pytest.mark.usefixtures("time_zone")
def test_created_at_up_to_skew_after_signing_time_verifies() -> None:
    signed = _signed_at(SIGNING_TIME + timedelta(minutes=5), SIGNING_TIME)
    assert _receive(signed.body, _pairs(signed), now=SIGNING_TIME) is not None


@pytest.mark.usefixtures("time_zone")
def test_created_at_is_compared_with_signing_time_not_now() -> None:
    # sigT 4 minutes ahead of the receiver, createdAt 4 more: 8 minutes ahead of now, but not
    # later than sigT plus the skew, so accepted.
    signing_time = SIGNING_TIME + timedelta(minutes=4)
    signed = _signed_at(signing_time + timedelta(minutes=4), signing_time)
    assert _receive(signed.body, _pairs(signed), now=SIGNING_TIME) is not None


@pytest.mark.usefixtures("time_zone")
def test_archived_message_skips_freshness() -> None:
    signed = _signed_at(SIGNING_TIME + timedelta(days=2), SIGNING_TIME)
    assert _receive(signed.body, _pairs(signed), now=None) is not None


def _signed_raw(body: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    signed = sign_body(body, KEY, signing_time=SIGNING_TIME)
    return body, _pairs(signed)


def test_malformed_json() -> None:
    body, headers = _signed_raw(SIGNED.body[:-1])
    _rejected(errors.MalformedJson, lambda: _receive(body, headers))


def test_duplicate_json_key() -> None:
    body, headers = _signed_raw(SIGNED.body[:-1] + b',"messageType":"receipt"}')
    _rejected(errors.DuplicateJsonKey, lambda: _receive(body, headers))


def test_unsupported_version() -> None:
    document = VECTOR["message"] | {"protocolVersion": "2.0"}
    body, headers = _signed_raw(canonicalize(document))
    _rejected(errors.UnsupportedVersion, lambda: _receive(body, headers))


def test_invalid_message() -> None:
    document = VECTOR["message"] | {"unexpected": True}
    body, headers = _signed_raw(canonicalize(document))
    _rejected(errors.InvalidMessage, lambda: _receive(body, headers))


def test_message_round_trip_of_canonical_body() -> None:
    assert message_to_json(_message()) == VECTOR["message"]
