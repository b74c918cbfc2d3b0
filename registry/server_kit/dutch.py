"""Dates as Dutch readers write them, on the pages and in the letters of the registry and agents."""

from __future__ import annotations

from datetime import date
from typing import Final

__all__ = ["MONTHS", "dutch_date"]

MONTHS: Final = (
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


def dutch_date(day: date) -> str:
    """A date as Dutch readers write it: 1 april 2025."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
