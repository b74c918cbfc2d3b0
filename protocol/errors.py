"""Errors raised by the protocol library, each with a stable machine code.

Every code maps to one RFC 9457 problem type, ``urn:meeverhuizen:problem:<code>``, listed in the
error catalogue of ``docs/protocol.md``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "SIGNATURE_CHALLENGE",
    "AlgorithmNotAllowed",
    "BadSignature",
    "BodyTooLarge",
    "ClockSkew",
    "DigestMismatch",
    "DigestMissing",
    "DuplicateJsonKey",
    "IntegerOutOfRange",
    "InvalidKey",
    "InvalidMessage",
    "KeyNotValid",
    "KeyUnknown",
    "MalformedJson",
    "MalformedSignature",
    "ObsoleteSignatureHeader",
    "ProblemError",
    "ProtocolError",
    "ReceiverMismatch",
    "SettlementAmountMismatch",
    "SignatureMissing",
    "SignatureRepeated",
    "UnknownCriticalHeader",
    "UnknownSettlementMethod",
    "UnsupportedVersion",
    "problem_type",
]

PROBLEM_TYPE_PREFIX = "urn:meeverhuizen:problem:"


def problem_type(code: str) -> str:
    """Return the RFC 9457 problem ``type`` URI for a machine code."""
    return PROBLEM_TYPE_PREFIX + code.replace("_", "-")


class ProblemError(Exception):
    """Base of every error tree (protocol, registry, agent): one problem type per class.

    ``code`` is stable and machine-readable; ``title`` and ``status`` go into the RFC 9457
    answer; ``detail`` says what was wrong this time, never with personal data in it.
    """

    code: ClassVar[str] = "problem"
    title: ClassVar[str] = "Problem"
    status: ClassVar[int] = 400
    # With status 401: the WWW-Authenticate challenge (RFC 9110 section 11.6.1); None means the
    # service's bearer token.
    challenge: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type(self) -> str:
        return problem_type(self.code)


# A protocol message authenticates with its signature, not with a token.
SIGNATURE_CHALLENGE = 'nlgov-adr-payload-sig realm="meeverhuizen", algorithms="EdDSA PS256"'


class ProtocolError(ProblemError):
    """Base class: a message or key that the protocol refuses."""

    code = "protocol_error"
    title = "Protocol error"
    challenge = SIGNATURE_CHALLENGE


class BodyTooLarge(ProtocolError):
    code = "body_too_large"
    title = "Message body is larger than allowed"
    status = 413


class SignatureMissing(ProtocolError):
    code = "signature_missing"
    title = "nlgov-adr-payload-sig header is missing"
    status = 401


class ObsoleteSignatureHeader(ProtocolError):
    """The signature came in ``Payload-Signature``, the header name of earlier module texts."""

    code = "obsolete_signature_header"
    title = "Signature header is Payload-Signature; send it as nlgov-adr-payload-sig"
    status = 401


class SignatureRepeated(ProtocolError):
    code = "signature_repeated"
    title = "nlgov-adr-payload-sig header occurs more than once"


class MalformedSignature(ProtocolError):
    code = "malformed_signature"
    title = "Signature is not a well-formed compact JWS"


class DigestMissing(ProtocolError):
    code = "digest_missing"
    title = "Digest header is missing or not SHA-256"


class DigestMismatch(ProtocolError):
    code = "digest_mismatch"
    title = "Digest header does not match the body"


class AlgorithmNotAllowed(ProtocolError):
    code = "algorithm_not_allowed"
    title = "Signature algorithm is unknown or not allowed"


class UnknownCriticalHeader(ProtocolError):
    code = "unknown_critical_header"
    title = "Signature marks a header parameter critical that is not understood"


class BadSignature(ProtocolError):
    code = "bad_signature"
    title = "Signature does not verify"
    status = 401


class KeyUnknown(ProtocolError):
    code = "key_unknown"
    title = "Signing key is not known for the sender"
    status = 401


class KeyNotValid(ProtocolError):
    code = "key_not_valid"
    title = "Signing key was not valid at the signing time"
    status = 401


class InvalidKey(ProtocolError):
    code = "invalid_key"
    title = "Key is not a valid JWK for this use"


class ReceiverMismatch(ProtocolError):
    code = "receiver_mismatch"
    title = "Message is addressed to another organisation"
    status = 421


class ClockSkew(ProtocolError):
    code = "clock_skew"
    title = "Message creation time is outside the allowed clock skew"


class MalformedJson(ProtocolError):
    code = "malformed_json"
    title = "Body is not valid UTF-8 JSON"


class IntegerOutOfRange(MalformedJson):
    """An integer outside the exact range of an IEEE 754 double (RFC 7493 section 2.2)."""

    code = "integer_out_of_range"
    title = "Integer is outside the interoperable range -(2**53 - 1) to 2**53 - 1"


class DuplicateJsonKey(ProtocolError):
    code = "duplicate_json_key"
    title = "Body contains an object with a repeated key"


class UnsupportedVersion(ProtocolError):
    code = "unsupported_version"
    title = "Protocol major version is not supported"


class InvalidMessage(ProtocolError):
    code = "invalid_message"
    title = "Message does not match the schema of its type"


class UnknownSettlementMethod(ProtocolError):
    """The settlement method id is not one this implementation knows (docs/settlement.md)."""

    code = "unknown_settlement_method"
    title = "Settlement method is not known"
    # The receiving supplier answers a settlement-offer with this dispute reason.
    dispute_reason: ClassVar[str] = "method-not-agreed"


class SettlementAmountMismatch(ProtocolError):
    """The offered amount is not what the method gives for the offered inputs."""

    code = "settlement_amount_mismatch"
    title = "Settlement amount does not follow from its inputs"
    dispute_reason: ClassVar[str] = "inputs-incorrect"

    def __init__(self, detail: str, *, offered_cents: int, expected_cents: int) -> None:
        super().__init__(detail)
        self.offered_cents = offered_cents
        self.expected_cents = expected_cents
