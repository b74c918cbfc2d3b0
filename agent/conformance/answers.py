"""The cases in which the target answers: its messages to the kit's endpoint, and follow-ups.

A gemeente answers an offer with a signed ``device-decision``; a supplier answers a takeover
order with ``supplier-status`` messages (``received`` at once, ``client-contacted`` and
``taken-over`` when its planner records them). The kit's endpoint has verified and receipted
each (:mod:`agent.conformance.endpoint`); these cases check that it came, in time, and that it
fits the message the kit sent. The follow-ups (``dossier-cancelled``, ``consent-withdrawn``,
``device-transfer``, ``departure-notice``) must each get a signed receipt.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

from agent.conformance.cases import Case, expect_problem
from agent.conformance.endpoint import Arrival
from agent.conformance.exchange import arrived, check_parties, example_body, seen, sent
from agent.conformance.kit import CaseFailed, Kit, canonical
from protocol.messages import DeviceDecision, Message, SupplierStatus

__all__ = ["answer_cases"]


async def _decision(kit: Kit) -> None:
    await _decided(kit)


async def _decided(kit: Kit) -> tuple[dict[str, Any], Message]:
    """Send an offer and check the target's device-decision on it; both come back."""
    since = seen(kit)
    offer = kit.message()
    await sent(kit, offer)
    dossier = offer["dossierId"]
    message = await arrived(
        kit, "device-decision", f"device-decision for dossier {dossier}",
        lambda a: a.concerns(dossier), since,
    )  # fmt: skip
    check_parties(kit, message, offer)
    body = message.body
    if not isinstance(body, DeviceDecision):  # the endpoint parsed it by its messageType
        raise CaseFailed(f"the answer is a {message.message_type}")
    if message.in_reply_to is not None and str(message.in_reply_to) != offer["messageId"]:
        raise CaseFailed("the device-decision's inReplyTo names another message than the offer")
    offered = sorted(device["deviceId"] for device in offer["body"]["devices"])
    decided = sorted(item.device_id for item in body.decisions)
    if decided != offered:
        raise CaseFailed(f"the device-decision decides on {decided}, the offer held {offered}")
    move_date = offer["body"]["client"]["moveDate"]
    if body.effective_date.isoformat() != move_date:
        raise CaseFailed(
            f"the device-decision takes effect on {body.effective_date}, "
            f"not on the move date {move_date} (no gap)"
        )
    return offer, message


async def _statuses(kit: Kit, *, planner: bool) -> None:
    since = seen(kit)
    order = kit.message()
    await sent(kit, order)
    order_id = order["body"]["orderId"]
    steps = ("received", "client-contacted", "taken-over") if planner else ("received",)
    for status in steps:
        if status != "received":
            if kit.planner is None:
                raise CaseFailed("the kit has no planner to record contact and takeover")
            await kit.planner.record(order_id, status, seconds=kit.answer_seconds)
        wanted = functools.partial(_is_status, order_id=order_id, status=status)
        what = f"supplier-status {status} for order {order_id}"
        message = await arrived(kit, "supplier-status", what, wanted, since)
        check_parties(kit, message, order)
        if str(message.dossier_id) != order["dossierId"]:
            raise CaseFailed("the supplier-status names another dossier than the order")


def _is_status(arrival: Arrival, *, order_id: str, status: str) -> bool:
    if arrival.message is None:  # a refused status: which order it meant is not trusted
        return True
    body = arrival.message.body
    return (
        isinstance(body, SupplierStatus)
        and str(body.order_id) == order_id
        and (body.status == status)
    )


async def _received(kit: Kit) -> None:
    await _statuses(kit, planner=False)


async def _planned(kit: Kit) -> None:
    await _statuses(kit, planner=True)


async def _cancelled(kit: Kit) -> None:
    first = kit.message()
    await sent(kit, first)
    cancel = kit.follow_up(first, "dossier-cancelled", {"reason": "move-cancelled"})
    await sent(kit, cancel)


async def _withdrawn(kit: Kit) -> None:
    offer = kit.message()
    await sent(kit, offer)
    body = example_body("consent-withdrawn")
    body.update(consentId=offer["body"]["consent"]["consentId"], withdrawnAt=offer["createdAt"])
    await sent(kit, kit.follow_up(offer, "consent-withdrawn", body))


def _transfer(
    kit: Kit, offer: dict[str, Any], device: Mapping[str, Any], day: str
) -> dict[str, Any]:
    # The kit's own setting is a free transfer: amount 0, no method or inputs (section 8.9).
    body = example_body("device-transfer")
    for name in ("method", "inputs"):
        body.pop(name)
    keep = (
        "deviceId",
        "isoCode",
        "serialNumber",
        "ownership",
        "purchaseDate",
        "purchasePriceCents",
    )
    body.update(
        transferId=str(uuid.uuid4()),
        device={name: device[name] for name in keep if name in device},
        transferDate=day,
        price="free",
        amountCents=0,
    )
    return kit.follow_up(offer, "device-transfer", body)


async def _transferred(kit: Kit) -> None:
    offer, message = await _decided(kit)
    assert isinstance(message.body, DeviceDecision)
    lent = [d for d in offer["body"]["devices"] if d["ownership"] == "bruikleen"]
    outcomes = {item.device_id: item.outcome for item in message.body.decisions}
    for device in lent:
        if outcomes.get(device["deviceId"]) != "take-over":
            raise CaseFailed(
                f"the device-decision does not take over the bruikleen device "
                f"{device['deviceId']}, so the kit cannot send its device-transfer"
            )
        day = message.body.effective_date.isoformat()
        await sent(kit, _transfer(kit, offer, device, day))


async def _transfer_unknown_device(kit: Kit) -> None:
    offer = kit.message()
    await sent(kit, offer)
    device = {**offer["body"]["devices"][-1], "deviceId": f"KIT-{uuid.uuid4()}"}
    move_date = offer["body"]["client"]["moveDate"]
    answer = await kit.send_signed(canonical(_transfer(kit, offer, device, move_date)))
    expect_problem(answer, 422, "message-not-handled")


async def _notice(kit: Kit) -> None:
    # The kit plays the departing gemeente towards the target as departing supplier.
    others = [code for code in ("0344", "0363") if code != kit.identity.gemeentecode]
    body = example_body("departure-notice")
    body.pop("receivingSupplier")  # optional; the kit names no supplier it has not enrolled
    body["receivingGemeentecode"] = others[0]
    # A bruikleen device: the target offers no takeover price (section 8.9), so the notice
    # leaves no settlement behind in the target's test instance.
    body["devices"][0]["ownership"] = "bruikleen"
    first = kit.message()
    notice = kit.follow_up(first, "departure-notice", body)
    notice["sender"]["role"] = "departing-gemeente"
    notice["receiver"]["role"] = "departing-supplier"
    await sent(kit, notice)


def answer_cases(role: str) -> tuple[Case, ...]:
    """The cases in which a target of ``role`` answers (``gemeente`` or ``supplier``)."""
    if role == "supplier":
        return (
            Case(
                "a takeover order is answered with a signed supplier-status received",
                "5, 8.1, 9",
                _received,
            ),
            Case(
                "the planner's contact and takeover come back as signed supplier-status messages",
                "5, 8.1, 9",
                _planned,
            ),
            Case("a dossier-cancelled after an order gets a signed receipt", "5, 8.4", _cancelled),
            Case(
                "a departure-notice to the departing supplier gets a signed receipt",
                "5, 8.1",
                _notice,
            ),
        )
    return (
        Case(
            "an offer is answered with a signed device-decision on every offered device",
            "5, 8.1, 9",
            _decision,
        ),
        Case("a dossier-cancelled after an offer gets a signed receipt", "5, 8.4", _cancelled),
        Case("a consent-withdrawn after an offer gets a signed receipt", "5, 8.3", _withdrawn),
        Case(
            "a device-transfer for the bruikleen device taken over gets a signed receipt",
            "5, 8.9",
            _transferred,
        ),
        Case(
            "a device-transfer for a device the offer did not hold is message-not-handled",
            "5, 8.9",
            _transfer_unknown_device,
        ),
    )
