"""What a takeover order says: built from the offer, what is kept of it once stopped, and the
names a case worker's task gives its client and device."""

from __future__ import annotations

import uuid
from typing import Any, Final

from pydantic import ValidationError

from agent.register.names import person_name, the_device
from protocol.messages import Device, DossierOffer, Representative, TakeoverOrder

__all__ = ["names_in_order", "stripped_order", "takeover_order"]

# What a stopped order keeps: no name, address, contact details or representative.
_KEPT_ORDER_FIELDS: Final = frozenset({"orderId", "moveDate", "contactBefore", "urgent"})


def stripped_order(body: dict[str, Any]) -> dict[str, Any]:
    """An order without the client's personal data: ids, dates and the devices' ids and codes."""
    kept = {key: value for key, value in body.items() if key in _KEPT_ORDER_FIELDS}
    kept["devices"] = [
        {"deviceId": device["deviceId"], "isoCode": device["isoCode"]}
        for device in body.get("devices", [])
    ]
    return kept


def takeover_order(offer: DossierOffer, device: Device) -> TakeoverOrder:
    """The order for one device, with only what the supplier needs of the offer."""
    client = offer.client
    # Data minimisation: name, address, contact, move date and the device only; the
    # representative without their own address. The id and the contact date are set when the
    # order is placed with a supplier.
    representative = client.representative
    return TakeoverOrder(
        order_id=uuid.uuid4(),
        client_name=client.name,
        address=client.new_address,
        contact_preferences=client.contact_preferences,
        representative=None
        if representative is None
        else Representative.model_validate(representative.model_dump(exclude={"address"})),
        move_date=client.move_date,
        devices=(device,),
        departing_supplier=device.supplier,
        contact_before=client.move_date,
        urgent=offer.urgent,
    )


def names_in_order(body: dict[str, Any], device_id: str) -> tuple[str, str]:
    """The client and one device of an order body, as a case worker's task names them."""
    try:
        order = TakeoverOrder.model_validate(body)
    except ValidationError:  # the client's data were erased (withdrawal): no names are left
        return "de cliënt", "het hulpmiddel"
    device = next((d for d in order.devices if d.device_id == device_id), order.devices[0])
    return person_name(order.client_name), the_device(device)
