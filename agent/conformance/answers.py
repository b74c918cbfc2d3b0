"""The cases in which the target answers: its messages to the kit's endpoint, and stop messages.

A gemeente answers an offer with a signed ``device-decision``; a supplier answers a takeover
order with ``supplier-status`` messages (``received`` at once, ``client-contacted`` and
``taken-over`` when its planner records them). The kit's endpoint has verified and receipted
each (:mod:`agent.conformance.endpoint`); these cases check that it came, in time, and that it
fits the message the kit sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from agent.conformance.cases import Case
from agent.conformance.endpoint import Arrival
from agent.conformance.kit import CaseFailed, Kit, canonical
from protocol.messages import DeviceDecision, Message, SupplierStatus

__all__ = ["answer_cases"]


async def _sent(kit: Kit, message: dict[str, Any]) -> None:
    body = canonical(message)
    await kit.check_receipt(await kit.send_signed(body), message["messageId"], body)


async def _answer(
    kit: Kit, kind: str, what: str, wanted: Callable[[Arrival], bool], seen: int
) -> Message:
    """The first accepted arrival of ``kind`` that ``wanted`` accepts, or a readable failure."""
    if kit.endpoint is None:
        raise CaseFailed("the kit serves no endpoint, so it cannot receive the target's answer")
    arrival = await kit.endpoint.wait_for(
        lambda a: a.message_type == kind and wanted(a), seconds=kit.answer_seconds, seen=seen
    )
    if arrival is None:
        raise CaseFailed(f"no {what} came to the kit's endpoint within {kit.answer_seconds:.0f} s")
    if arrival.message is None:
        raise CaseFailed(f"the kit refused the target's {kind}: {arrival.describe_refusal()}")
    return arrival.message


def _check_parties(kit: Kit, message: Message, sent: Mapping[str, Any]) -> None:
    """The answer comes from the target in the role it was addressed in, to the kit's role."""
    if message.sender.oin != kit.target.oin:
        raise CaseFailed(f"the {message.message_type} is signed by another sender than the target")
    if message.sender.role != sent["receiver"]["role"]:
        raise CaseFailed(
            f"the {message.message_type} comes from role {message.sender.role}, "
            f"expected {sent['receiver']['role']}"
        )
    if message.receiver.role != sent["sender"]["role"]:
        raise CaseFailed(
            f"the {message.message_type} is addressed to role {message.receiver.role}, "
            f"expected {sent['sender']['role']}"
        )


async def _decision(kit: Kit) -> None:
    seen = _seen(kit)
    offer = kit.message()
    await _sent(kit, offer)
    dossier = offer["dossierId"]
    message = await _answer(
        kit, "device-decision", f"device-decision for dossier {dossier}",
        lambda a: a.concerns(dossier), seen,
    )  # fmt: skip
    _check_parties(kit, message, offer)
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


async def _statuses(kit: Kit, *, planner: bool) -> None:
    seen = _seen(kit)
    order = kit.message()
    await _sent(kit, order)
    order_id = order["body"]["orderId"]
    steps = ("received", "client-contacted", "taken-over") if planner else ("received",)
    for status in steps:
        if status != "received":
            if kit.planner is None:
                raise CaseFailed("the kit has no planner to record contact and takeover")
            await kit.planner.record(order_id, status, seconds=kit.answer_seconds)
        wanted = functools.partial(_is_status, order_id=order_id, status=status)
        what = f"supplier-status {status} for order {order_id}"
        message = await _answer(kit, "supplier-status", what, wanted, seen)
        _check_parties(kit, message, order)
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
    await _sent(kit, first)
    cancel = kit.follow_up(first, "dossier-cancelled", {"reason": "move-cancelled"})
    await _sent(kit, cancel)


def _seen(kit: Kit) -> int:
    return 0 if kit.endpoint is None else len(kit.endpoint.arrivals)


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
        )
    return (
        Case(
            "an offer is answered with a signed device-decision on every offered device",
            "5, 8.1, 9",
            _decision,
        ),
        Case("a dossier-cancelled after an offer gets a signed receipt", "5, 8.4", _cancelled),
    )
