"""Identifiers: BSN elfproef on the shared RvIG test set, OIN helpers, code formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from protocol.identifiers import (
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

BSN_DATA: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "data" / "bsn.json").read_text(encoding="utf-8")
)
BSN = TypeAdapter(Bsn)


@pytest.mark.parametrize("value", BSN_DATA["valid"])
def test_valid_bsns_from_the_rvig_test_set_are_accepted(value: str) -> None:
    assert is_valid_bsn(value)
    assert BSN.validate_python(value) == value


@pytest.mark.parametrize("value", BSN_DATA["invalid"])
def test_invalid_bsns_are_refused(value: str) -> None:
    assert not is_valid_bsn(value)
    with pytest.raises(ValidationError):
        BSN.validate_python(value)


def test_all_zero_bsn_is_refused_although_it_passes_the_weighted_sum() -> None:
    assert not is_valid_bsn("000000000")
    with pytest.raises(ValidationError):
        BSN.validate_python("000000000")


def test_leading_zero_bsn_stays_a_string() -> None:
    assert BSN.validate_python("000009830") == "000009830"


def test_bsn_as_a_number_is_refused() -> None:
    with pytest.raises(ValidationError):
        BSN.validate_python(999993653)


def test_oin_for_gemeente_rsin_gives_utrecht() -> None:
    assert oin_for_gemeente_rsin("002220647") == "00000001002220647000"


def test_oin_for_gemeente_rsin_refuses_a_bad_rsin() -> None:
    assert is_valid_rsin("002220647")
    assert not is_valid_rsin("002220648")
    with pytest.raises(ValueError, match="RSIN"):
        oin_for_gemeente_rsin("002220648")
    with pytest.raises(ValidationError):
        TypeAdapter(Rsin).validate_python("002220648")


def test_oin_for_kvk() -> None:
    assert oin_for_kvk("12345678") == "00000003123456780000"
    with pytest.raises(ValueError, match="KvK"):
        oin_for_kvk("1234567")


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (Oin, ["00000001002220647000", "12345678901234567890"], ["0000000100222064700", "x" * 20]),
        (Gemeentecode, ["0344", "0363", "1992"], ["344", "03444", "03a4"]),
        (IsoCode, ["12", "12 22", "12 22 03"], ["122203", "12 22 03 01", "12  22", "12-22-03"]),
        (KvkNumber, ["12345678"], ["1234567", "123456789"]),
    ],
)
def test_code_formats(annotation: Any, good: list[str], bad: list[str]) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(annotation)
    for value in good:
        assert adapter.validate_python(value) == value
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
