"""Wire formats of the registry API: request models, answer models and their rendering.

Names on the wire are camelCase (NL GOV API Design Rules); Python names are snake_case.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from protocol.identifiers import Gemeentecode, IsoCode, KvkNumber, Oin
from registry._store import ContractMatch, KeyRecord, ParticipantRecord

__all__ = [
    "Answer",
    "ContractCreate",
    "ContractCreated",
    "ContractedSupplierPublic",
    "EnrolmentCodeCreate",
    "EnrolmentCodeIssued",
    "EnrolmentCreate",
    "EntryChangeRequest",
    "GemeenteSummary",
    "GemeentenAssignment",
    "KeyPublic",
    "KeyRevocation",
    "KeySubmission",
    "ParticipantPublic",
    "SupplierCreate",
    "format_time",
    "render_contract_match",
    "render_key",
    "render_participant",
]

Endpoint = Annotated[
    str,
    Field(
        max_length=500,
        pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/]*)?$",
        description="Agent base URL; messages go to <endpoint>/v1/messages.",
    ),
]
ProtocolVersion = Annotated[str, Field(pattern=r"^[0-9]{1,4}\.[0-9]{1,4}$")]
MessageType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*([.\-][a-z0-9]+)*$", max_length=100)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class KeySubmission(_Model):
    """A public signing key with an optional validity window."""

    jwk: dict[str, Any]
    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None


class EnrolmentCreate(_Model):
    """First registration of an agent, with the one-time code the operator issued."""

    code: str = Field(min_length=8, max_length=200)
    oin: Oin
    endpoint: Endpoint
    protocol_versions: list[ProtocolVersion] = Field(min_length=1, max_length=10)
    message_types: list[MessageType] = Field(min_length=1, max_length=100)
    keys: list[KeySubmission] = Field(min_length=1, max_length=10)


class EntryChangeRequest(_Model):
    """A participant's own change to its entry; sent signed with one of its valid keys."""

    request_id: str = Field(pattern=r"^[A-Za-z0-9\-]{16,64}$")
    requested_at: AwareDatetime
    oin: Oin
    endpoint: Endpoint | None = None
    protocol_versions: list[ProtocolVersion] | None = Field(default=None, min_length=1)
    message_types: list[MessageType] | None = Field(default=None, min_length=1)
    add_keys: list[KeySubmission] = Field(default_factory=list, max_length=10)
    retire_keys: dict[str, AwareDatetime] = Field(default_factory=dict, max_length=10)
    revoke_keys: dict[str, Reason] = Field(default_factory=dict, max_length=10)


class EnrolmentCodeCreate(_Model):
    """Whom an enrolment code is for: a gemeente by code, or an onboarded supplier by OIN."""

    gemeentecode: Gemeentecode | None = None
    supplier_oin: Oin | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnrolmentCodeCreate:
        if (self.gemeentecode is None) == (self.supplier_oin is None):
            raise ValueError("give exactly one of gemeentecode and supplierOin")
        return self


class EnrolmentCodeIssued(_Model):
    """A one-time enrolment code; shown once, stored only as a hash."""

    code: str
    expires_at: datetime


class GemeentenAssignment(_Model):
    """The gemeentecodes a gemeente's agent serves: its own, and more for a regional service."""

    gemeentecodes: list[Gemeentecode] = Field(min_length=1, max_length=400)


class SupplierCreate(_Model):
    """A supplier to onboard."""

    oin: Oin
    kvk_number: KvkNumber
    name: str = Field(min_length=1, max_length=200)


class ContractCreate(_Model):
    """A gemeente's contract with a supplier for ISO 9999 prefixes."""

    gemeentecode: Gemeentecode
    supplier_oin: Oin
    iso_prefixes: list[IsoCode] = Field(min_length=1, max_length=100)
    valid_from: date
    valid_until: date | None = None
    preference: int = Field(default=1, ge=1, le=100)


class ContractCreated(_Model):
    """Identifier of a new contract."""

    contract_id: str


class KeyRevocation(_Model):
    """Operator revocation of a participant key."""

    reason: Reason
    revoked_at: AwareDatetime | None = None


class KeyPublic(_Model):
    """A published key with its validity."""

    jwk: dict[str, Any]
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    revocation_reason: str | None


class ParticipantPublic(_Model):
    """Resolution answer: where a participant's agent is and which keys it signs with."""

    kind: Literal["gemeente", "supplier"]
    name: str
    oin: str | None
    gemeentecode: str | None
    kvk_number: str | None
    endpoint: str | None
    protocol_versions: list[str]
    message_types: list[str]
    keys: list[KeyPublic]
    roles: list[str] = Field(description="The protocol roles the participant may play.")
    gemeentecodes: list[str] = Field(
        description="The gemeentecodes its agent serves (none for a supplier)."
    )


class ContractedSupplierPublic(_Model):
    """A supplier contracted for an ISO code on a date, with its preference."""

    contract_id: str
    oin: str
    name: str
    preference: int
    iso_prefix: str
    valid_from: date
    valid_until: date | None


class GemeenteSummary(_Model):
    """A gemeente in the list, enrolled or not."""

    gemeentecode: str
    name: str
    oin: str | None
    enrolled: bool


class Answer(_Model):
    """Signed envelope of every successful answer."""

    issued_at: str = Field(description="When the registry signed the answer (UTC, seconds).")
    max_age: int = Field(description="Seconds the answer may be used without asking again.")
    resource: str = Field(description="Path and query the answer is for.")
    data: Any


def format_time(moment: datetime | None) -> str | None:
    """RFC 3339 UTC time to the second, as used in every signed answer."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_key(key: KeyRecord) -> dict[str, Any]:
    return {
        "jwk": key.jwk,
        "notBefore": format_time(key.not_before),
        "notAfter": format_time(key.not_after),
        "revokedAt": format_time(key.revoked_at),
        "revocationReason": key.revocation_reason,
    }


def render_participant(record: ParticipantRecord, *, now: datetime) -> dict[str, Any]:
    """The participant with the keys that are valid now or announced for later."""
    return {
        "kind": record.kind,
        "name": record.name,
        "oin": record.oin,
        "gemeentecode": record.gemeentecode,
        "kvkNumber": record.kvk_number,
        "endpoint": record.endpoint,
        "protocolVersions": list(record.protocol_versions),
        "messageTypes": list(record.message_types),
        "keys": [render_key(key) for key in record.keys if key.published_at(now)],
        "roles": list(record.roles),
        "gemeentecodes": list(record.gemeentecodes),
    }


def render_contract_match(match: ContractMatch) -> dict[str, Any]:
    return {
        "contractId": match.contract_id,
        "oin": match.oin,
        "name": match.name,
        "preference": match.preference,
        "isoPrefix": match.iso_prefix,
        "validFrom": match.valid_from.isoformat(),
        "validUntil": match.valid_until.isoformat() if match.valid_until else None,
    }
