"""What a takeover order says: built from the offer, and what is kept of it once stopped."""

from __future__ import annotations

import uuid
from typing import Any, Final

from protocol.messages import Device, DossierOffer, Representative, TakeoverOrder

__all__ = ["stripped_order", "takeover_order"]

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
