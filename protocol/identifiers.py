"""Validated Dutch identifiers and codes on the wire: BSN, RSIN, OIN, gemeentecode, ISO 9999."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "Bsn",
    "Gemeentecode",
    "IsoCode",
    "KvkNumber",
    "Oin",
    "Rsin",
    "is_valid_bsn",
    "is_valid_rsin",
    "oin_for_gemeente_rsin",
    "oin_for_kvk",
]

# Elfproef weights for BSN and RSIN (RvIG; the last digit counts negatively for the BSN).
_ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")
# Logius OIN scheme: prefix 00000001 for government bodies identified by RSIN, suffix 000;
# prefix 00000003 for organisations identified by KvK number, suffix 0000.
_GEMEENTE_OIN_PREFIX = "00000001"
_GEMEENTE_OIN_SUFFIX = "000"
_KVK_OIN_PREFIX = "00000003"
_KVK_OIN_SUFFIX = "0000"


def _passes_elfproef(value: str) -> bool:
    if _NINE_DIGITS.fullmatch(value) is None:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value, _ELFPROEF_WEIGHTS, strict=True))
    return total % 11 == 0


def is_valid_bsn(value: str) -> bool:
    """Return whether ``value`` is a 9-digit BSN that passes the elfproef (000000000 is refused)."""
    # 000000000 passes the weighted sum but is never issued (bsn.json edge case): refuse it.
    return value != "000000000" and _passes_elfproef(value)


def is_valid_rsin(value: str) -> bool:
    """Return whether ``value`` is a 9-digit RSIN that passes the elfproef."""
    return value != "000000000" and _passes_elfproef(value)


def _check_bsn(value: str) -> str:
    if not is_valid_bsn(value):
        raise ValueError("not a valid BSN: 9 digits passing the elfproef are required")
    return value


def _check_rsin(value: str) -> str:
    if not is_valid_rsin(value):
        raise ValueError("not a valid RSIN: 9 digits passing the elfproef are required")
    return value


Bsn = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{9}$",
        description="Burgerservicenummer: 9 digits that pass the elfproef; 000000000 is refused.",
    ),
    AfterValidator(_check_bsn),
]
Rsin = Annotated[
    str,
    Field(pattern=r"^[0-9]{9}$", description="RSIN: 9 digits that pass the elfproef."),
    AfterValidator(_check_rsin),
]
Oin = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{20}$",
        description="Organisatie-identificatienummer (Logius): 20 digits.",
    ),
]
Gemeentecode = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}$", description="CBS gemeentecode: 4 digits, e.g. 0344 Utrecht."),
]
IsoCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{2}( [0-9]{2}){0,2}$",
        description="ISO 9999 class, subclass or division, written in groups of two: 12 22 03.",
    ),
]
KvkNumber = Annotated[
    str,
    Field(pattern=r"^[0-9]{8}$", description="Kamer van Koophandel number: 8 digits."),
]


def oin_for_gemeente_rsin(rsin: str) -> str:
    """Return the OIN of a gemeente from its RSIN; raise ``ValueError`` for an invalid RSIN."""
    _check_rsin(rsin)
    return _GEMEENTE_OIN_PREFIX + rsin + _GEMEENTE_OIN_SUFFIX


def oin_for_kvk(kvk_number: str) -> str:
    """Return the OIN of a company from its KvK number; raise ``ValueError`` if not 8 digits."""
    if _EIGHT_DIGITS.fullmatch(kvk_number) is None:
        raise ValueError("not a valid KvK number: 8 digits are required")
    return _KVK_OIN_PREFIX + kvk_number + _KVK_OIN_SUFFIX
