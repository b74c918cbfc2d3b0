"""Names of people, devices and gemeenten, addresses and amounts as letters and pages write them.

A device is named by the Dutch term of its ISO 9999 class (the longest known prefix of its code),
with the register's own description in brackets: "scootmobiel (Scootmobiel, vier wielen)".
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from functools import cache
from importlib import resources

from protocol.messages import Address, Device, PersonName

__all__ = [
    "ISO_NAMES",
    "address_lines",
    "device_name",
    "devices_phrase",
    "euros",
    "gemeente_name",
    "person_name",
    "the_device",
    "with_article",
]

# Dutch terms per ISO 9999:2011/2016 code or prefix, as public authorities that use ISO 9999 name
# them (NAV Hjelpemiddeldatabasen, AIHW METeOR, Swedish regional handbooks); a heading where a
# code has no term of its own.
ISO_NAMES: dict[str, str] = {
    "04 33": "anti-decubitusmateriaal",
    "09 33 03": "badplank",
    "09 33 07": "douchestoel",
    "09 33": "bad- of douchehulpmiddel",
    "12 06 03": "looprek",
    "12 06 06": "rollator",
    "12 06": "loophulpmiddel",
    "12 22 03": "handbewogen rolstoel",
    "12 22": "rolstoel",
    "12 23 03": "scootmobiel",
    "12 23 06": "elektrische rolstoel",
    "12 23": "elektrische rolstoel",
    "12 36 03": "tillift",
    "12 36 12": "plafondlift",
    "12 36": "tillift",
    "18 12 10": "hoog-laagbed",
    "18 12": "bed",
    "18 30": "traplift",
    "22 21": "communicatiehulpmiddel",
}


# Dutch nouns of devices that take "het"; every other device takes "de".
_NEUTER_ENDINGS = ("bed", "toilet", "hulpmiddel", "materiaal")


def _iso_term(iso_code: str) -> str | None:
    matches = [code for code in ISO_NAMES if iso_code == code or iso_code.startswith(code + " ")]
    return ISO_NAMES[max(matches, key=len)] if matches else None


def device_name(iso_code: str, description: str) -> str:
    """The device as a sentence names it: its ISO term, the description in brackets."""
    term = _iso_term(iso_code)
    if term is None:
        return description
    if description.strip().lower() == term:
        return term
    return f"{term} ({description})"


def the_device(device: Device) -> str:
    """The device with its article, as a sentence names it: "de scootmobiel (...)", "het bed"."""
    return with_article(device_name(device.iso_code, device.description))


def with_article(name: str) -> str:
    """A device's name (from :func:`device_name`) with its article: "de ...", "het ..."."""
    term = name.split(" (", 1)[0]
    return f"{'het' if term.endswith(_NEUTER_ENDINGS) else 'de'} {name}"


def person_name(name: PersonName) -> str:
    """A name as a letter writes it: initials or given names, prefix, surname."""
    first = name.initials or name.given_names or ""
    return " ".join(part for part in (first, name.surname_prefix, name.surname) if part)


@cache
def _gemeenten() -> dict[str, str]:
    text = resources.files("registry").joinpath("data/gemeenten.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


def gemeente_name(gemeentecode: str | None) -> str:
    """The CBS name of a gemeente, or its code when unknown."""
    return _gemeenten().get(gemeentecode or "", gemeentecode or "onbekend")


def address_lines(name: str, address: Address) -> tuple[str, ...]:
    """A postal address as a letter writes it: the name, street and number, postcode and city."""
    number = f"{address.house_number}{address.house_letter or ''}"
    if address.house_number_addition:
        number += f"-{address.house_number_addition}"
    return (name, f"{address.street} {number}", f"{address.postal_code} {address.city}")


def euros(cents: int) -> str:
    """An amount as Dutch text writes it: "€ 1234,50" (a decimal comma)."""
    return f"€ {cents // 100},{cents % 100:02d}"


def devices_phrase(devices: Iterable[Device], *, articles: bool = False) -> str:
    """Devices named in one phrase: "scootmobiel (...) en hoog-laagbed (...)".

    ``articles``: each with its article, as :func:`the_device` names it.
    """
    names = [
        the_device(device) if articles else device_name(device.iso_code, device.description)
        for device in devices
    ]
    if not names:
        return "geen hulpmiddelen"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " en " + names[-1]
