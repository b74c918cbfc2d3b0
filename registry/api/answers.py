"""The shapes of the registry's answers, for its OpenAPI document.

Every successful answer is a signed envelope (``data``, ``issuedAt``, ``maxAge``,
``resource``); each route's envelope names the shape of its ``data``. Problems are RFC 9457
problem details with ``issuedAt`` and ``resource`` added. A shape lists what the registry sends
today; fields added later go into these models, and the document follows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.signing import SIGNATURE_HEADER
from registry.server_kit.api_rules import Problem
from registry.server_kit.openapi import ProblemSource, problem_responses

__all__ = [
    "SIGNED_ANSWER_HEADERS",
    "AuditEvent",
    "AuditEventsAnswer",
    "ContractAnswer",
    "ContractCreated",
    "ContractedSupplier",
    "ContractedSuppliersAnswer",
    "CountryMonitoring",
    "CountryMonitoringAnswer",
    "EnrolmentCodeAnswer",
    "EnrolmentCodeIssued",
    "FreshnessStatement",
    "GemeenteMonitoring",
    "GemeenteMonitoringAnswer",
    "GemeenteSummary",
    "GemeentenAnswer",
    "KeyAnswer",
    "KeysAnswer",
    "MonitoringFigures",
    "Participant",
    "ParticipantAnswer",
    "PublicJwk",
    "PublishedKey",
    "Readiness",
    "ReadinessAnswer",
    "ReadinessChecks",
    "RegistryProblem",
    "ReportAnswer",
    "ReportRecorded",
    "Status",
    "StatusAnswer",
    "answer_responses",
    "signed_request",
]

_TIME = "RFC 3339 UTC time to the second, e.g. 2025-02-10T10:15:30Z"
_UTC_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"


def _time(description: str) -> dict[str, Any]:
    return {"description": f"{description} ({_TIME}).", "pattern": _UTC_TIME}


def _optional_time(description: str) -> dict[str, Any]:
    return {"description": f"{description} ({_TIME}); null when none."}


class _Shape(BaseModel):
    # Answers may gain optional fields in a minor version: readers ignore what they do not know.
    model_config = ConfigDict(extra="allow")


class PublicJwk(_Shape):
    """A public signing key as a JWK (RFC 7517): Ed25519 (RFC 8037) or RSA of 2048 bits or more."""

    kty: Literal["OKP", "RSA"]
    kid: str = Field(description="RFC 7638 SHA-256 thumbprint, base64url")
    alg: Literal["EdDSA", "PS256"] | None = None
    use: Literal["sig"] | None = None
    crv: Literal["Ed25519"] | None = Field(default=None, description="OKP keys")
    x: str | None = Field(default=None, description="OKP keys: the public key, base64url")
    n: str | None = Field(default=None, description="RSA keys: the modulus, base64url")
    e: str | None = Field(default=None, description="RSA keys: the exponent, base64url")


class PublishedKey(_Shape):
    """A key with its validity as published: the newest version of the key."""

    jwk: PublicJwk
    not_before: str | None = Field(alias="notBefore", **_optional_time("Valid from"))
    not_after: str | None = Field(alias="notAfter", **_optional_time("Valid until (exclusive)"))
    revoked_at: str | None = Field(alias="revokedAt", **_optional_time("Revoked at"))
    revocation_reason: str | None = Field(alias="revocationReason", description="Why; or null")


class Participant(_Shape):
    """Where a participant's agent is, what it supports and the keys it signs with."""

    kind: Literal["gemeente", "supplier"]
    name: str
    oin: str | None = Field(description="OIN (20 digits); null for a gemeente not enrolled yet")
    gemeentecode: str | None = Field(description="CBS gemeentecode (4 digits); null for suppliers")
    kvk_number: str | None = Field(alias="kvkNumber", description="Suppliers; null otherwise")
    endpoint: str | None = Field(description="Agent base URL; null until it enrolls")
    protocol_versions: list[str] = Field(alias="protocolVersions")
    message_types: list[str] = Field(alias="messageTypes")
    keys: list[PublishedKey] = Field(description="Keys valid now or announced for later")
    roles: list[str] = Field(
        description="The roles the participant may send in (sender.role): departing-gemeente "
        "and receiving-gemeente for a gemeente's agent, supplier for a supplier's"
    )
    gemeentecodes: list[str] = Field(
        description="The gemeenten a gemeente's agent serves (its own, and a region's); empty "
        "for suppliers"
    )


class GemeenteSummary(_Shape):
    """A gemeente in the list, enrolled or not."""

    gemeentecode: str
    name: str
    oin: str | None
    enrolled: bool


class ContractedSupplier(_Shape):
    """A supplier contracted for an ISO 9999 code on a date."""

    contract_id: str = Field(alias="contractId")
    oin: str
    name: str
    preference: int = Field(ge=1, le=100, description="1 is the most preferred")
    iso_prefix: str = Field(alias="isoPrefix", description="The contract's matching prefix")
    valid_from: str = Field(alias="validFrom", json_schema_extra={"format": "date"})
    valid_until: str | None = Field(alias="validUntil", description="Date (RFC 3339), or null")


class EnrolmentCodeIssued(_Shape):
    """A one-time enrolment code; shown once, stored only as a hash."""

    code: str
    expires_at: str = Field(alias="expiresAt", **_time("The code's end"))


class ContractCreated(_Shape):
    """Identifier of a new contract."""

    contract_id: str = Field(alias="contractId")


class AuditEvent(_Shape):
    """One audited registry write."""

    recorded_at: str = Field(alias="recordedAt", **_time("When"))
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


class Status(_Shape):
    """The service is up."""

    status: Literal["ok"]


class ReadinessChecks(_Shape):
    database: Literal["ok"]


class Readiness(_Shape):
    """The service is ready: its database answers."""

    status: Literal["ready"]
    checks: ReadinessChecks


class MonitoringFigures(_Shape):
    """Counts over a month; a count that could show a number below 5 is null ("minder dan 5")."""

    organisations: int = Field(ge=0, description="How many organisations reported in the period")
    figures: dict[str, int | None] = Field(
        description="Each count by its dotted name in a daily report (e.g. "
        "handovers.departing.started); null when it is below 5, or when the organisations' "
        "counts below 5 in it add up to less than 5"
    )


class GemeenteMonitoring(_Shape):
    """The handovers of one gemeente in a month, as the agent that serves it reported them."""

    gemeentecode: str
    name: str
    month: str = Field(description="The month (YYYY-MM)", pattern=r"^[0-9]{4}-[0-9]{2}$")
    first_day: str = Field(alias="firstDay", json_schema_extra={"format": "date"})
    last_day: str = Field(alias="lastDay", json_schema_extra={"format": "date"})
    served_by: str | None = Field(
        alias="servedBy",
        description="The gemeente whose agent reports for this one; null when not enrolled",
    )
    gemeentecodes: list[str] = Field(description="Every gemeente the reported counts cover")
    counts: MonitoringFigures


class CountryMonitoring(_Shape):
    """The handovers of the whole country in a month: gemeenten and suppliers apart."""

    month: str = Field(description="The month (YYYY-MM)", pattern=r"^[0-9]{4}-[0-9]{2}$")
    first_day: str = Field(alias="firstDay", json_schema_extra={"format": "date"})
    last_day: str = Field(alias="lastDay", json_schema_extra={"format": "date"})
    gemeenten: MonitoringFigures
    suppliers: MonitoringFigures


class ReportRecorded(_Shape):
    """A daily report the registry stored."""

    oin: str
    day: str = Field(json_schema_extra={"format": "date"})


class _Envelope(_Shape):
    issued_at: str = Field(alias="issuedAt", **_time("When the registry signed the answer"))
    max_age: int = Field(
        alias="maxAge", ge=0, le=300, description="Seconds the answer may be used without asking"
    )
    resource: str = Field(description="Path and query of the request this answer is for")


class GemeentenAnswer(_Envelope):
    """All gemeenten."""

    data: list[GemeenteSummary]


class ParticipantAnswer(_Envelope):
    """One participant."""

    data: Participant


class ContractedSuppliersAnswer(_Envelope):
    """Contracted suppliers, most preferred first."""

    data: list[ContractedSupplier]


class KeysAnswer(_Envelope):
    """Keys of one participant."""

    data: list[PublishedKey]


class KeyAnswer(_Envelope):
    """One key after a change."""

    data: PublishedKey


class EnrolmentCodeAnswer(_Envelope):
    """A new enrolment code."""

    data: EnrolmentCodeIssued


class ContractAnswer(_Envelope):
    """A new contract."""

    data: ContractCreated


class AuditEventsAnswer(_Envelope):
    """Audit events, newest first."""

    data: list[AuditEvent]


class StatusAnswer(_Envelope):
    """The service is up."""

    data: Status


class ReadinessAnswer(_Envelope):
    """The service is ready."""

    data: Readiness


class GemeenteMonitoringAnswer(_Envelope):
    """One gemeente's counts over a period."""

    data: GemeenteMonitoring


class CountryMonitoringAnswer(_Envelope):
    """The country's counts over a period."""

    data: CountryMonitoring


class ReportAnswer(_Envelope):
    """The stored report."""

    data: ReportRecorded


class RegistryProblem(Problem):
    """RFC 9457 problem details, signed like every answer, with the time and the resource."""

    issued_at: str = Field(alias="issuedAt", **_time("When the registry signed the answer"))
    resource: str = Field(description="Path and query of the request this answer is for")


class FreshnessStatement(BaseModel):
    """The payload of the ``Registry-Freshness`` JWS a 304 answer carries."""

    etag: str = Field(description="The ETag of the cached answer this statement renews")
    issued_at: str = Field(alias="issuedAt", **_time("When the registry made the statement"))
    max_age: int = Field(alias="maxAge", ge=0, le=300, description="Seconds of renewed use")
    resource: str = Field(description="Path and query of the request")


_COMPACT_JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$"

SIGNED_ANSWER_HEADERS: dict[str, dict[str, Any]] = {
    "Digest": {
        "description": "SHA-256 of the exact body bytes (RFC 3230): SHA-256=<base64>.",
        "schema": {"type": "string", "pattern": r"^SHA-256=[A-Za-z0-9+/]{43}=$"},
    },
    SIGNATURE_HEADER: {
        "description": (
            "Detached JAdES compact JWS over the Digest header by the registry key (the trust "
            "anchor); NL GOV API Design Rules signing module. See docs/signing.md."
        ),
        "schema": {"type": "string", "pattern": _COMPACT_JWS},
    },
}

FRESHNESS_HEADER: dict[str, Any] = {
    "description": (
        "On a 304 only: a compact JWS (RFC 7515, not detached) by the registry key whose payload "
        "is the RFC 8785 form of a FreshnessStatement (components.schemas.FreshnessStatement). "
        "A client extends its cached answer only when the statement verifies, names the cached "
        "ETag and the same resource, and its issuedAt is fresh (docs/registry.md)."
    ),
    "schema": {"type": "string", "pattern": _COMPACT_JWS},
}


def answer_responses(
    answer: type[_Envelope], *problems: ProblemSource, status: int = 200
) -> dict[int | str, Any]:
    """A route's ``responses=``: its signed answer, its 304 (a GET) and its ``problems``."""
    success: dict[int | str, Any] = {
        status: {"model": answer, "description": answer.__doc__},
        **problem_responses(*problems),
    }
    if status == 200:
        success[200]["headers"] = {
            "ETag": {"description": "Strong ETag over data", "schema": {"type": "string"}},
            "Cache-Control": {"description": "max-age=N", "schema": {"type": "string"}},
        }
        success[304] = {
            "description": "Not modified: the cached answer with this ETag may be used again.",
            "headers": {
                "ETag": {"description": "The unchanged ETag", "schema": {"type": "string"}},
                "Registry-Freshness": FRESHNESS_HEADER,
            },
        }
    return success


def signed_request(schema: str) -> dict[str, Any]:
    """A signed write's ``openapi_extra=``: its signature headers and its body ``schema``.

    The route reads and verifies the exact signed bytes itself, so FastAPI does not describe
    the body; the request carries the signature headers (docs/registry.md, "Writes").
    """
    return {
        "parameters": [
            {
                "name": "Digest",
                "in": "header",
                "required": True,
                "description": "SHA-256 of the exact body bytes (RFC 3230): SHA-256=<base64>",
                "schema": {"type": "string"},
            },
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "Detached JAdES compact JWS over Digest, by a valid participant key",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
    }
