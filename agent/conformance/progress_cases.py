"""The receiving gemeente's progress to the departing gemeente (protocol.md section 8.11).

The kit adds a contract to the registry: its own supplier provides one ISO 9999 code in the
target's gemeente. It offers the target a device of that code as the departing gemeente; the
target takes it over with a takeover order at the kit's supplier and tells the kit's gemeente
each change a client would notice: ``contact-planned`` when it places the order, then
``client-contacted`` and ``taken-over`` when the kit's supplier reports them.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date
from typing import Any, Final

from agent.conformance.cases import Case
from agent.conformance.exchange import arrived, check_parties, seen, sent, today
from agent.conformance.kit import CaseFailed, Kit
from protocol.messages import DeviceProgress, HandoverProgress, Message, TakeoverOrder

__all__ = ["ORDERED_ISO_CODE", "progress_cases"]

# A code the kit's own contract covers, so the order goes to the kit's supplier (a commode).
ORDERED_ISO_CODE: Final = "09 12 03"
_CONTRACT_FROM: Final = date(2020, 1, 1)


def _ordered_offer(kit: Kit) -> dict[str, Any]:
    offer = kit.message()
    body = offer["body"]
    device = copy.deepcopy(body["devices"][0])
    device.update(
        deviceId=f"KIT-{uuid.uuid4().hex[:16]}",
        isoCode=ORDERED_ISO_CODE,
        description="Toiletstoel met armleuningen",
    )
    device["supplier"] = {"oin": kit.identity.supplier.oin, "name": kit.identity.supplier.name}
    for name in ("serialNumber", "serviceHistory"):
        device.pop(name, None)
    body["devices"] = [device]
    body["consent"]["deviceIds"] = [device["deviceId"]]
    body["indicatie"]["deviceIds"] = [device["deviceId"]]
    return offer


async def _progress(kit: Kit, offer: dict[str, Any], state: str, since: int) -> DeviceProgress:
    dossier_id = offer["dossierId"]
    message = await arrived(
        kit, "handover-progress", f"handover-progress {state} for dossier {dossier_id}",
        lambda a: a.concerns(dossier_id) and _state(a.message) == state, since,
    )  # fmt: skip
    check_parties(kit, message, offer)
    assert isinstance(message.body, HandoverProgress)
    [device] = message.body.devices
    if device.device_id != offer["body"]["devices"][0]["deviceId"]:
        raise CaseFailed(f"the handover-progress names device {device.device_id}, not the offer's")
    if device.supplier is None or device.supplier.oin != kit.identity.supplier.oin:
        raise CaseFailed("the handover-progress does not name the supplier that has the order")
    return device


def _state(message: Message | None) -> str | None:
    if message is None or not isinstance(message.body, HandoverProgress):
        return None
    return message.body.devices[0].state if len(message.body.devices) == 1 else None


async def _report(kit: Kit, order: Message, status: str) -> None:
    """The kit's supplier reports ``status`` of the order's device to the target."""
    assert isinstance(order.body, TakeoverOrder)
    [device] = order.body.devices
    occurred = kit.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "orderId": order.body.order_id,
        "deviceId": device.device_id,
        "status": status,
        "occurredAt": occurred,
    }
    message = kit.envelope(
        "supplier-status",
        body,
        dossier_id=str(order.dossier_id),
        sender=(kit.identity.supplier.oin, "receiving-supplier"),
        receiver_role="receiving-gemeente",
        in_reply_to=str(order.message_id),
    )
    await sent(kit, message, key=kit.identity.supplier.key)


async def _progress_reported(kit: Kit) -> None:
    if kit.operator is None:
        raise CaseFailed("the kit has no operator access to add its supplier's contract")
    await kit.operator.add_contract(
        gemeentecode=kit.target.gemeentecode or "",
        supplier_oin=kit.identity.supplier.oin,
        iso_prefixes=[ORDERED_ISO_CODE],
        valid_from=_CONTRACT_FROM,
    )
    offer, since = _ordered_offer(kit), seen(kit)
    await sent(kit, offer)
    dossier_id = offer["dossierId"]
    order = await arrived(
        kit, "takeover-order", f"takeover-order at the kit's supplier for dossier {dossier_id}",
        lambda a: a.concerns(dossier_id), since,
    )  # fmt: skip
    assert isinstance(order.body, TakeoverOrder)
    planned = await _progress(kit, offer, "contact-planned", since)
    if planned.follow_up != "supplier-order" or planned.contact_before != order.body.contact_before:
        raise CaseFailed(
            f"contact-planned says followUp {planned.follow_up} and contactBefore "
            f"{planned.contact_before}; the order says supplier-order and "
            f"{order.body.contact_before}"
        )

    since = seen(kit)
    await _report(kit, order, "client-contacted")
    contacted = await _progress(kit, offer, "client-contacted", since)
    if contacted.contacted_on != today(kit):
        raise CaseFailed(f"client-contacted says contactedOn {contacted.contacted_on}")

    since = seen(kit)
    await _report(kit, order, "taken-over")
    taken = await _progress(kit, offer, "taken-over", since)
    if taken.taken_over_on != today(kit) or taken.follow_up is not None:
        raise CaseFailed(
            f"taken-over says takenOverOn {taken.taken_over_on} and followUp {taken.follow_up}; "
            "expected today and no followUp (nothing is left to do)"
        )


def progress_cases() -> tuple[Case, ...]:
    """The progress cases for a gemeente target (as receiving gemeente)."""
    return (
        Case(
            "a takeover order, the client contacted and the device taken over reach the "
            "departing gemeente as handover-progress",
            "8.11",
            _progress_reported,
        ),
    )
