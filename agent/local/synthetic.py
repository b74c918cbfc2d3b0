"""Synthetic register clients for tests and benchmarks: test-range BSNs, the JSON import shape.

The import shape is documented in ``docs/agent.md``; every client lives in Utrecht and has a
rented wheelchair and a loaned bed (movable) and a stairlift (fixed, custom-made).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from protocol.identifiers import is_valid_bsn

__all__ = [
    "DEVICE_IDS",
    "TEST_BSN_RANGE_START",
    "synthetic_bsns",
    "synthetic_clients",
    "valid_bsns",
]

DEVICE_IDS = ("rolstoel", "bed", "traplift")
# The BSNs the Dutch government keeps for tests start here (999...).
TEST_BSN_RANGE_START = 999_000_000


def synthetic_bsns(start: int = 100_000_000) -> Iterator[str]:
    """Nine-digit numbers that pass the elfproef, ascending from ``start``."""
    number = start
    while number < 1_000_000_000:
        text = f"{number:09d}"
        if is_valid_bsn(text):
            yield text
        number += 1


def valid_bsns(count: int, *, first: int = TEST_BSN_RANGE_START) -> list[str]:
    """``count`` numbers of the test range (999...), from ``first`` on, that pass the elfproef."""
    found = list(itertools.islice(synthetic_bsns(first), count))
    if len(found) < count:
        raise ValueError(f"fewer than {count} valid BSNs from {first} on")
    return found


def synthetic_clients(bsns: list[str]) -> list[dict[str, Any]]:
    """One client per BSN, in the register's JSON import shape."""
    today = date.today()
    return [
        {
            "bsn": bsn,
            "name": {"initials": "A.", "surname": f"Client {number}"},
            "address": {
                "street": "Oudegracht",
                "houseNumber": number + 1,
                "postalCode": "3511AB",
                "city": "Utrecht",
                "gemeentecode": "0344",
            },
            "contactPreferences": {"channels": ["letter"]},
            "indicatie": {
                "legalBasis": "Wmo 2015 art. 2.3.5",
                "beschikkingReference": f"UTR-{number}",
                "decisionDate": (today - timedelta(days=100)).isoformat(),
                "startDate": (today - timedelta(days=90)).isoformat(),
                "endDate": (today + timedelta(days=700)).isoformat(),
            },
            "devices": [
                _device("rolstoel", "12 22 03", "Handbewogen rolstoel", ownership="huur"),
                _device("bed", "18 12 10", "Hoog-laagbed"),
                _device("traplift", "18 30 08", "Traplift", custom_made=True, movable=False),
            ],
        }
        for number, bsn in enumerate(bsns)
    ]


def _device(
    device_id: str,
    iso_code: str,
    description: str,
    *,
    custom_made: bool = False,
    movable: bool = True,
    ownership: str = "bruikleen",
) -> dict[str, Any]:
    return {
        "deviceId": device_id,
        "isoCode": iso_code,
        "description": description,
        "customMade": custom_made,
        "movable": movable,
        "ownership": ownership,
    }
