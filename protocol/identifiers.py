"""Validated identifiers: BSN, RSIN, OIN, gemeentecode, ISO 9999 code and KvK number."""

from protocol._identifiers import (
    Bsn,
    Gemeentecode,
    IsoCode,
    KvkNumber,
    Oin,
    Rsin,
    is_valid_bsn,
    is_valid_rsin,
    oin_for_gemeente_rsin,
    oin_for_kvk,
)

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
