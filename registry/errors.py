"""Errors of the registry service and its clients, each with a stable machine code.

Every code maps to one RFC 9457 problem type, ``urn:meeverhuizen:problem:<code>`` with
underscores written as hyphens (see ``docs/registry.md``). The service answers with these types
and :class:`registry.client.RegistryClient` raises the same classes when it reads them back.
"""

from __future__ import annotations

from protocol.errors import ProblemError

__all__ = [
    "EndpointNotAllowed",
    "EnrolmentCodeInvalid",
    "InvalidOin",
    "InvalidPublicKey",
    "InvalidRegistryInput",
    "InvalidValidityWindow",
    "MessageTypeNotSupported",
    "NoContract",
    "OperatorCredentialRequired",
    "ParticipantExists",
    "ParticipantNotEnrolled",
    "ParticipantUnknown",
    "PrivateKeyMaterial",
    "RegistryClockSkew",
    "RegistryError",
    "RegistryKeyUnknown",
    "RegistryNotReady",
    "RegistryUnavailable",
    "ReportNotPermitted",
    "RequestReplayed",
    "SignedChangeRejected",
    "UnknownGemeentecode",
    "UntrustedAnswer",
    "error_for_code",
]


class RegistryError(ProblemError):
    """Base class: a registry lookup or write that could not be done."""

    code = "registry_error"
    title = "Registry error"
    status = 500


# Resolution (read side).


class ParticipantUnknown(RegistryError):
    code = "participant_unknown"
    title = "No participant with this gemeentecode or OIN exists"
    status = 404


class ParticipantNotEnrolled(RegistryError):
    code = "participant_not_enrolled"
    title = "Participant is known but its agent has not enrolled yet"
    status = 404


class MessageTypeNotSupported(RegistryError):
    code = "message_type_not_supported"
    title = "Participant's agent does not support this message type"
    status = 409


class NoContract(RegistryError):
    code = "no_contract"
    title = "Gemeente has no contracted supplier for this ISO code on this date"
    status = 404


class RegistryNotReady(RegistryError):
    code = "not_ready"
    title = "The registry is not ready: a readiness check fails"
    status = 503


class RegistryUnavailable(RegistryError):
    code = "registry_unavailable"
    title = "Registry is unreachable and no verified answer is fresh enough"
    status = 503


class UntrustedAnswer(RegistryError):
    code = "untrusted_answer"
    title = "Registry answer failed its signature or freshness check"
    status = 502


class RegistryClockSkew(UntrustedAnswer):
    """A correctly signed answer whose signed time is too far from this machine's clock."""

    code = "registry_clock_skew"
    title = "This machine's clock differs too much from the registry's signed time"
    status = 503


# Writes.


class InvalidRegistryInput(RegistryError):
    code = "invalid_registry_input"
    title = "Request is not valid for the registry"
    status = 400


class EndpointNotAllowed(InvalidRegistryInput):
    code = "endpoint_not_allowed"
    title = "Endpoint is not an https URL on a public address"


class InvalidOin(InvalidRegistryInput):
    code = "invalid_oin"
    title = "OIN is malformed or does not fit the participant"


class UnknownGemeentecode(InvalidRegistryInput):
    code = "unknown_gemeentecode"
    title = "Gemeentecode is not in the CBS list"


class InvalidPublicKey(InvalidRegistryInput):
    code = "invalid_public_key"
    title = "Key is not a valid public signing JWK"


class PrivateKeyMaterial(InvalidRegistryInput):
    code = "private_key_material"
    title = "Key set contains private key material; only public keys may be published"


class InvalidValidityWindow(InvalidRegistryInput):
    code = "invalid_validity_window"
    title = "Validity window ends before it starts"


class EnrolmentCodeInvalid(RegistryError):
    # One type for unknown, used and expired codes: do not tell a guesser which it was.
    code = "enrolment_code_invalid"
    title = "Enrolment code is unknown, used or expired"
    status = 403


class OperatorCredentialRequired(RegistryError):
    code = "operator_credential_required"
    title = "A valid operator credential is required"
    status = 401


class SignedChangeRejected(RegistryError):
    code = "signed_change_rejected"
    title = "Change is not signed by a currently valid key of this participant"
    status = 403


class ReportNotPermitted(RegistryError):
    code = "report_not_permitted"
    title = "The participant may not report as this kind of organisation"
    status = 403


class RequestReplayed(RegistryError):
    code = "request_replayed"
    title = "Signed request was already processed or is outside the allowed time window"
    status = 409


class ParticipantExists(RegistryError):
    code = "participant_exists"
    title = "A participant with this identifier already exists"
    status = 409


class RegistryKeyUnknown(RegistryError):
    code = "registry_key_unknown"
    title = "Participant has no key with this kid"
    status = 404


_BY_CODE: dict[str, type[RegistryError]] = {
    error.code: error
    for error in (
        EndpointNotAllowed,
        EnrolmentCodeInvalid,
        InvalidOin,
        InvalidPublicKey,
        InvalidRegistryInput,
        InvalidValidityWindow,
        MessageTypeNotSupported,
        NoContract,
        OperatorCredentialRequired,
        ParticipantExists,
        ParticipantNotEnrolled,
        ParticipantUnknown,
        PrivateKeyMaterial,
        RegistryKeyUnknown,
        RegistryNotReady,
        RegistryUnavailable,
        ReportNotPermitted,
        RequestReplayed,
        SignedChangeRejected,
        UnknownGemeentecode,
        UntrustedAnswer,
    )
}


def error_for_code(code: str) -> type[RegistryError]:
    """The error class for a machine code (hyphens or underscores); the base class if unknown."""
    return _BY_CODE.get(code.replace("-", "_"), RegistryError)
