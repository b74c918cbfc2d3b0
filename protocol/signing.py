"""Message-level signing: a ``Digest`` header and a detached JAdES JWS beside it.

Follows the payload-signing rule of the NL GOV API Design Rules signing module (Logius
API-mod-signing, "Payload signing"): a detached JWS (RFC 7515 appendix F) whose protected
header carries ``sigD`` with mId ``http://uri.etsi.org/19182/HttpHeaders`` and pars
``["digest"]``, so the signature covers the RFC 3230 ``Digest`` header of the body. The JWS is
carried in the ``nlgov-adr-payload-sig`` header, at most once: a message with the header twice
has an invalid signature. The exact construction, with a worked example, is in
``docs/signing.md``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from protocol._jcs import canonicalize
from protocol._json import read_json
from protocol._keys import (
    PublicKey,
    algorithm_for_key,
    b64url_encode,
    private_key_from_jwk,
    public_key_from_jwk,
    raw_sign,
    thumbprint,
)
from protocol.errors import (
    AlgorithmNotAllowed,
    BodyTooLarge,
    ClockSkew,
    DigestMismatch,
    DigestMissing,
    InvalidMessage,
    KeyNotValid,
    KeyUnknown,
    MalformedSignature,
    ObsoleteSignatureHeader,
    ReceiverMismatch,
    SignatureMissing,
    SignatureRepeated,
    UnsupportedVersion,
)
from protocol.jws import _check_header as check_protected_header
from protocol.jws import _decode_header, _split, _verify_decoded
from protocol.messages import Message, message_to_json, parse_message

__all__ = [
    "DIGEST_HEADER",
    "HTTP_HEADERS_MECHANISM",
    "OBSOLETE_SIGNATURE_HEADER",
    "SIGNATURE_HEADER",
    "KeyValidity",
    "SignedBody",
    "UnverifiedMessage",
    "VerificationKey",
    "VerificationPolicy",
    "read_signed_message",
    "sign_body",
    "sign_message",
    "verify_body",
    "verify_message",
]

SIGNATURE_HEADER = "nlgov-adr-payload-sig"
# The header name of earlier texts of the signing module: never sent, and refused on input with
# a problem that names SIGNATURE_HEADER (docs/signing.md, "Header name").
OBSOLETE_SIGNATURE_HEADER = "Payload-Signature"
DIGEST_HEADER = "Digest"
HTTP_HEADERS_MECHANISM = "http://uri.etsi.org/19182/HttpHeaders"
_SIGNED_DIGEST = {"mId": HTTP_HEADERS_MECHANISM, "pars": ["digest"]}
_CRITICAL = ("b64", "sigD", "sigT")
# JAdES (ETSI TS 119 182-1) sigT: UTC time to the second, "YYYY-MM-DDThh:mm:ssZ".
_SIGNING_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")


class KeyValidity:
    """When a key may sign: from ``not_before``, until ``not_after``, unless revoked before."""

    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None

    def valid_at(self, moment: datetime) -> bool:
        """True when the key may have signed at ``moment`` (not before, not after, not revoked)."""
        if self.not_before is not None and moment < self.not_before:
            return False
        if self.not_after is not None and moment >= self.not_after:
            return False
        return self.revoked_at is None or moment < self.revoked_at


@dataclass(frozen=True)
class VerificationKey(KeyValidity):
    """A public key with its validity as the registry publishes it."""

    jwk: Mapping[str, Any]
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked_at: datetime | None = None

    @functools.cached_property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the key (computed once per key)."""
        return thumbprint(self.jwk)

    @functools.cached_property
    def _verifier(self) -> tuple[PublicKey, str]:
        # The key object and its one algorithm, built once per key rather than per message.
        return public_key_from_jwk(self.jwk), algorithm_for_key(self.jwk)


@dataclass(frozen=True)
class VerificationPolicy:
    """What a receiver accepts; passed explicitly to every verification."""

    receiver_oin: str | None = None
    max_body_bytes: int = 1_048_576
    clock_skew: timedelta = timedelta(minutes=5)
    algorithms: frozenset[str] = frozenset({"EdDSA", "PS256"})
    supported_major_versions: frozenset[int] = frozenset({1})


@dataclass(frozen=True)
class SignedBody:
    """A body with its ``Digest`` and ``nlgov-adr-payload-sig`` header values."""

    body: bytes
    digest: str
    signature: str

    def headers(self) -> dict[str, str]:
        """The HTTP headers to send with the body."""
        return {
            "Content-Type": "application/json",
            DIGEST_HEADER: self.digest,
            SIGNATURE_HEADER: self.signature,
        }


@dataclass(frozen=True)
class UnverifiedMessage:
    """A message that passed the cheap checks; its signature is NOT verified yet."""

    body: bytes
    document: dict[str, Any]
    kid: str
    algorithm: str
    signing_time: datetime
    sender_oin: str
    message_id: str
    _token: str = field(repr=False, default="")
    _digest: str = field(repr=False, default="")
    _header: Mapping[str, Any] = field(repr=False, default_factory=dict)


def _digest_header(body: bytes) -> str:
    """The RFC 3230 ``Digest`` value of ``body``: ``SHA-256=`` and padded base64."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _signing_input(digest: str) -> bytes:
    # JAdES HttpHeaders mechanism: one "name: value" line per entry of sigD.pars.
    return b"digest: " + digest.encode("ascii")


def _format_signing_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(moment: datetime) -> int:
    # sigT has whole seconds; exact integer arithmetic (no float timestamp) keys the cache below.
    if moment.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    return (moment - _EPOCH) // _SECOND


@functools.lru_cache(maxsize=64)
def _encoded_protected_header(algorithm: str, kid: str, seconds: int) -> str:
    # A signer sends many messages within a second with the same key: build the header once.
    protected: dict[str, Any] = {
        "alg": algorithm,
        "b64": False,
        "crit": list(_CRITICAL),
        "kid": kid,
        "sigD": _SIGNED_DIGEST,
        "sigT": _format_signing_time(_EPOCH + seconds * _SECOND),
    }
    check_protected_header(protected)
    return b64url_encode(canonicalize(protected))


def sign_body(body: bytes, private_jwk: Mapping[str, Any], *, signing_time: datetime) -> SignedBody:
    """Sign ``body`` as is: its Digest header plus a detached JAdES JWS over that header."""
    digest = _digest_header(body)
    seconds = _whole_seconds(signing_time)
    encoded_header = _encoded_protected_header(
        algorithm_for_key(private_jwk), thumbprint(private_jwk), seconds
    )
    # RFC 7797 section 5: with b64 false the signing input is the header, ".", and the payload.
    signing_input = encoded_header.encode("ascii") + b"." + _signing_input(digest)
    signature = b64url_encode(raw_sign(private_key_from_jwk(private_jwk), signing_input))
    return SignedBody(body=body, digest=digest, signature=f"{encoded_header}..{signature}")


def sign_message(
    message: Message, private_jwk: Mapping[str, Any], *, signing_time: datetime
) -> SignedBody:
    """Sign the RFC 8785 canonical form of ``message``."""
    return sign_body(canonicalize(message_to_json(message)), private_jwk, signing_time=signing_time)


@dataclass(frozen=True)
class _Checked:
    token: str
    header: Mapping[str, Any]
    digest: str
    document: dict[str, Any]
    signing_time: datetime


def _check_size(body: bytes, policy: VerificationPolicy) -> None:
    if len(body) > policy.max_body_bytes:
        raise BodyTooLarge(f"body has {len(body)} bytes, the limit is {policy.max_body_bytes}")


_SIGNATURE_NAME = SIGNATURE_HEADER.lower()
_OBSOLETE_NAME = OBSOLETE_SIGNATURE_HEADER.lower()


@dataclass
class _SignatureHeaders:
    signatures: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    obsolete: bool = False


def _header_values(headers: Iterable[tuple[str, str]]) -> _SignatureHeaders:
    found = _SignatureHeaders()
    for name, value in headers:
        lowered = name.lower()
        if lowered == _SIGNATURE_NAME:
            found.signatures.append(value.strip())
        elif lowered == "digest":
            found.digests.append(value.strip())
        elif lowered == _OBSOLETE_NAME:
            found.obsolete = True
    return found


def _one_signature(found: _SignatureHeaders) -> str:
    signatures = found.signatures
    if not signatures and found.obsolete:
        raise ObsoleteSignatureHeader(
            f"the signature header is {SIGNATURE_HEADER}; {OBSOLETE_SIGNATURE_HEADER} is not read"
        )
    if not signatures:
        raise SignatureMissing(f"the {SIGNATURE_HEADER} header is missing")
    if len(signatures) > 1:
        raise SignatureRepeated(f"the {SIGNATURE_HEADER} header occurs {len(signatures)} times")
    return signatures[0]


def _check_digest(digests: list[str], body: bytes) -> str:
    # RFC 3230 section 4.3.2: a list of algorithm=value; several fields combine into one list.
    combined = ", ".join(digests)
    values = [
        value
        for algorithm, _, value in (part.strip().partition("=") for part in combined.split(","))
        if algorithm.lower() == "sha-256"
    ]
    if not values:
        raise DigestMissing("no Digest header with a SHA-256 value")
    expected = hashlib.sha256(body).digest()
    for value in values:
        try:
            received = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DigestMismatch("Digest SHA-256 value is not base64") from exc
        if not hmac.compare_digest(received, expected):
            raise DigestMismatch("Digest header does not match the body")
    return combined


@functools.lru_cache(maxsize=128)
def _protected_header(encoded_header: str) -> Mapping[str, Any]:
    # Cached per encoded header (one sender, key and second): a burst decodes it once.
    return MappingProxyType(_decode_header(encoded_header))


@functools.lru_cache(maxsize=128)
def _jades_signing_time(encoded_header: str) -> datetime:
    header = _protected_header(encoded_header)
    if header.get("b64") is not False or sorted(header.get("crit", [])) != sorted(_CRITICAL):
        raise MalformedSignature("signature must be detached with b64 false and crit b64/sigD/sigT")
    if header.get("sigD") != _SIGNED_DIGEST:
        raise MalformedSignature(f"sigD must be {{mId: {HTTP_HEADERS_MECHANISM}, pars: [digest]}}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise MalformedSignature("protected header has no kid")
    signing_time = header.get("sigT")
    if not isinstance(signing_time, str) or not _SIGNING_TIME.fullmatch(signing_time):
        raise MalformedSignature("sigT must be a UTC time YYYY-MM-DDThh:mm:ssZ")
    try:  # the pattern above leaves only the calendar to check; "Z" gives UTC (Python 3.11)
        return datetime.fromisoformat(signing_time)
    except ValueError as exc:
        raise MalformedSignature("sigT is not a valid time") from exc


def _check_header(token: str, policy: VerificationPolicy) -> tuple[Mapping[str, Any], datetime]:
    encoded_header, _, _ = _split(token)
    header = _protected_header(encoded_header)
    if header["alg"] not in policy.algorithms:
        raise AlgorithmNotAllowed(f"alg {header['alg']} is not allowed by this receiver")
    return header, _jades_signing_time(encoded_header)


def _check_cheap(
    body: bytes, headers: Iterable[tuple[str, str]], policy: VerificationPolicy
) -> _Checked:
    _check_size(body, policy)
    found = _header_values(headers)
    token = _one_signature(found)
    digest = _check_digest(found.digests, body)
    header, signing_time = _check_header(token, policy)
    document = read_json(body, max_bytes=policy.max_body_bytes)
    if not isinstance(document, dict):
        raise InvalidMessage("(message): the body must be a JSON object")
    return _Checked(token, header, digest, document, signing_time)


def _select_key(
    kid: str, signing_time: datetime, keys: Sequence[VerificationKey]
) -> VerificationKey:
    candidates = [key for key in keys if key.kid == kid]
    if not candidates:
        raise KeyUnknown("no known key of the sender has this kid")
    for key in candidates:
        if key.valid_at(signing_time):
            return key
    raise KeyNotValid("the key was not valid at the signing time")


def _verify_signature(
    token: str, header: Mapping[str, Any], digest: str, key: VerificationKey
) -> None:
    # verify_compact on a token whose header _check_header has decoded and checked already.
    encoded_header, encoded_payload, encoded_signature = token.split(".")
    public_key, algorithm = key._verifier
    _verify_decoded(
        encoded_header,
        header,
        encoded_payload,
        encoded_signature,
        public_key,
        algorithm,
        _signing_input(digest),
    )


def _check_signing_time(signing_time: datetime, now: datetime, policy: VerificationPolicy) -> None:
    # docs/protocol.md section 7.1: only the signature must be fresh; it is made anew per attempt.
    if abs(signing_time - now) > policy.clock_skew:
        raise ClockSkew(f"sigT differs from the receiver's time by more than {policy.clock_skew}")


def _check_created_at(
    created_at: datetime, signing_time: datetime, policy: VerificationPolicy
) -> None:
    # docs/protocol.md section 7.1: createdAt stays the same across retries, so it may be old,
    # but a message cannot have been created after it was signed.
    if created_at - signing_time > policy.clock_skew:
        raise ClockSkew(f"createdAt is in the future: later than sigT plus {policy.clock_skew}")


def verify_body(
    body: bytes,
    headers: Iterable[tuple[str, str]],
    keys: Sequence[VerificationKey],
    *,
    policy: VerificationPolicy,
    now: datetime | None,
) -> dict[str, Any]:
    """Verify a signed JSON body of any kind and return the strictly parsed document."""
    checked = _check_cheap(body, headers, policy)
    key = _select_key(checked.header["kid"], checked.signing_time, keys)
    _verify_signature(checked.token, checked.header, checked.digest, key)
    if now is not None:
        _check_signing_time(checked.signing_time, now, policy)
    return checked.document


def _envelope_text(document: Mapping[str, Any], *path: str) -> str:
    value: Any = document
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None  # parsed JSON: dicts
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{'.'.join(path)}: required field is missing")
    return value


def _check_version(document: Mapping[str, Any], policy: VerificationPolicy) -> None:
    version = _envelope_text(document, "protocolVersion")
    match = _VERSION.fullmatch(version)
    if match is None:
        raise InvalidMessage("protocolVersion: must be major.minor")
    if int(match.group(1)) not in policy.supported_major_versions:
        raise UnsupportedVersion(f"protocolVersion {version} is not supported")


def read_signed_message(
    body: bytes, headers: Iterable[tuple[str, str]], *, policy: VerificationPolicy
) -> UnverifiedMessage:
    """Cheap checks before any key lookup; the result tells which sender's keys to fetch."""
    checked = _check_cheap(body, headers, policy)
    _check_version(checked.document, policy)
    return UnverifiedMessage(
        body=body,
        document=checked.document,
        kid=checked.header["kid"],
        algorithm=checked.header["alg"],
        signing_time=checked.signing_time,
        sender_oin=_envelope_text(checked.document, "sender", "oin"),
        message_id=_envelope_text(checked.document, "messageId"),
        _token=checked.token,
        _digest=checked.digest,
        _header=checked.header,
    )


def _created_at(document: Mapping[str, Any]) -> datetime:
    text = _envelope_text(document, "createdAt")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidMessage("createdAt: not an RFC 3339 date-time") from exc
    if moment.tzinfo is None:
        raise InvalidMessage("createdAt: datetime needs a timezone offset (RFC 3339)")
    return moment


def verify_message(
    unverified: UnverifiedMessage,
    keys: Sequence[VerificationKey],
    *,
    policy: VerificationPolicy,
    now: datetime | None,
) -> Message:
    """Verify key, signature, receiver and freshness, then validate the full message model.

    Freshness (docs/protocol.md section 7.1): ``sigT`` within ``policy.clock_skew`` of ``now``
    and ``createdAt`` not later than ``sigT`` plus the skew; with ``now=None`` (an archived
    message verified again) freshness is not checked.
    """
    _verify_envelope(unverified, keys, policy=policy, now=now)
    return parse_message(unverified.document, text=unverified.body)


def _verify_envelope(
    unverified: UnverifiedMessage,
    keys: Sequence[VerificationKey],
    *,
    policy: VerificationPolicy,
    now: datetime | None,
) -> None:
    # docs/protocol.md section 7, checks 10 to 14; verify_message adds 15 (the model).
    key = _select_key(unverified.kid, unverified.signing_time, keys)
    _verify_signature(unverified._token, unverified._header, unverified._digest, key)
    receiver = _envelope_text(unverified.document, "receiver", "oin")
    if policy.receiver_oin is not None and receiver != policy.receiver_oin:
        raise ReceiverMismatch("the message is addressed to another organisation")
    if now is not None:  # None: re-verifying a stored message, freshness is not checked (7.1)
        _check_signing_time(unverified.signing_time, now, policy)
        _check_created_at(_created_at(unverified.document), unverified.signing_time, policy)
