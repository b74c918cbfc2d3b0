"""The cases off the happy path for a gemeente target, as departing and as receiving gemeente.

As the departing gemeente the target gets a ``dossier-request`` from the kit (playing the
receiving gemeente) for a client in its register, and must answer with a ``dossier-offer`` once
the client consented (protocol.md sections 2 and 5); on a ``device-decision`` with an exception
it must tell the device's supplier (the kit's supplier) with ``continued-use``, and again with
``alternativeDeliveredOn`` after the kit's ``alternative-delivered`` (section 8.6). As the
receiving gemeente it must decide an exception with an alternative for a device it is
configured to except, report the delivered alternative, and ask for a missed dossier when its
BRP reports a move in. The refusals are those the protocol names (sections 2 and 5).
"""

from __future__ import annotations

import copy
import secrets
import uuid
from typing import Any, Final

from agent.conformance.cases import Case, expect_problem
from agent.conformance.endpoint import Arrival
from agent.conformance.exchange import arrived, check_parties, example_body, seen, sent, today
from agent.conformance.kit import CaseFailed, Desk, Kit, canonical
from agent.local.brp_simulator import moved
from agent.local.synthetic import TEST_BSN_RANGE_START, valid_bsns
from protocol.messages import (
    AlternativeDelivered,
    ContinuedUse,
    DepartureNotice,
    DeviceDecision,
    DossierOffer,
    DossierRequest,
    Message,
)

__all__ = ["EXCEPTION_ISO_CODE", "gemeente_cases"]

# The device a receiving target must except with an alternative (a rollator; section 8.6).
EXCEPTION_ISO_CODE: Final = "12 06 06"
_ALTERNATIVE_REASONS: Final = frozenset(
    {"not-in-assortment", "unsafe-or-worn", "needs-changed", "other"}
)
# A gemeente neither the kit nor (normally) the target serves: Rotterdam.
_NOT_SERVED: Final = "0599"
_RECEIVING: Final = "receiving-gemeente"
_DEPARTING: Final = "departing-gemeente"


def _desk(kit: Kit) -> Desk:
    if kit.desk is None:
        raise CaseFailed("the kit has no desk to act at the target (register, consent)")
    return kit.desk


def _test_bsn() -> str:
    """A BSN of the test range not used before (the target keeps its register between runs)."""
    [bsn] = valid_bsns(1, first=TEST_BSN_RANGE_START + secrets.randbelow(990_000))
    return bsn


def _body_field(arrival: Arrival, *path: str) -> object:
    """A field of an arrival's body, or None (a refused arrival's document is not trusted)."""
    value: object = (arrival.document or {}).get("body")
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _kit_address(kit: Kit) -> dict[str, Any]:
    address: dict[str, Any] = example_body("dossier-offer")["client"]["newAddress"]
    address["gemeentecode"] = kit.identity.gemeentecode
    return address


def _register_client(kit: Kit) -> dict[str, Any]:
    """A client of the target with one rented device that the kit's supplier provides."""
    device = example_body("dossier-offer")["devices"][0]
    device.pop("serviceHistory")
    supplier = kit.identity.supplier
    device["deviceId"] = f"KIT-{uuid.uuid4().hex[:16]}"
    device["supplier"] = {"oin": supplier.oin, "name": supplier.name}
    address = _kit_address(kit)
    address["gemeentecode"] = kit.target.gemeentecode
    return {
        "bsn": _test_bsn(),
        "name": {"initials": "K.", "surname": "Conformance"},
        "address": address,
        "contactPreferences": {"channels": ["phone"], "phoneNumber": "06 12345678"},
        "devices": [device],
    }


async def _offered(kit: Kit) -> tuple[dict[str, Any], Message]:
    """A dossier-request for a client in the target's register, answered with an offer."""
    desk, client = _desk(kit), _register_client(kit)
    await desk.add_client(client, seconds=kit.answer_seconds)
    body = {
        "bsn": client["bsn"],
        "moveDate": today(kit).isoformat(),
        "previousGemeentecode": kit.target.gemeentecode,
        "newAddress": _kit_address(kit),
    }
    request = kit.envelope(
        "dossier-request",
        body,
        dossier_id=str(uuid.uuid4()),
        sender=(kit.identity.oin, _RECEIVING),
        receiver_role=_DEPARTING,
    )
    since = seen(kit)
    await sent(kit, request)
    device_ids = [d["deviceId"] for d in client["devices"]]
    await desk.give_consent(
        bsn=client["bsn"], asked_by=kit.identity.oin, device_ids=device_ids,
        seconds=kit.answer_seconds,
    )  # fmt: skip
    offer = await arrived(
        kit, "dossier-offer", f"dossier-offer for client {client['bsn']}",
        lambda a: _body_field(a, "client", "bsn") == client["bsn"],
        since,
    )  # fmt: skip
    check_parties(kit, offer, request)
    assert isinstance(offer.body, DossierOffer)  # the endpoint parsed it by its messageType
    if offer.body.departing_gemeentecode != kit.target.gemeentecode:
        raise CaseFailed(
            f"the offer names departing gemeente {offer.body.departing_gemeentecode}, "
            f"the request asked {kit.target.gemeentecode}"
        )
    offered = sorted(d.device_id for d in offer.body.devices)
    if offered != device_ids:
        raise CaseFailed(f"the offer holds {offered}, the client consented to {device_ids}")
    return client, offer


async def _request_answered(kit: Kit) -> None:
    await _offered(kit)


def _decision(kit: Kit, offer: Message, device_id: str, *, outcome: str) -> dict[str, Any]:
    item: dict[str, Any] = {"deviceId": device_id, "outcome": outcome}
    if outcome == "exception":
        excepted = example_body("device-decision")["decisions"][1]
        item.update({k: v for k, v in excepted.items() if k not in ("deviceId", "outcome")})
        item["followUp"] = "gemeente-task"
    assert isinstance(offer.body, DossierOffer)
    body = {"decisions": [item], "effectiveDate": offer.body.client.move_date.isoformat()}
    return kit.envelope(
        "device-decision",
        body,
        dossier_id=str(offer.dossier_id),
        sender=(kit.identity.oin, _RECEIVING),
        receiver_role=_DEPARTING,
        in_reply_to=str(offer.message_id),
    )


async def _to_supplier(
    kit: Kit, kind: str, dossier_id: str, device_id: str, since: int
) -> ContinuedUse | DepartureNotice:
    """The target's ``kind`` (continued-use, departure-notice) naming the device, to the kit's
    supplier."""
    message = await arrived(
        kit, kind, f"{kind} for device {device_id} to the kit's supplier",
        lambda a: a.concerns(dossier_id), since,
    )  # fmt: skip
    expected = {
        "sender": {"oin": kit.identity.supplier.oin, "role": "departing-supplier"},
        "receiver": {"role": _DEPARTING},
    }
    check_parties(kit, message, expected)
    body = message.body
    assert isinstance(body, ContinuedUse | DepartureNotice)
    if device_id not in [d.device_id for d in body.devices]:
        raise CaseFailed(f"the {kind} does not name device {device_id}")
    return body


async def _continued_use(kit: Kit, dossier_id: str, device_id: str, since: int) -> ContinuedUse:
    """The target's continued-use for the device, to the kit's supplier."""
    body = await _to_supplier(kit, "continued-use", dossier_id, device_id, since)
    assert isinstance(body, ContinuedUse)
    return body


async def _exception_told(kit: Kit) -> None:
    client, offer = await _offered(kit)
    device_id, dossier_id = client["devices"][0]["deviceId"], str(offer.dossier_id)
    since = seen(kit)
    await sent(kit, _decision(kit, offer, device_id, outcome="exception"))
    first = await _continued_use(kit, dossier_id, device_id, since)
    if first.alternative_delivered_on is not None:
        raise CaseFailed("the first continued-use already says the alternative was delivered")
    since, day = seen(kit), today(kit)
    delivered = {"deviceId": device_id, "deliveredOn": day.isoformat()}
    await sent(
        kit,
        kit.envelope(
            "alternative-delivered",
            delivered,
            dossier_id=dossier_id,
            sender=(kit.identity.oin, _RECEIVING),
            receiver_role=_DEPARTING,
        ),
    )
    later = await _continued_use(kit, dossier_id, device_id, since)
    if later.alternative_delivered_on != day:
        raise CaseFailed(
            f"the continued-use after alternative-delivered has alternativeDeliveredOn "
            f"{later.alternative_delivered_on}, expected {day}"
        )


async def _revised_decision(kit: Kit) -> None:
    client, offer = await _offered(kit)
    device_id = client["devices"][0]["deviceId"]
    await sent(kit, _decision(kit, offer, device_id, outcome="exception"))
    # Without revisedAt a later decision may only name another receiving supplier (section 5).
    changed = canonical(_decision(kit, offer, device_id, outcome="take-over"))
    expect_problem(await kit.send_signed(changed), 422, "message-not-handled")


async def _revision_told(kit: Kit) -> None:
    client, offer = await _offered(kit)
    device_id, dossier_id = client["devices"][0]["deviceId"], str(offer.dossier_id)
    since = seen(kit)
    await sent(kit, _decision(kit, offer, device_id, outcome="exception"))
    await _continued_use(kit, dossier_id, device_id, since)
    # The kit's consulent takes the exception back (section 5: revisedAt, device not taken over).
    since = seen(kit)
    revised = _decision(kit, offer, device_id, outcome="take-over")
    revised["body"]["revisedAt"] = revised["createdAt"]
    await sent(kit, revised)
    await _to_supplier(kit, "departure-notice", dossier_id, device_id, since)


async def _request_elsewhere(kit: Kit) -> None:
    body = {
        "bsn": _test_bsn(),
        "moveDate": today(kit).isoformat(),
        "previousGemeentecode": _NOT_SERVED,
        "newAddress": _kit_address(kit),
    }
    request = kit.envelope(
        "dossier-request", body, dossier_id=str(uuid.uuid4()),
        sender=(kit.identity.oin, _RECEIVING), receiver_role=_DEPARTING,
    )  # fmt: skip
    expect_problem(await kit.send_signed(canonical(request)), 422, "message-not-handled")


async def _offer_for_another_gemeente(kit: Kit) -> None:
    offer = kit.message()
    offer["body"]["departingGemeentecode"] = _NOT_SERVED
    expect_problem(await kit.send_signed(canonical(offer)), 403, "sender-not-permitted")


def _excepted_offer(kit: Kit) -> dict[str, Any]:
    offer = kit.message()
    device = copy.deepcopy(offer["body"]["devices"][0])
    device.update(
        deviceId=f"KIT-{uuid.uuid4().hex[:16]}",
        isoCode=EXCEPTION_ISO_CODE,
        description="Rollator met zitje en mand",
    )
    for name in ("serialNumber", "serviceHistory"):
        device.pop(name, None)
    body = offer["body"]
    body["devices"] = [device]
    body["consent"]["deviceIds"] = [device["deviceId"]]
    body["indicatie"]["deviceIds"] = [device["deviceId"]]
    body.pop("urgencyReason")
    body["urgent"] = False
    return offer


async def _exception_decided(kit: Kit) -> None:
    kit.tell(
        f"the agent under test must decide an exception with an alternative (reason "
        f"not-in-assortment, unsafe-or-worn, needs-changed or other) for ISO 9999 code "
        f"{EXCEPTION_ISO_CODE}; a Meeverhuizen agent: device_exceptions with prefix "
        f'"{EXCEPTION_ISO_CODE[:5]}" and reason_code "not-in-assortment"'
    )
    offer, since = _excepted_offer(kit), seen(kit)
    await sent(kit, offer)
    dossier_id, device_id = offer["dossierId"], offer["body"]["devices"][0]["deviceId"]
    message = await arrived(
        kit, "device-decision", f"device-decision for dossier {dossier_id}",
        lambda a: a.concerns(dossier_id), since,
    )  # fmt: skip
    check_parties(kit, message, offer)
    assert isinstance(message.body, DeviceDecision)
    item = next((i for i in message.body.decisions if i.device_id == device_id), None)
    if item is None or item.outcome != "exception":
        raise CaseFailed(
            f"the device-decision takes device {device_id} (ISO {EXCEPTION_ISO_CODE}) over; "
            "configure the target to except it (see above)"
        )
    if item.reason_code not in _ALTERNATIVE_REASONS:
        raise CaseFailed(
            f"the exception has reason {item.reason_code}, for which the receiving gemeente "
            "provides no alternative (section 8.6)"
        )
    if item.follow_up not in (None, "gemeente-task"):
        raise CaseFailed(f"the exception names followUp {item.follow_up}, not gemeente-task")
    since, day = seen(kit), today(kit)
    await _desk(kit).deliver_alternative(
        dossier_id=dossier_id, device_id=device_id, delivered_on=day, seconds=kit.answer_seconds
    )
    delivered = await arrived(
        kit, "alternative-delivered", f"alternative-delivered for device {device_id}",
        lambda a: a.concerns(dossier_id), since,
    )  # fmt: skip
    check_parties(kit, delivered, offer)
    assert isinstance(delivered.body, AlternativeDelivered)
    if (delivered.body.device_id, delivered.body.delivered_on) != (device_id, day):
        raise CaseFailed(
            f"the alternative-delivered names device {delivered.body.device_id} on "
            f"{delivered.body.delivered_on}, expected {device_id} on {day}"
        )


async def _request_sent(kit: Kit) -> None:
    kit.tell(
        "the agent under test must ask the departing gemeente for a dossier when its BRP "
        "reports a move in; a Meeverhuizen agent: brp_dossier_requests = true"
    )
    bsn, day = _test_bsn(), today(kit)
    address = _kit_address(kit)
    address["gemeentecode"] = kit.target.gemeentecode
    event = moved(
        bsn,
        from_code=kit.identity.gemeentecode,
        to_code=kit.target.gemeentecode or "",
        address=address,
        move_date=day,
        event_id=str(uuid.uuid4()),
    )
    since = seen(kit)
    await _desk(kit).report_move_in(event, seconds=kit.answer_seconds)
    message = await arrived(
        kit, "dossier-request", f"dossier-request for client {bsn}",
        lambda a: _body_field(a, "bsn") == bsn, since,
    )  # fmt: skip
    expected = {"sender": {"oin": kit.identity.oin, "role": _DEPARTING}}
    check_parties(kit, message, {**expected, "receiver": {"role": _RECEIVING}})
    assert isinstance(message.body, DossierRequest)
    if message.body.previous_gemeentecode != kit.identity.gemeentecode:
        raise CaseFailed(
            f"the dossier-request names previous gemeente {message.body.previous_gemeentecode}, "
            f"the client came from {kit.identity.gemeentecode}"
        )


def gemeente_cases() -> tuple[Case, ...]:
    """The cases off the happy path for a gemeente target."""
    return (
        Case(
            "a dossier-request for a client in the register is answered with a dossier-offer",
            "2, 5, 8.1",
            _request_answered,
        ),
        Case(
            "an exception in the device-decision and the alternative delivered reach the "
            "supplier as continued-use",
            "5, 8.6",
            _exception_told,
        ),
        Case(
            "a later device-decision that changes an outcome without revisedAt is "
            "message-not-handled",
            "5, 10",
            _revised_decision,
        ),
        Case(
            "a revised device-decision that takes an excepted device over reaches the "
            "supplier as a departure-notice",
            "5, 8.6",
            _revision_told,
        ),
        Case(
            "a dossier-request for a gemeente the target does not serve is message-not-handled",
            "2, 10",
            _request_elsewhere,
        ),
        Case(
            "a dossier-offer from a gemeente its sender does not serve is sender-not-permitted",
            "2, 10",
            _offer_for_another_gemeente,
        ),
        Case(
            "a device configured as an exception is decided with an alternative, and its "
            "delivery is reported with alternative-delivered",
            "5, 8.6",
            _exception_decided,
        ),
        Case(
            "a move in reported by the BRP is asked for with a dossier-request",
            "2, 5",
            _request_sent,
        ),
    )
