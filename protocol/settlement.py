"""The takeover price between suppliers: a pure, versioned residual-value calculation.

Both suppliers run the same method on the same ``SettlementInputs`` and must get the same amount,
so the calculation uses integers only and rounds once. ``docs/settlement.md`` is the normative
description of each method; ``tests/vectors/settlement.json`` pins it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from datetime import date
from types import MappingProxyType
from typing import Final

from protocol.errors import SettlementAmountMismatch, UnknownSettlementMethod
from protocol.messages import SettlementInputs, SettlementOffer

__all__ = [
    "DEFAULT_ECONOMIC_LIFETIME_MONTHS",
    "SETTLEMENT_METHODS",
    "check_settlement_offer",
    "economic_lifetime_months",
    "months_between",
    "residual_value_cents",
]

_BASIS_POINTS: Final = 10_000

# Default economic lifetimes per ISO 9999 prefix (docs/settlement.md section 3); contracts override.
DEFAULT_ECONOMIC_LIFETIME_MONTHS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "09 33": 60,  # bath and shower chairs
        "12 06": 60,  # rollators
        "12 22": 60,  # manual wheelchairs
        "12 23": 72,  # powered wheelchairs and scootmobielen
        "12 36": 84,  # hoists
        "18 12": 96,  # beds, hoog-laagbedden
    }
)

# linear-depreciation-v1, docs/settlement.md section 2.3: fixed by the method, never negotiated.
_MAINTENANCE_FACTOR_BASIS_POINTS: Final[Mapping[str, int]] = MappingProxyType(
    {"good": 10_000, "fair": 8_500, "poor": 6_000}
)


def economic_lifetime_months(iso_code: str, overrides: Mapping[str, int] | None = None) -> int:
    """Economic lifetime of an ISO 9999 code: the longest matching prefix, contract first.

    Prefixes match whole groups of two digits ("12 2" never matches "12 22 03"). A matching
    prefix in ``overrides`` wins over any default; ``KeyError`` when nothing matches.
    """
    for table in (overrides or {}, DEFAULT_ECONOMIC_LIFETIME_MONTHS):
        groups = iso_code.split(" ")
        for length in range(len(groups), 0, -1):
            months = table.get(" ".join(groups[:length]))
            if months is not None:
                return months
    raise KeyError(f"no economic lifetime for ISO code {iso_code!r}")


def _add_months(start: date, months: int) -> date:
    """``start`` moved ``months`` months on; the day is clamped to the end of a shorter month."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (docs/settlement.md section 2.1), never negative.

    Month ``n`` is complete on the purchase day-of-month ``n`` months later, or on the last day of
    that month when it is shorter: 31 January to 28 February 2025 is one whole month.
    """
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and _add_months(start, months) > end:
        months -= 1
    return max(months, 0)


def _divide_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` for non-negative integers, rounded half to even."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def _floor_cents(inputs: SettlementInputs) -> int:
    if inputs.floor_cents is not None:
        return inputs.floor_cents
    basis_points = inputs.floor_basis_points or 0  # the model requires exactly one of the two
    return _divide_half_even(inputs.purchase_price_cents * basis_points, _BASIS_POINTS)


def _linear_depreciation_v1(inputs: SettlementInputs) -> int:
    lifetime = inputs.economic_lifetime_months
    elapsed = min(months_between(inputs.purchase_date, inputs.transfer_date), lifetime)
    factor = _MAINTENANCE_FACTOR_BASIS_POINTS[inputs.maintenance_state]
    # One exact fraction, rounded once (section 2.4), so every implementation agrees to the cent.
    depreciated = _divide_half_even(
        inputs.purchase_price_cents * (lifetime - elapsed) * factor, lifetime * _BASIS_POINTS
    )
    return min(inputs.purchase_price_cents, max(_floor_cents(inputs), depreciated))


_METHODS: Final[Mapping[str, Callable[[SettlementInputs], int]]] = MappingProxyType(
    {"linear-depreciation-v1": _linear_depreciation_v1}
)
SETTLEMENT_METHODS: Final[tuple[str, ...]] = tuple(sorted(_METHODS))


def residual_value_cents(
    inputs: SettlementInputs, *, method: str = "linear-depreciation-v1"
) -> int:
    """The takeover price in euro cents of one device by a named, versioned method."""
    calculate = _METHODS.get(method)
    if calculate is None:
        raise UnknownSettlementMethod(f"settlement method {method!r} is not known")
    return calculate(inputs)


def check_settlement_offer(offer: SettlementOffer) -> None:
    """Recompute an offer; raise ``SettlementAmountMismatch`` when its amount differs."""
    expected = residual_value_cents(offer.inputs, method=offer.method)
    if offer.amount_cents != expected:
        raise SettlementAmountMismatch(
            f"offered {offer.amount_cents} cents, {offer.method} gives {expected} cents",
            offered_cents=offer.amount_cents,
            expected_cents=expected,
        )
