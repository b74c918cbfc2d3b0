"""Fixtures of the protocol tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Kolkata"])
def time_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a time test in the process's local time zone ``TZ`` set to UTC and two others.

    The protocol's times are UTC on the wire; a receiver's local zone (New York: negative
    offset with daylight saving, Kolkata: a half-hour offset) must change no outcome.
    """
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
