"""How texts for case workers and clients name people and devices (Dutch, B1, whole words)."""

from __future__ import annotations

from datetime import date

from protocol.messages import Device, PersonName

__all__ = ["client_name", "device_kind", "device_name", "dutch_date"]

_MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)
# Dutch nouns of devices that take "het"; every other device kind takes "de".
_NEUTER_ENDINGS = ("bed", "toilet", "hulpmiddel")


def client_name(name: PersonName) -> str:
    """A client's name as a letter or task writes it: initials or given names, prefix, surname."""
    first = name.initials or name.given_names or ""
    return " ".join(part for part in (first, name.surname_prefix, name.surname) if part)


def device_kind(device: Device) -> str:
    """The kind of device in lower case: the first part of its description ("scootmobiel")."""
    kind = device.description.split(",", 1)[0].strip()
    return kind[:1].lower() + kind[1:]


def device_name(device: Device) -> str:
    """The device with its article, as a sentence names it: "de scootmobiel", "het bed"."""
    kind = device_kind(device)
    article = "het" if kind.endswith(_NEUTER_ENDINGS) else "de"
    return f"{article} {kind}"


def dutch_date(day: date) -> str:
    """A date as Dutch readers write it: 1 april 2025."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
