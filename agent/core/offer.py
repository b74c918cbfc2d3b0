"""Departing side: build the dossier offer from the register, under the recorded consent only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from agent.errors import ConsentMissing, ProvisionUnknown
from agent.register.models import RegisterClient
from agent.storage.tables import ConsentRow
from protocol.messages import Device, DeviceReference, DossierOffer

__all__ = ["REQUIRED_KINDS", "build_offer", "device_reference"]

# The offer model itself needs these kinds: without them there is nothing to send.
REQUIRED_KINDS = frozenset({"identity", "address", "devices"})


_REFERENCE_FIELDS = frozenset({"device_id", "iso_code", "serial_number", "contract_reference"})
_PURCHASE_FIELDS = frozenset({"purchase_date", "purchase_price_cents"})


def device_reference(device: Device, *, purchase: bool) -> DeviceReference:
    """A device as the messages after the decision name it, with its ownership.

    ``purchase``: with the purchase date and price, for a recipient that computes a price.
    """
    fields = _REFERENCE_FIELDS | {"ownership"} | (_PURCHASE_FIELDS if purchase else frozenset())
    return DeviceReference.model_validate(device.model_dump(include=set(fields)))


def _consented_devices(client: RegisterClient, device_ids: Sequence[str]) -> list[dict[str, Any]]:
    by_id = {device.device_id: device for device in client.devices}
    unknown = [device_id for device_id in device_ids if device_id not in by_id]
    if unknown:
        raise ProvisionUnknown(f"consent names devices not in the register: {', '.join(unknown)}")
    return [
        by_id[device_id].model_dump(mode="json", by_alias=True, exclude_none=True)
        for device_id in device_ids
    ]


def build_offer(
    *,
    client: RegisterClient,
    consent: ConsentRow | None,
    new_address: dict[str, Any],
    move_date: date,
    departing_gemeentecode: str,
    urgent: bool = False,
    urgency_reason: str | None = None,
) -> DossierOffer:
    """The offer with exactly the consented devices and kinds of data; nothing without consent.

    ``urgency_reason`` marks the offer urgent (the client cannot be without a device).
    """
    if consent is None or consent.outcome != "given":
        raise ConsentMissing("no consent record for this dossier")
    kinds = set(consent.data_kinds)
    missing = sorted(REQUIRED_KINDS - kinds)
    if missing or not consent.device_ids:
        raise ConsentMissing(f"consent does not cover {', '.join(missing) or 'any device'}")
    devices = _consented_devices(client, consent.device_ids)
    document: dict[str, Any] = {
        "client": _client_part(client, new_address, move_date),
        "consent": {
            "consentId": consent.consent_id,
            "grantedAt": consent.granted_at.isoformat(),
            "channel": consent.channel,
            "grantedBy": consent.granted_by,
            "dataKinds": list(consent.data_kinds),
            "deviceIds": list(consent.device_ids),
        },
        "departingGemeentecode": departing_gemeentecode,
        "devices": devices,
        # The urgency travels with its reason (protocol: urgent, urgencyReason).
        "urgent": urgent or urgency_reason is not None,
    }
    if urgency_reason is not None:
        document["urgencyReason"] = urgency_reason
    if "indicatie" in kinds and client.indicatie is not None:
        indicatie = client.indicatie.model_dump(mode="json", by_alias=True, exclude_none=True)
        document["indicatie"] = {**indicatie, "deviceIds": list(consent.device_ids)}
    if "functional-information" in kinds and client.functional_information is not None:
        document["functionalInformation"] = client.functional_information.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    return DossierOffer.model_validate(document)


def _client_part(
    client: RegisterClient, new_address: dict[str, Any], move_date: date
) -> dict[str, Any]:
    part: dict[str, Any] = {
        "bsn": client.bsn,
        "name": client.name.model_dump(mode="json", by_alias=True, exclude_none=True),
        "newAddress": new_address,
        "moveDate": move_date.isoformat(),
        "contactPreferences": client.contact_preferences.model_dump(
            mode="json", by_alias=True, exclude_none=True
        ),
    }
    if client.representative is not None:
        # With their own address: the receiving gemeente writes to them (section 5.1 identity).
        part["representative"] = client.representative.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    return part
