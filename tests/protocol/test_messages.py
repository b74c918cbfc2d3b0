"""Message models: round trip, strictness, consent rules, routes and readable errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from protocol.errors import InvalidMessage, UnsupportedVersion
from protocol.messages import (
    MESSAGE_ROUTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    DossierRequest,
    Message,
    Party,
    Receipt,
    message_to_json,
    parse_message,
)
from tests.conftest import REPOSITORY

EXAMPLES = REPOSITORY / "docs" / "examples"


def _example(message_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (EXAMPLES / f"{message_type}.json").read_text(encoding="utf-8")
    )
    return document


def _rejected(document: Any) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(document)
    return caught.value.detail


def _object_paths(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path in ``node`` that leads to a JSON object."""
    found = []
    if isinstance(node, dict):
        found.append(path)
        for key, value in node.items():
            found.extend(_object_paths(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_object_paths(value, (*path, index)))
    return found


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_example_round_trips(message_type: str) -> None:
    document = _example(message_type)
    message = parse_message(document)
    assert message.message_type == message_type
    assert message.protocol_version == PROTOCOL_VERSION
    assert message_to_json(message) == document
    assert parse_message(message_to_json(message)) == message


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_unknown_field_is_rejected_at_every_level(message_type: str) -> None:
    document = _example(message_type)
    for path in _object_paths(document):
        changed = copy.deepcopy(document)
        _at(changed, path)["surpriseField"] = 1
        detail = _rejected(changed)
        assert "surpriseField: unknown field" in detail, (path, detail)


def test_error_detail_names_the_wire_path() -> None:
    document = _example("dossier-offer")
    document["body"]["devices"][1]["isoCode"] = "181210"
    document["body"]["client"]["bsn"] = "999993654"
    detail = _rejected(document)
    assert "body.devices[1].isoCode: String should match pattern" in detail
    assert "body.client.bsn: not a valid BSN" in detail


def test_snake_case_names_are_not_accepted_on_the_wire() -> None:
    document = _example("dossier-request")
    document["message_id"] = document.pop("messageId")
    detail = _rejected(document)
    assert "messageId: required field is missing" in detail
    assert "message_id: unknown field" in detail


def test_naive_datetime_is_rejected() -> None:
    document = _example("receipt")
    document["createdAt"] = "2025-02-10T10:15:02"
    assert "createdAt: datetime needs a timezone offset" in _rejected(document)


def test_datetime_is_normalised_to_utc() -> None:
    document = _example("receipt")
    document["body"]["receivedAt"] = "2025-02-10T11:15:02+01:00"
    message = parse_message(document)
    assert isinstance(message.body, Receipt)
    assert message.body.received_at == datetime(2025, 2, 10, 10, 15, 2, tzinfo=UTC)
    assert message.body.received_at.utcoffset() is not None
    assert message_to_json(message)["body"]["receivedAt"] == "2025-02-10T10:15:02Z"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("body", "amountCents"), "69091"),
        (("body", "amountCents"), 690.91),
        (("body", "amountCents"), -1),
        (("body", "settlementId"), 12),
        (("body", "inputs", "purchaseDate"), 1557792000),
        (("body", "inputs", "economicLifetimeMonths"), 0),
        (("body", "amountCents"), 10_000_000_001),
        (("body", "amountCents"), 2**53 - 1),
        (("body", "inputs", "purchasePriceCents"), 10_000_000_001),
        (("body", "inputs", "economicLifetimeMonths"), 1201),
    ],
)
def test_wire_types_are_strict(path: tuple[str, ...], value: Any) -> None:
    document = _example("settlement-offer")
    _at(document, path[:-1])[path[-1]] = value
    assert ".".join(path) in _rejected(document)


@pytest.mark.parametrize(("number", "accepted"), [(99_999, True), (100_000, False), (0, False)])
def test_house_numbers_are_bounded(number: int, accepted: bool) -> None:
    document = _example("dossier-offer")
    document["body"]["client"]["newAddress"]["houseNumber"] = number
    if accepted:
        parse_message(document)
    else:
        assert "houseNumber" in _rejected(document)


def test_missing_protocol_version_is_rejected() -> None:
    document = _example("receipt")
    del document["protocolVersion"]
    assert "protocolVersion: required field is missing" in _rejected(document)


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_other_major_version_is_unsupported(version: str) -> None:
    document = _example("receipt")
    document["protocolVersion"] = version
    with pytest.raises(UnsupportedVersion):
        parse_message(document)


def test_newer_minor_version_is_accepted() -> None:
    document = _example("receipt")
    document["protocolVersion"] = "1.3"
    assert parse_message(document).protocol_version == "1.3"


@pytest.mark.parametrize("version", ["1", "v1.0", "1.0.0", 1.0])
def test_malformed_version_is_invalid(version: Any) -> None:
    document = _example("receipt")
    document["protocolVersion"] = version
    assert "protocolVersion" in _rejected(document)


@pytest.mark.parametrize(
    ("kind", "field"),
    [("functional-information", "functionalInformation"), ("indicatie", "indicatie")],
    ids=["functional-information", "indicatie"],
)
def test_optional_data_kind_needs_consent(kind: str, field: str) -> None:
    """Offered without consent for its kind, the data is refused; left out, the offer is fine."""
    document = _example("dossier-offer")
    document["body"]["consent"]["dataKinds"].remove(kind)
    assert f"does not cover '{kind}'" in _rejected(document)
    del document["body"][field]
    parse_message(document)


def test_every_offered_device_needs_consent() -> None:
    document = _example("dossier-offer")
    document["body"]["consent"]["deviceIds"] = ["AMS-HM-2019-04417"]
    assert "devices without consent: AMS-HM-2021-11873" in _rejected(document)


def test_identity_address_and_devices_need_consent() -> None:
    for kind in ("identity", "address", "devices"):
        document = _example("dossier-offer")
        document["body"]["consent"]["dataKinds"].remove(kind)
        assert f"does not cover '{kind}'" in _rejected(document)


def test_duplicate_consented_data_kind_is_rejected() -> None:
    document = _example("dossier-offer")
    document["body"]["consent"]["dataKinds"].append("identity")
    assert "body.consent.dataKinds: items must be unique" in _rejected(document)


def test_exception_decision_needs_reason_and_alternative() -> None:
    document = _example("device-decision")
    del document["body"]["decisions"][1]["alternativeOffered"]
    assert "alternativeOffered" in _rejected(document)


def test_settlement_inputs_need_exactly_one_floor() -> None:
    document = _example("settlement-offer")
    document["body"]["inputs"]["floorCents"] = 10000
    assert "exactly one of floorCents and floorBasisPoints" in _rejected(document)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_route_not_in_table_is_rejected(message_type: str) -> None:
    document = _example(message_type)
    allowed = MESSAGE_ROUTES[message_type]
    assert (document["sender"]["role"], document["receiver"]["role"]) in allowed
    roles = ["departing-gemeente", "receiving-gemeente", "departing-supplier", "receiving-supplier"]
    for sender in roles:
        for receiver in roles:
            document["sender"]["role"], document["receiver"]["role"] = sender, receiver
            if (sender, receiver) in allowed:
                parse_message(document)
            else:
                assert f"a {sender} may not send {message_type} to a {receiver}" in _rejected(
                    document
                )


def test_receipt_can_answer_every_route() -> None:
    for message_type, routes in MESSAGE_ROUTES.items():
        for sender, receiver in routes:
            assert (receiver, sender) in MESSAGE_ROUTES["receipt"], message_type


def test_body_of_another_type_is_rejected() -> None:
    document = _example("dossier-request")
    document["body"] = _example("receipt")["body"]
    detail = _rejected(document)
    assert "body.bsn: required field is missing" in detail
    assert "body.receivedMessageId: unknown field" in detail


def test_unknown_message_type_is_rejected_readably() -> None:
    document = _example("receipt")
    document["messageType"] = "dossier-gift"
    detail = _rejected(document)
    assert "messageType: Input should be" in detail
    assert "body: body cannot be checked: messageType is missing or unknown" in detail


@pytest.mark.parametrize(
    "document",
    [
        [],
        "message",
        None,
        {"messageId": float("nan")},
        {"messageId": object()},
        {"messageType": ["dossier-offer"], "body": {}},
        {"messageType": {"nested": 1}, "protocolVersion": {"x": 1}},
        {},
    ],
)
def test_no_pydantic_or_json_exception_escapes(document: Any) -> None:
    _rejected(document)


def test_python_construction_by_name() -> None:
    message = Message(
        message_id=UUID("1e6b2f8a-4d3c-4e5a-9b7c-8f0a2d4c6e60"),
        dossier_id=UUID("5b0f8c1e-2d4a-4c7e-9a31-6f2e8d9b0c14"),
        message_type="dossier-request",
        sender=Party(oin="00000001002220647000", role="receiving-gemeente"),
        receiver=Party(oin="00000001002564440000", role="departing-gemeente"),
        created_at=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        body=DossierRequest(bsn="999993653", move_date="2025-03-01", previous_gemeentecode="0363"),
    )
    assert message_to_json(message) == _example("dossier-request")
    assert parse_message(message_to_json(message)) == message


def test_python_construction_refuses_a_mismatched_body() -> None:
    receipt_message = parse_message(_example("receipt"))
    with pytest.raises(ValidationError, match="body is a receipt body"):
        Message(**{**dict(receipt_message), "message_type": "dossier-request"})


def test_messages_are_frozen() -> None:
    message = parse_message(_example("receipt"))
    with pytest.raises(ValidationError):
        message.message_type = "dossier-offer"  # type: ignore[misc]


def test_error_detail_never_contains_the_bsn() -> None:
    document = _example("dossier-offer")
    document["body"]["client"]["bsn"] = "999993654"
    document["body"]["client"]["surpriseField"] = "999993653"
    detail = _rejected(document)
    assert "body.client.bsn" in detail
    assert "99999365" not in detail


@pytest.mark.parametrize(
    ("message_type", "path", "value", "reason"),
    [
        ("dossier-cancelled", ("body", "reason"), "other", "reason 'other' needs reasonText"),
        (
            "settlement-offer",
            ("body", "inputs", "transferDate"),
            "2019-01-01",
            "transferDate is before purchaseDate",
        ),
        (
            "dossier-offer",
            ("body", "client", "contactPreferences", "channels"),
            ["email"],
            "channel email needs emailAddress",
        ),
        ("supplier-status", ("body", "status"), "refused", "status 'refused' needs a reasonCode"),
        (
            "consent-withdrawn",
            ("body", "dataKinds"),
            [],
            "a partial withdrawal names dataKinds or deviceIds",
        ),
        (
            "handover-progress",
            ("body", "devices", 0, "state"),
            "taken-over",
            "state 'taken-over' needs takenOverOn",
        ),
        (
            "handover-progress",
            ("body", "devices", 0, "state"),
            "contact-planned",
            "state 'contact-planned' needs contactBefore",
        ),
        (
            "handover-progress",
            ("body", "devices", 0, "followUp"),
            "gemeente-task",
            "state 'client-contacted' has followUp 'supplier-order'",
        ),
        (
            "handover-progress",
            ("body", "devices", 0, "supplier"),
            None,
            "state 'client-contacted' needs the supplier",
        ),
    ],
)
def test_body_rules(
    message_type: str, path: tuple[str | int, ...], value: Any, reason: str
) -> None:
    document = _example(message_type)
    target = _at(document, path[:-1])
    target[path[-1]] = value
    target.pop("reasonText", None)
    assert reason in _rejected(document)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"state": "problem", "followUp": "gemeente-task"}, "state 'problem' needs a reasonCode"),
        (
            {"state": "refused", "reasonCode": "no-capacity"},
            "state 'refused' has followUp 'gemeente-task'",
        ),
        (
            {"state": "taken-over", "takenOverOn": "2025-03-12"},
            "state 'taken-over' has no followUp",
        ),
    ],
)
def test_handover_progress_names_who_acts_next(changes: dict[str, Any], reason: str) -> None:
    document = _example("handover-progress")
    document["body"]["devices"][0].update(changes)
    assert reason in _rejected(document)


def test_handover_progress_names_each_device_once() -> None:
    document = _example("handover-progress")
    document["body"]["devices"].append(dict(document["body"]["devices"][0]))
    assert "items must be unique" in _rejected(document)


def test_handover_progress_goes_only_from_the_receiving_to_the_departing_gemeente() -> None:
    document = _example("handover-progress")
    document["sender"]["role"], document["receiver"]["role"] = (
        "departing-gemeente",
        "receiving-gemeente",
    )
    assert "may not send handover-progress" in _rejected(document)
