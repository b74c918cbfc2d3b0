"""Receiving side policy: take over by default, exceptions with reasons (verhuisconvenant 2021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TypeVar

from agent.settings import DeviceExceptionPolicy
from protocol.messages import Address, Device, DeviceDecisionItem, Indicatie

__all__ = [
    "continued_provision_end",
    "decide_devices",
    "is_wlz_institution",
    "urgency_reason",
]

_T = TypeVar("_T")

# Texts for the client: Dutch, B1 level.
_NOT_MOVABLE = DeviceExceptionPolicy(
    reason_code="other",
    reason_text="Dit hulpmiddel zit vast aan uw woning. Het verhuist niet mee.",
    alternative="Heeft u in uw nieuwe huis ook zo'n voorziening nodig? Vraag die bij ons aan.",
)
_CLIENT_OWNED = DeviceExceptionPolicy(
    reason_code="other",
    reason_text="Dit hulpmiddel is van u. U neemt het zelf mee; wij nemen het niet over.",
    alternative="Wilt u hulp bij onderhoud of reparatie? Neem dan contact met ons op.",
)


def _longest_prefix(iso_code: str, configured: Mapping[str, _T]) -> _T | None:
    # The longest configured ISO 9999 prefix wins ("12 23 06" before "12 23").
    matches = [code for code in configured if iso_code == code or iso_code.startswith(code + " ")]
    return configured[max(matches, key=len)] if matches else None


def _exception(
    device: Device, reason_code: str, policy: DeviceExceptionPolicy
) -> DeviceDecisionItem:
    return DeviceDecisionItem.model_validate(
        {
            "deviceId": device.device_id,
            "outcome": "exception",
            "reasonCode": reason_code,
            "reasonText": policy.reason_text,
            "alternativeOffered": policy.alternative,
        }
    )


def _decide(device: Device, exceptions: Mapping[str, DeviceExceptionPolicy]) -> DeviceDecisionItem:
    # Verhuisconvenant: fixed (aard- en nagelvaste) devices do not move along.
    if not device.movable:
        return _exception(device, "not-movable", _NOT_MOVABLE)
    if device.ownership in ("eigendom", "pgb"):
        return _exception(device, "client-owned", _CLIENT_OWNED)
    configured = _longest_prefix(device.iso_code, exceptions)
    if configured is not None:
        return _exception(device, configured.reason_code, configured)
    # Principle 2: the receiving gemeente in principle always takes the device over.
    return DeviceDecisionItem(device_id=device.device_id, outcome="take-over")


def decide_devices(
    devices: Sequence[Device], exceptions: Mapping[str, DeviceExceptionPolicy]
) -> tuple[DeviceDecisionItem, ...]:
    """One decision per offered device, in offer order."""
    return tuple(_decide(device, exceptions) for device in devices)


def continued_provision_end(indicatie: Indicatie | None) -> date | None:
    """End of the continued provision: the indicatie's own end, never earlier (None = open)."""
    return indicatie.end_date if indicatie is not None else None


def urgency_reason(devices: Sequence[Device], urgent_iso_codes: Mapping[str, str]) -> str | None:
    """Why the client cannot be without a movable device (the configured reason), or None."""
    for device in devices:
        reason = _longest_prefix(device.iso_code, urgent_iso_codes) if device.movable else None
        if reason is not None:
            return reason
    return None


def is_wlz_institution(address: Address, institutions: Sequence[str]) -> bool:
    """Whether the address is a configured Wlz institution ('1012AB 5': postcode, number)."""
    return f"{address.postal_code} {address.house_number}" in institutions
