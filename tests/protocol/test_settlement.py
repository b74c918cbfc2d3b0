"""Takeover price: amounts worked out by hand, properties, and the replayable vector file."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.errors import SettlementAmountMismatch, UnknownSettlementMethod
from protocol.messages import SettlementInputs, SettlementOffer
from protocol.settlement import (
    DEFAULT_ECONOMIC_LIFETIME_MONTHS,
    SETTLEMENT_METHODS,
    check_settlement_offer,
    economic_lifetime_months,
    months_between,
    residual_value_cents,
)
from tests.conftest import REPOSITORY

VECTORS = REPOSITORY / "tests" / "vectors" / "settlement.json"


def _inputs(
    price: int = 450_000,
    purchased: str = "2022-03-10",
    transferred: str = "2025-03-10",
    lifetime: int = 72,
    *,
    floor_cents: int | None = None,
    floor_basis_points: int | None = None,
    maintenance: str = "good",
) -> SettlementInputs:
    if floor_cents is None and floor_basis_points is None:
        floor_basis_points = 1_000
    return SettlementInputs.model_validate(
        {
            "purchasePriceCents": price,
            "purchaseDate": purchased,
            "transferDate": transferred,
            "economicLifetimeMonths": lifetime,
            "floorCents": floor_cents,
            "floorBasisPoints": floor_basis_points,
            "maintenanceState": maintenance,
        }
    )


# Each amount was worked out by hand: price * (lifetime - months) / lifetime * factor, once
# rounded half to even, then clamped to [floor, price]. 450 000 / 72 = 6 250 cents per month.
HAND_TABLE: list[tuple[str, SettlementInputs, int]] = [
    ("new device, transferred on the purchase day", _inputs(transferred="2022-03-10"), 450_000),
    ("one day short of the first month", _inputs(transferred="2022-04-09"), 450_000),
    ("half-way: 36 of 72 months", _inputs(), 225_000),
    ("one day before month 36: 35 months", _inputs(transferred="2025-03-09"), 231_250),
    ("exactly at the end of the lifetime: floor", _inputs(purchased="2019-03-10"), 45_000),
    (
        "older than its lifetime: floor in cents",
        _inputs(purchased="2015-01-01", floor_cents=25_000),
        25_000,
    ),
    (
        "floor in basis points, rounded down: 15 432.125",
        _inputs(123_457, purchased="2010-01-01", floor_basis_points=1_250),
        15_432,
    ),
    (
        "floor in basis points, half to even down: 12 500.5",
        _inputs(100_004, purchased="2010-01-01", floor_basis_points=1_250),
        12_500,
    ),
    (
        "floor in basis points, half to even up: 12 501.5",
        _inputs(100_012, purchased="2010-01-01", floor_basis_points=1_250),
        12_502,
    ),
    ("fair maintenance: 85 %", _inputs(maintenance="fair"), 191_250),
    ("poor maintenance: 60 %", _inputs(maintenance="poor"), 135_000),
    (
        "poor maintenance below the floor: 45 000 < 67 500",
        _inputs(purchased="2020-03-10", floor_basis_points=1_500, maintenance="poor"),
        67_500,
    ),
    ("purchase price 0", _inputs(0, floor_cents=5_000), 0),
    (
        "floor in cents above the purchase price: capped",
        _inputs(10_000, transferred="2022-03-10", floor_cents=20_000),
        10_000,
    ),
    (
        "one month, rounded down: 98 333.33",
        _inputs(100_000, "2025-01-15", "2025-02-15", 60, floor_cents=0),
        98_333,
    ),
    (
        "one month, fair, rounded down: 83 583.33",
        _inputs(100_000, "2025-01-15", "2025-02-15", 60, floor_cents=0, maintenance="fair"),
        83_583,
    ),
    (
        "half a cent rounds to even: 0.5",
        _inputs(1, "2025-01-15", "2025-02-15", 2, floor_cents=0),
        0,
    ),
    (
        "half a cent rounds to even: 1.5",
        _inputs(3, "2025-01-15", "2025-02-15", 2, floor_cents=0),
        2,
    ),
    (
        "31 January to 28 February is one whole month",
        _inputs(120_000, "2025-01-31", "2025-02-28", 12, floor_cents=0),
        110_000,
    ),
    (
        "31 January to 27 February is no whole month",
        _inputs(120_000, "2025-01-31", "2025-02-27", 12, floor_cents=0),
        120_000,
    ),
    (
        "docs/settlement.md worked example: scootmobiel, 39 of 72 months, fair",
        _inputs(389_500, "2021-11-15", "2025-03-01", 72, maintenance="fair"),
        151_743,
    ),
]


@pytest.mark.parametrize(
    ("inputs", "expected"), [case[1:] for case in HAND_TABLE], ids=[case[0] for case in HAND_TABLE]
)
def test_amounts_worked_out_by_hand(inputs: SettlementInputs, expected: int) -> None:
    assert residual_value_cents(inputs) == expected


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2025-01-15", "2025-01-15", 0),
        ("2025-01-15", "2025-02-14", 0),
        ("2025-01-15", "2025-02-15", 1),
        ("2024-01-31", "2024-02-29", 1),
        ("2025-01-31", "2025-02-27", 0),
        ("2025-01-31", "2025-03-30", 1),
        ("2025-01-31", "2025-03-31", 2),
        ("2021-11-15", "2025-03-01", 39),
        ("2024-12-31", "2025-01-01", 0),
        ("2025-03-01", "2025-01-01", 0),
    ],
)
def test_months_between(start: str, end: str, months: int) -> None:
    assert months_between(date.fromisoformat(start), date.fromisoformat(end)) == months


def test_transfer_before_purchase_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="transferDate is before purchaseDate"):
        _inputs(purchased="2025-03-10", transferred="2025-03-09")


def test_unknown_method_is_a_protocol_error() -> None:
    assert SETTLEMENT_METHODS == ("linear-depreciation-v1",)
    with pytest.raises(UnknownSettlementMethod) as raised:
        residual_value_cents(_inputs(), method="straight-line-v2")
    assert raised.value.code == "unknown_settlement_method"
    assert raised.value.dispute_reason == "method-not-agreed"


def _offer(amount: int, method: str = "linear-depreciation-v1") -> SettlementOffer:
    return SettlementOffer(
        settlement_id=uuid.UUID(int=7),
        device_id="device-1",
        method=method,
        inputs=_inputs(),
        amount_cents=amount,
    )


def test_check_settlement_offer_accepts_the_recomputed_amount() -> None:
    check_settlement_offer(_offer(225_000))


def test_check_settlement_offer_names_both_amounts_when_they_differ() -> None:
    with pytest.raises(SettlementAmountMismatch) as raised:
        check_settlement_offer(_offer(225_001))
    error = raised.value
    assert (error.offered_cents, error.expected_cents) == (225_001, 225_000)
    assert error.dispute_reason == "inputs-incorrect"
    assert error.code == "settlement_amount_mismatch"


def test_check_settlement_offer_refuses_an_unknown_method() -> None:
    with pytest.raises(UnknownSettlementMethod):
        check_settlement_offer(_offer(225_000, method="straight-line-v2"))


@pytest.mark.parametrize(
    ("iso_code", "months"),
    [
        ("12 22 03", 60),
        ("12 23 03", 72),
        ("12 23 06", 72),
        ("12 36 03", 84),
        ("18 12 10", 96),
        ("09 33 03", 60),
        ("12 06 06", 60),
        ("12 23", 72),
    ],
)
def test_default_lifetimes_by_longest_prefix(iso_code: str, months: int) -> None:
    assert economic_lifetime_months(iso_code) == months


def test_contract_overrides_win_and_match_whole_groups() -> None:
    overrides = {"12 23 03": 84, "12": 48, "18 1": 12}
    assert economic_lifetime_months("12 23 03", overrides) == 84
    assert economic_lifetime_months("12 23 06", overrides) == 48  # "12" matches before defaults
    assert economic_lifetime_months("18 12 10", overrides) == 96  # "18 1" is not a group prefix
    assert economic_lifetime_months("18 12 10", {}) == 96


def test_no_lifetime_for_an_unknown_category() -> None:
    with pytest.raises(KeyError):
        economic_lifetime_months("18 30 03")  # stairlifts are fixed, never settled
    assert "18 30" not in DEFAULT_ECONOMIC_LIFETIME_MONTHS


_settlement_inputs = st.builds(
    lambda price, purchased, lifetime, floor, use_cents, maintenance: _inputs(
        price,
        purchased.isoformat(),
        purchased.isoformat(),
        lifetime,
        floor_cents=floor * 100 if use_cents else None,
        floor_basis_points=None if use_cents else floor,
        maintenance=maintenance,
    ),
    st.integers(0, 5_000_000),
    st.dates(date(2000, 1, 1), date(2030, 12, 31)),
    st.integers(1, 240),
    st.integers(0, 10_000),
    st.booleans(),
    st.sampled_from(["good", "fair", "poor"]),
)


@given(_settlement_inputs, st.integers(0, 10_000), st.integers(0, 10_000))
def test_amount_never_rises_with_the_transfer_date_and_stays_in_bounds(
    base: SettlementInputs, first_offset: int, second_offset: int
) -> None:
    earlier, later = sorted((first_offset, second_offset))
    amounts = [
        residual_value_cents(
            base.model_copy(update={"transfer_date": base.purchase_date + timedelta(days=days)})
        )
        for days in (earlier, later)
    ]
    assert amounts[0] >= amounts[1]
    floor = base.floor_cents
    if floor is None:
        floor = base.purchase_price_cents * (base.floor_basis_points or 0) // 10_000
    for amount in amounts:
        assert min(floor, base.purchase_price_cents) <= amount <= base.purchase_price_cents


def _vectors() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    return cases


@pytest.mark.parametrize("case", _vectors(), ids=lambda case: str(case["name"]))
def test_vector_file_replays(case: dict[str, Any]) -> None:
    inputs = SettlementInputs.model_validate(case["inputs"])
    assert residual_value_cents(inputs, method=case["method"]) == case["amountCents"]


def test_vector_file_holds_the_hand_table() -> None:
    replayed = {case["name"]: case["amountCents"] for case in _vectors()}
    assert replayed == {name: amount for name, _inputs, amount in HAND_TABLE}
