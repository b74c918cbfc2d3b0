"""Protocol v1 message models: the envelope and one body per message type.

On the wire every name is camelCase and unknown fields are rejected at every level; in Python the
same fields are snake_case. Datetimes must carry an offset and are normalised to UTC; amounts are
whole euro cents. ``docs/glossary.md`` maps the Dutch domain terms to these names.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal, Self, TypeVar, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveInt,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from protocol.errors import InvalidMessage, UnsupportedVersion
from protocol.identifiers import Bsn, Gemeentecode, IsoCode, Oin

__all__ = [
    "BODY_MODELS",
    "INFORMATIVE_MESSAGE_TYPES",
    "MESSAGE_ROUTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "Address",
    "AlternativeDelivered",
    "Client",
    "ClientRepresentative",
    "ConsentScope",
    "ConsentWithdrawn",
    "ContactPreferences",
    "ContinuedUse",
    "DataKind",
    "DepartureNotice",
    "Device",
    "DeviceDecision",
    "DeviceDecisionItem",
    "DeviceProgress",
    "DeviceReference",
    "DeviceTransfer",
    "DossierCancelled",
    "DossierOffer",
    "DossierRequest",
    "FunctionalInformation",
    "HandoverProgress",
    "Indicatie",
    "Message",
    "MessageBody",
    "MessageType",
    "Ownership",
    "Party",
    "PersonName",
    "Receipt",
    "Representative",
    "Role",
    "ServiceEvent",
    "SettlementAccept",
    "SettlementDispute",
    "SettlementInputs",
    "SettlementOffer",
    "SupplierReference",
    "SupplierStatus",
    "TakeoverOrder",
    "TransferPrice",
    "WireModel",
    "message_to_json",
    "parse_message",
]

PROTOCOL_VERSION: Final = "1.0"
SUPPORTED_MAJOR_VERSION: Final = 1

Role = Literal[
    "departing-gemeente", "receiving-gemeente", "departing-supplier", "receiving-supplier"
]
DataKind = Literal["identity", "address", "devices", "indicatie", "functional-information"]
Ownership = Literal["huur", "bruikleen", "eigendom", "pgb"]
MessageType = Literal[
    "alternative-delivered",
    "consent-withdrawn",
    "continued-use",
    "departure-notice",
    "device-decision",
    "device-transfer",
    "dossier-cancelled",
    "dossier-offer",
    "dossier-request",
    "handover-progress",
    "receipt",
    "settlement-accept",
    "settlement-dispute",
    "settlement-offer",
    "supplier-status",
    "takeover-order",
]
MESSAGE_TYPES: tuple[str, ...] = get_args(MessageType)
# Messages no later message depends on: a sender leaves them out for a receiver that does not
# list them in the registry, and they never hold up the messages after them (protocol.md 11).
INFORMATIVE_MESSAGE_TYPES: frozenset[str] = frozenset({"handover-progress"})

_Item = TypeVar("_Item", bound=Hashable)


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _unique(items: tuple[_Item, ...]) -> tuple[_Item, ...]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


# RFC 3339 date-time with a mandatory offset, so that schema validators without a date-time
# format checker refuse naive datetimes just like the models do.
_RFC3339_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(json_schema_extra={"pattern": _RFC3339_DATETIME}),
]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LocalId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
        description="Identifier assigned by the sending organisation, stable over the dossier.",
    ),
]
# Bounds keep every integer far inside I-JSON's exact range (RFC 7493 section 2.2) and a database
# BIGINT: no device or settlement comes near 100 million euro.
_MAX_CENTS = 10_000_000_000
Cents = Annotated[
    NonNegativeInt, Field(le=_MAX_CENTS, description="Amount in whole euro cents (at most 10^10).")
]
UniqueDataKinds = Annotated[
    tuple[DataKind, ...], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})
]
UniqueLocalIds = Annotated[
    tuple[LocalId, ...], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})
]


def _title(field_name: str, _info: object) -> str:
    return field_name.replace("_", " ").capitalize()


class WireModel(BaseModel):
    """Base of every wire model: frozen, camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        field_title_generator=_title,
        frozen=True,
        validate_by_alias=True,
        validate_by_name=True,
    )


# --- shared parts -------------------------------------------------------------------------------


class Party(WireModel):
    """A sending or receiving organisation, identified by OIN, and its role in this move."""

    oin: Oin
    role: Role


class PersonName(WireModel):
    """A person's name as in the BRP: initials or given names, surname prefix and surname."""

    given_names: ShortText | None = None
    initials: ShortText | None = None
    surname_prefix: ShortText | None = None
    surname: ShortText


class Address(WireModel):
    """A Dutch residential address (BRP verblijfplaats)."""

    street: ShortText
    house_number: Annotated[PositiveInt, Field(le=99_999)]  # BRP huisnummer: at most 5 digits
    house_letter: Annotated[str, Field(pattern=r"^[A-Za-z]$")] | None = None
    house_number_addition: Annotated[str, Field(min_length=1, max_length=4)] | None = None
    postal_code: Annotated[str, Field(pattern=r"^[1-9][0-9]{3}[A-Z]{2}$")]
    city: ShortText
    gemeentecode: Gemeentecode


ContactChannel = Literal["phone", "email", "letter", "sms"]


class ContactPreferences(WireModel):
    """How the client (or representative) wants to be contacted, most preferred channel first."""

    # Field before the validator: the length then describes the array (minItems) in the schema.
    channels: Annotated[
        tuple[ContactChannel, ...],
        Field(min_length=1, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_unique),
    ]
    phone_number: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{6,20}$")] | None = None
    email_address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "nl"
    remarks: Text | None = None

    @model_validator(mode="after")
    def _channels_are_reachable(self) -> Self:
        if ("phone" in self.channels or "sms" in self.channels) and self.phone_number is None:
            raise ValueError("channel phone or sms needs phoneNumber")
        if "email" in self.channels and self.email_address is None:
            raise ValueError("channel email needs emailAddress")
        return self


RepresentativeKind = Literal["authorised-person", "mentor", "guardian", "legal-representative"]


class Representative(WireModel):
    """Someone who acts for the client: gemachtigde, mentor, curator or legal representative."""

    kind: RepresentativeKind
    name: PersonName
    contact: ContactPreferences


class ClientRepresentative(Representative):
    """The client's representative between the gemeenten: with their own address for letters.

    Suppliers get a :class:`Representative` without it (data minimisation, section 5.1).
    """

    address: Address | None = None


class Client(WireModel):
    """The person whose devices move along."""

    bsn: Bsn
    name: PersonName
    new_address: Address
    move_date: date
    contact_preferences: ContactPreferences
    representative: ClientRepresentative | None = None


ConsentChannel = Literal["online", "phone", "paper", "in-person"]


class ConsentScope(WireModel):
    """The consent that covers this sending: who gave it, when, how, for which data and devices."""

    consent_id: UUID
    granted_at: UtcDatetime
    channel: ConsentChannel
    granted_by: Literal["client", "representative"]
    data_kinds: UniqueDataKinds = Field(min_length=1)
    device_ids: UniqueLocalIds = Field(min_length=1)


class SupplierReference(WireModel):
    """A supplier, identified by OIN, with its trade name."""

    oin: Oin
    name: ShortText


ServiceKind = Literal["delivery", "maintenance", "repair", "inspection", "adjustment"]


class ServiceEvent(WireModel):
    """One entry of a device's service history."""

    service_date: date
    kind: ServiceKind
    description: Text


class Device(WireModel):
    """An assistive device as it is provided now."""

    device_id: LocalId
    iso_code: IsoCode
    description: Text
    brand: ShortText | None = None
    model: ShortText | None = None
    serial_number: ShortText | None = None
    custom_made: bool
    custom_specifications: Text | None = None
    # Verhuisconvenant: only movable (niet aard- en nagelvast) devices move along.
    movable: bool
    ownership: Ownership
    supplier: SupplierReference | None = None
    contract_reference: ShortText | None = None
    purchase_date: date | None = None
    purchase_price_cents: Cents | None = None
    service_history: tuple[ServiceEvent, ...] = ()


class Indicatie(WireModel):
    """The indicatie and beschikking under which the devices are provided."""

    legal_basis: ShortText
    beschikking_reference: ShortText
    decision_date: date
    start_date: date
    end_date: date | None = None
    device_ids: UniqueLocalIds = Field(min_length=1)

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self


class FunctionalInformation(WireModel):
    """Functional or medical information; only sent with consent for functional-information."""

    summary: Text
    limitations: tuple[Text, ...] = ()
    medical_details: Text | None = None


class DeviceReference(WireModel):
    """A device named by the departing side's identifier and contract."""

    device_id: LocalId
    iso_code: IsoCode
    serial_number: ShortText | None = None
    contract_reference: ShortText | None = None
    # Optional: settlement inputs for the departing supplier (docs/settlement.md).
    purchase_date: date | None = None
    purchase_price_cents: Cents | None = None
    # Optional: bruikleen means the gemeente owns the device; its supplier only maintains it,
    # so no takeover price is settled between the suppliers (docs/settlement.md).
    ownership: Ownership | None = None


# --- bodies -------------------------------------------------------------------------------------


class _Body(WireModel):
    message_type: ClassVar[str]


def _require_consent(consent: ConsentScope, kind: DataKind, what: str) -> None:
    if kind not in consent.data_kinds:
        raise ValueError(f"{what} is present but the consent does not cover {kind!r}")


class DossierOffer(_Body):
    """Departing gemeente -> receiving gemeente: the dossier, sent under the client's consent."""

    message_type = "dossier-offer"

    client: Client
    consent: ConsentScope
    departing_gemeentecode: Gemeentecode
    devices: tuple[Device, ...] = Field(min_length=1)
    indicatie: Indicatie | None = None
    urgent: bool
    urgency_reason: Text | None = None
    functional_information: FunctionalInformation | None = None

    @model_validator(mode="after")
    def _covered_by_consent(self) -> Self:
        # Verhuisconvenant 2021 principle 1: data moves only after the client agrees.
        _require_consent(self.consent, "identity", "client identity")
        _require_consent(self.consent, "address", "client.newAddress")
        _require_consent(self.consent, "devices", "devices")
        if self.indicatie is not None:
            _require_consent(self.consent, "indicatie", "indicatie")
        if self.functional_information is not None:
            _require_consent(self.consent, "functional-information", "functionalInformation")
        outside = [d.device_id for d in self.devices if d.device_id not in self.consent.device_ids]
        if outside:
            raise ValueError(f"devices without consent: {', '.join(outside)}")
        return self

    @model_validator(mode="after")
    def _devices_unique(self) -> Self:
        _unique(tuple(device.device_id for device in self.devices))
        return self


class DossierRequest(_Body):
    """Receiving gemeente -> departing gemeente: asks for the dossier of someone who moved in."""

    message_type = "dossier-request"

    bsn: Bsn
    move_date: date
    previous_gemeentecode: Gemeentecode
    # The address in the receiving gemeente (BRP), so the departing side can build the offer.
    new_address: Address | None = None


ExceptionReason = Literal[
    "not-movable",
    "client-owned",
    "not-in-assortment",
    "unsafe-or-worn",
    "needs-changed",
    "wlz-institution",
    "other",
]


FollowUp = Literal["supplier-order", "gemeente-task"]
TransferPrice = Literal["free", "residual-value"]


class DeviceDecisionItem(WireModel):
    """The receiving gemeente's decision on one device: take over, or an exception with reasons."""

    device_id: LocalId
    outcome: Literal["take-over", "exception"]
    reason_code: ExceptionReason | None = None
    reason_text: Text | None = None
    alternative_offered: Text | None = None
    # Optional: the receiving gemeente's supplier that takes a rented device over, so the
    # departing gemeente can name it in its departure notice (settlement between suppliers).
    receiving_supplier: SupplierReference | None = None
    # Optional: who acts next for this device at the receiving gemeente: its supplier, on an
    # order, or a person of the gemeente, on a task (docs/protocol.md, section 5).
    follow_up: FollowUp | None = None
    # Optional, bruikleen take-over only: what the receiving gemeente pays for the ownership of
    # a device the departing gemeente lends (docs/protocol.md, device transfer).
    transfer_price: TransferPrice | None = None

    @model_validator(mode="after")
    def _exception_is_explained(self) -> Self:
        # Verhuisconvenant principle 2: an exception is told actively, with reasons.
        explained = (self.reason_code, self.reason_text, self.alternative_offered)
        if self.outcome == "exception" and None in explained:
            raise ValueError("an exception needs reasonCode, reasonText and alternativeOffered")
        if self.outcome == "take-over" and self.reason_code is not None:
            raise ValueError("a take-over has no reasonCode")
        if self.outcome == "exception" and self.receiving_supplier is not None:
            raise ValueError("an exception has no receivingSupplier")
        if self.outcome == "exception" and self.transfer_price is not None:
            raise ValueError("an exception has no transferPrice")
        return self


class DeviceDecision(_Body):
    """Receiving gemeente -> departing gemeente: the decision per offered device."""

    message_type = "device-decision"

    decisions: tuple[DeviceDecisionItem, ...] = Field(min_length=1)
    effective_date: date
    provision_end_date: date | None = None
    # Optional, on a later decision only: when the receiving gemeente revised it. The receiver
    # applies the decision with the latest revisedAt; an older one changes nothing
    # (docs/protocol.md, section 5).
    revised_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _one_decision_per_device(self) -> Self:
        _unique(tuple(decision.device_id for decision in self.decisions))
        return self


class TakeoverOrder(_Body):
    """Receiving gemeente -> supplier: take over these devices (no indicatie, no medical data)."""

    message_type = "takeover-order"

    order_id: UUID
    client_name: PersonName
    address: Address
    contact_preferences: ContactPreferences
    representative: Representative | None = None
    move_date: date
    devices: tuple[Device, ...] = Field(min_length=1)
    departing_supplier: SupplierReference | None = None
    # Normenkader 2020: the supplier contacts the client within 5 working days.
    contact_before: date
    urgent: bool


class DepartureNotice(_Body):
    """Departing gemeente -> its supplier: these devices leave the contract."""

    message_type = "departure-notice"

    devices: tuple[DeviceReference, ...] = Field(min_length=1)
    effective_date: date
    receiving_gemeentecode: Gemeentecode
    receiving_supplier: SupplierReference | None = None


SupplierStatusCode = Literal[
    "received",
    "client-contacted",
    "taken-over",
    "inspected",
    "replaced",
    "problem",
    "refused",
]
SupplierReason = Literal[
    "client-unreachable",
    "device-not-found",
    "device-unsafe",
    "not-contracted",
    "no-capacity",
    "other",
]


class SupplierStatus(_Body):
    """Supplier -> its gemeente: progress of a takeover order, per order or per device."""

    message_type = "supplier-status"

    order_id: UUID
    device_id: LocalId | None = None
    status: SupplierStatusCode
    occurred_at: UtcDatetime
    reason_code: SupplierReason | None = None
    reason_text: Text | None = None

    @model_validator(mode="after")
    def _problem_is_explained(self) -> Self:
        if self.status in ("problem", "refused") and self.reason_code is None:
            raise ValueError(f"status {self.status!r} needs a reasonCode")
        return self


MaintenanceState = Literal["good", "fair", "poor"]


ProgressState = Literal[
    "contact-planned",
    "client-contacted",
    "taken-over",
    "contact-overdue",
    "problem",
    "refused",
]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{3,20}$")]
# What each state of a device's progress must say: the date it is about, and who acts next.
_PROGRESS_RULES: Final[Mapping[str, tuple[str | None, FollowUp | None]]] = {
    "contact-planned": ("contact_before", "supplier-order"),
    "client-contacted": ("contacted_on", "supplier-order"),
    "taken-over": ("taken_over_on", None),
    "contact-overdue": ("contact_before", "gemeente-task"),
    "problem": (None, "gemeente-task"),
    "refused": (None, "gemeente-task"),
}


class DeviceProgress(WireModel):
    """Where one device taken over stands at the receiving gemeente, and who acts next."""

    device_id: LocalId
    state: ProgressState
    # Who acts next: the supplier on its order, or a person of the receiving gemeente on a
    # task; absent once the device is taken over (docs/protocol.md, section 8.11).
    follow_up: FollowUp | None = None
    supplier: SupplierReference | None = None
    supplier_phone: Phone | None = None
    contact_before: date | None = None
    contacted_on: date | None = None
    taken_over_on: date | None = None
    reason_code: SupplierReason | None = None
    # When the receiving gemeente's view of the device changed: the latest per device wins.
    changed_at: UtcDatetime

    @model_validator(mode="after")
    def _state_is_complete(self) -> Self:
        dated, follow_up = _PROGRESS_RULES[self.state]
        if dated is not None and getattr(self, dated) is None:
            raise ValueError(f"state {self.state!r} needs {to_camel(dated)}")
        if self.follow_up != follow_up:
            expected = f"followUp {follow_up!r}" if follow_up else "no followUp"
            raise ValueError(f"state {self.state!r} has {expected}")
        if self.state in ("problem", "refused") and self.reason_code is None:
            raise ValueError(f"state {self.state!r} needs a reasonCode")
        if self.state != "refused" and self.supplier is None:
            raise ValueError(f"state {self.state!r} needs the supplier")
        return self


class HandoverProgress(_Body):
    """Receiving gemeente -> departing gemeente: how far the takeover of each device is.

    Minimal data: device ids, dates, states and the supplier; no BSN and no client data (the
    departing gemeente has them).
    """

    message_type = "handover-progress"

    devices: tuple[DeviceProgress, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_state_per_device(self) -> Self:
        _unique(tuple(device.device_id for device in self.devices))
        return self


class SettlementInputs(WireModel):
    """Every input of the takeover price calculation, so both suppliers can recompute it."""

    purchase_price_cents: Cents
    purchase_date: date
    transfer_date: date
    economic_lifetime_months: Annotated[PositiveInt, Field(le=1200)]  # at most 100 years
    floor_cents: Cents | None = None
    floor_basis_points: Annotated[int, Field(ge=0, le=10_000)] | None = None
    maintenance_state: MaintenanceState

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.floor_cents is None) == (self.floor_basis_points is None):
            raise ValueError("give exactly one of floorCents and floorBasisPoints")
        if self.transfer_date < self.purchase_date:
            raise ValueError("transferDate is before purchaseDate")
        return self


SettlementMethod = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]+(-[a-z0-9]+)*-v[0-9]+$",
        description="Versioned calculation method, e.g. linear-depreciation-v1.",
    ),
]


class SettlementOffer(_Body):
    """Supplier -> supplier: the takeover price of one device and how it was calculated."""

    message_type = "settlement-offer"

    settlement_id: UUID
    device_id: LocalId
    method: SettlementMethod
    inputs: SettlementInputs
    amount_cents: Cents


class SettlementAccept(_Body):
    """Supplier -> supplier: the offered amount is accepted."""

    message_type = "settlement-accept"

    settlement_id: UUID
    device_id: LocalId
    amount_cents: Cents


DisputeReason = Literal["inputs-incorrect", "method-not-agreed", "device-condition", "other"]


class SettlementDispute(_Body):
    """Supplier -> supplier: the offered amount is disputed, optionally with a counter amount."""

    message_type = "settlement-dispute"

    settlement_id: UUID
    device_id: LocalId
    reason_code: DisputeReason
    reason_text: Text
    counter_amount_cents: Cents | None = None


class DeviceTransfer(_Body):
    """Departing gemeente -> receiving gemeente: the ownership of a bruikleen device moves."""

    message_type = "device-transfer"

    transfer_id: UUID
    device: DeviceReference
    transfer_date: date
    # Residual value only when both gemeenten said so (the decision's transferPrice and the
    # departing gemeente's own setting); otherwise free and without method or inputs.
    price: TransferPrice
    amount_cents: Cents
    method: SettlementMethod | None = None
    inputs: SettlementInputs | None = None

    @model_validator(mode="after")
    def _price_is_explained(self) -> Self:
        if self.price == "free" and (self.amount_cents or self.method or self.inputs):
            raise ValueError("a free transfer has amountCents 0 and no method or inputs")
        if self.price == "residual-value" and (self.method is None or self.inputs is None):
            raise ValueError("a residual-value transfer needs method and inputs")
        return self


class ContinuedUse(_Body):
    """Departing gemeente -> its supplier: leave these devices with the client for now.

    The receiving gemeente made an exception and provides an alternative. Until it is
    delivered the client keeps the device; ``alternativeDeliveredOn`` says it has been, and the
    device may then be collected.
    """

    message_type = "continued-use"

    devices: tuple[DeviceReference, ...] = Field(min_length=1)
    receiving_gemeentecode: Gemeentecode
    reason_text: Text
    alternative: Text
    alternative_delivered_on: date | None = None


class AlternativeDelivered(_Body):
    """Receiving gemeente -> departing gemeente: the alternative for an excepted device is there."""

    message_type = "alternative-delivered"

    device_id: LocalId
    delivered_on: date


class ConsentWithdrawn(_Body):
    """The client withdrew (part of) the consent: stop processing and delete what was received."""

    message_type = "consent-withdrawn"

    consent_id: UUID
    withdrawn_at: UtcDatetime
    entire_consent: bool
    data_kinds: UniqueDataKinds = ()
    device_ids: UniqueLocalIds = ()
    instruction: Literal["stop-and-delete"] = "stop-and-delete"

    @model_validator(mode="after")
    def _says_what(self) -> Self:
        if not self.entire_consent and not (self.data_kinds or self.device_ids):
            raise ValueError("a partial withdrawal names dataKinds or deviceIds")
        return self


CancelReason = Literal["move-cancelled", "move-corrected", "client-deceased", "other"]


class DossierCancelled(_Body):
    """The dossier is void (move cancelled or corrected, client died), or only some devices."""

    message_type = "dossier-cancelled"

    reason: Literal[CancelReason, "decision-changed"]
    reason_text: Text | None = None
    # Optional, receiving gemeente -> its supplier only: just these devices stop, because the
    # gemeente changed its decision for them; the rest of the dossier goes on (section 5).
    device_ids: tuple[LocalId, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _other_is_explained(self) -> Self:
        if self.reason == "other" and self.reason_text is None:
            raise ValueError("reason 'other' needs reasonText")
        if (self.reason == "decision-changed") != (self.device_ids is not None):
            raise ValueError("deviceIds goes with reason 'decision-changed', and only with it")
        if self.device_ids is not None:
            _unique(self.device_ids)
        return self


class Receipt(_Body):
    """Technical receipt: which message arrived and the digest of the exact bytes received."""

    message_type = "receipt"

    received_message_id: UUID
    # Same form as the RFC 3230 Digest header the message travelled with.
    body_digest: Annotated[str, Field(pattern=r"^SHA-256=[A-Za-z0-9+/]{43}=$")]
    received_at: UtcDatetime


_BODY_MODELS: Final[tuple[type[_Body], ...]] = (
    AlternativeDelivered,
    ConsentWithdrawn,
    ContinuedUse,
    DepartureNotice,
    DeviceDecision,
    DeviceTransfer,
    DossierCancelled,
    DossierOffer,
    DossierRequest,
    HandoverProgress,
    Receipt,
    SettlementAccept,
    SettlementDispute,
    SettlementOffer,
    SupplierStatus,
    TakeoverOrder,
)
BODY_MODELS: Final[Mapping[str, type[_Body]]] = {
    model.message_type: model for model in _BODY_MODELS
}

# --- routes -------------------------------------------------------------------------------------

_SUPPLIERS: Final = (
    ("departing-supplier", "receiving-supplier"),
    ("receiving-supplier", "departing-supplier"),
)
_STOP_NOTICES: Final = (
    ("departing-gemeente", "receiving-gemeente"),
    ("receiving-gemeente", "departing-gemeente"),
    ("departing-gemeente", "departing-supplier"),
    ("receiving-gemeente", "receiving-supplier"),
)
_FORWARD_ROUTES: dict[str, frozenset[tuple[Role, Role]]] = {
    "dossier-offer": frozenset({("departing-gemeente", "receiving-gemeente")}),
    "dossier-request": frozenset({("receiving-gemeente", "departing-gemeente")}),
    "device-decision": frozenset({("receiving-gemeente", "departing-gemeente")}),
    "takeover-order": frozenset({("receiving-gemeente", "receiving-supplier")}),
    "departure-notice": frozenset({("departing-gemeente", "departing-supplier")}),
    "device-transfer": frozenset({("departing-gemeente", "receiving-gemeente")}),
    "continued-use": frozenset({("departing-gemeente", "departing-supplier")}),
    "alternative-delivered": frozenset({("receiving-gemeente", "departing-gemeente")}),
    "handover-progress": frozenset({("receiving-gemeente", "departing-gemeente")}),
    "supplier-status": frozenset(
        {("receiving-supplier", "receiving-gemeente"), ("departing-supplier", "departing-gemeente")}
    ),
    "settlement-offer": frozenset(_SUPPLIERS),
    "settlement-accept": frozenset(_SUPPLIERS),
    "settlement-dispute": frozenset(_SUPPLIERS),
    "consent-withdrawn": frozenset(_STOP_NOTICES),
    "dossier-cancelled": frozenset(_STOP_NOTICES),
}
# A receipt goes back along any route a message can come in on.
MESSAGE_ROUTES: Final[Mapping[str, frozenset[tuple[Role, Role]]]] = {
    **_FORWARD_ROUTES,
    "receipt": frozenset(
        (receiver, sender) for routes in _FORWARD_ROUTES.values() for sender, receiver in routes
    ),
}

# --- envelope -----------------------------------------------------------------------------------

# The body's model is chosen by the envelope's messageType; parse_message sets it while validating.
_DECLARED_TYPE: ContextVar[str | None] = ContextVar("_DECLARED_TYPE", default=None)


def _body_tag(value: Any) -> str | None:
    if isinstance(value, _Body):
        return value.message_type
    return _DECLARED_TYPE.get()


MessageBody = Annotated[
    Annotated[AlternativeDelivered, Tag("alternative-delivered")]
    | Annotated[ConsentWithdrawn, Tag("consent-withdrawn")]
    | Annotated[ContinuedUse, Tag("continued-use")]
    | Annotated[DepartureNotice, Tag("departure-notice")]
    | Annotated[DeviceDecision, Tag("device-decision")]
    | Annotated[DeviceTransfer, Tag("device-transfer")]
    | Annotated[DossierCancelled, Tag("dossier-cancelled")]
    | Annotated[DossierOffer, Tag("dossier-offer")]
    | Annotated[DossierRequest, Tag("dossier-request")]
    | Annotated[HandoverProgress, Tag("handover-progress")]
    | Annotated[Receipt, Tag("receipt")]
    | Annotated[SettlementAccept, Tag("settlement-accept")]
    | Annotated[SettlementDispute, Tag("settlement-dispute")]
    | Annotated[SettlementOffer, Tag("settlement-offer")]
    | Annotated[SupplierStatus, Tag("supplier-status")]
    | Annotated[TakeoverOrder, Tag("takeover-order")],
    Discriminator(
        _body_tag,
        custom_error_type="body_type_unknown",
        custom_error_message="body cannot be checked: messageType is missing or unknown",
    ),
]


class Message(WireModel):
    """The envelope every protocol message travels in."""

    message_id: UUID
    dossier_id: UUID = Field(description="Conversation id shared by every message of one move.")
    message_type: MessageType
    protocol_version: Annotated[str, Field(pattern=r"^1\.(0|[1-9][0-9]*)$")] = PROTOCOL_VERSION
    sender: Party
    receiver: Party
    created_at: UtcDatetime
    in_reply_to: UUID | None = None
    body: MessageBody

    @model_validator(mode="after")
    def _body_matches_type(self) -> Self:
        if self.body.message_type != self.message_type:
            raise ValueError(
                f"body is a {self.body.message_type} body but messageType is {self.message_type}"
            )
        return self

    @model_validator(mode="after")
    def _route_allowed(self) -> Self:
        route = (self.sender.role, self.receiver.role)
        if route not in MESSAGE_ROUTES[self.message_type]:
            raise ValueError(f"a {route[0]} may not send {self.message_type} to a {route[1]}")
        return self


# --- parsing and serialising --------------------------------------------------------------------

_READABLE_ERRORS: Final = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
    "timezone_aware": "datetime needs a timezone offset (RFC 3339)",
}


@contextmanager
def _declared_type(message_type: str | None) -> Iterator[None]:
    token = _DECLARED_TYPE.set(message_type)
    try:
        yield
    finally:
        _DECLARED_TYPE.reset(token)


def _path(error: ErrorDetails) -> str:
    location = list(error["loc"])
    # A discriminated union puts the tag after "body"; the wire has no such level.
    if len(location) > 1 and location[0] == "body" and location[1] in MESSAGE_TYPES:
        del location[1]
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "(message)"


def _describe(error: ErrorDetails) -> str:
    reason = _READABLE_ERRORS.get(error["type"], error["msg"])
    return f"{_path(error)}: {reason.removeprefix('Value error, ')}"


def _check_version(document: Mapping[str, Any]) -> None:
    version = document.get("protocolVersion")
    if not isinstance(version, str):
        return
    major, separator, minor = version.partition(".")
    if separator and major.isdigit() and minor.isdigit() and int(major) != SUPPORTED_MAJOR_VERSION:
        raise UnsupportedVersion(
            f"protocolVersion {version} is not supported; this implementation speaks "
            f"{SUPPORTED_MAJOR_VERSION}.x"
        )


def parse_message(document: Mapping[str, Any], *, text: bytes | None = None) -> Message:
    """Validate a decoded JSON document as a protocol message.

    ``text``: the exact JSON the document was read from (``protocol.read_json``), validated
    as it is instead of written out again.

    Raises ``UnsupportedVersion`` when the major protocol version is not 1 and ``InvalidMessage``
    otherwise, with every failing field path (camelCase, as on the wire) and its reason.
    """
    if not isinstance(document, Mapping):
        raise InvalidMessage("(message): a message is a JSON object")
    _check_version(document)
    declared = document.get("messageType")
    if text is None:
        try:
            text = json.dumps(document, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidMessage(f"(message): not a JSON document: {exc}") from exc
    # The version has a default for Python callers, but on the wire it is required.
    reasons = (
        [] if "protocolVersion" in document else ["protocolVersion: required field is missing"]
    )
    with _declared_type(
        declared if isinstance(declared, str) and declared in BODY_MODELS else None
    ):
        try:
            # Strict JSON mode: no "5" for 5, no number for a date; only wire (camelCase) names.
            message = Message.model_validate_json(text, strict=True, by_alias=True, by_name=False)
        except ValidationError as exc:
            reasons.extend(_describe(error) for error in exc.errors(include_url=False))
            raise InvalidMessage("; ".join(reasons)) from exc
    if reasons:
        raise InvalidMessage("; ".join(reasons))
    return message


def message_to_json(message: Message) -> dict[str, Any]:
    """Return the wire form of ``message``: camelCase, JSON types, absent optionals left out."""
    document: dict[str, Any] = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    return document
